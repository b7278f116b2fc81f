"""The baselines as evaluation candidates, from ``cfg.baselines``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from segrec.baselines.config import BaselinesConfig
from segrec.baselines.ease import EASE
from segrec.baselines.implicit_models import ImplicitALS, ImplicitBPR
from segrec.baselines.personal import PersonalFrequency
from segrec.baselines.popularity import Popularity
from segrec.baselines.segment_popularity import SegmentPopularity
from segrec.evaluation.candidates import Candidate
from segrec.recommender import Recommender

if TYPE_CHECKING:
    from segrec.config import Config


def _params(section: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    """A config section's constructor arguments: everything but enabled/grid/``drop``."""
    return {k: v for k, v in asdict(section).items() if k not in {"enabled", "grid", *drop}}


def segment_options(cfg: BaselinesConfig, families: Sequence[str]) -> list[tuple[str, ...]]:
    """The family tuples segment popularity is run on: each family, then each crossing."""
    single = cfg.segment_popularity.families
    chosen = list(families) if single is None else list(single)
    return [(f,) for f in chosen] + [tuple(c) for c in cfg.segment_popularity.crossings]


def make_fallback(cfg: BaselinesConfig, families: Sequence[str]) -> Recommender:
    """The unfitted cold-start fallback: segment popularity over ``families``, or global
    popularity when there are none."""
    if not families:
        return Popularity(cfg.popularity.half_life_days)
    section = cfg.segment_popularity
    return SegmentPopularity(families, section.prior_weight, section.half_life_days)


def baseline_candidates(cfg: Config, families: Sequence[str]) -> list[Candidate]:
    """Every enabled baseline; segment popularity once per family and per crossing."""
    b = cfg.baselines
    out: list[Candidate] = []
    if b.popularity.enabled:
        out.append(Candidate("popularity", Popularity, _params(b.popularity), b.popularity.grid))
    if b.segment_popularity.enabled and families:
        section = b.segment_popularity
        for option in segment_options(b, families):
            params = {"families": list(option), **_params(section, ("families", "crossings"))}
            out.append(
                Candidate(SegmentPopularity(option).name, SegmentPopularity, params, section.grid)
            )
    optional: list[tuple[str, type, Any]] = [
        ("personal_frequency", PersonalFrequency, b.personal_frequency),
        ("als", ImplicitALS, b.als),
        ("bpr", ImplicitBPR, b.bpr),
        ("ease", EASE, b.ease),
    ]
    for name, build, section in optional:
        if section.enabled:
            extra = {"seed": cfg.seed} if build in (ImplicitALS, ImplicitBPR) else {}
            params = {**_params(section), **extra}
            out.append(Candidate(name, build, params, section.grid, uses_fallback=True))
    return out
