"""The ranker as evaluation candidates (``bench/quality.py``, ``train/evaluate.py``).

Registered in ``segrec.evaluation.candidates.SOURCES`` as
``"ranking": "segrec.ranking.evaluation:ranking_candidates"``. Gives up to two rows:

- ``ranker[<sources>]``: retrieval + ranking, the retrieval models named in
  ``ranking.candidates.sources`` (the ranker's own ``ease``, or any candidate another
  registered source provides, e.g. ``als``, ``two_tower``) feeding candidates and scores
  to the ranker;
- ``ranker[history]`` (with ``ranking.evaluate_history_only``): the same ranker without
  retrieval, i.e. what history, segments and item-item neighbours give on their own.

The training windows end before the evaluation period's start, so the ranker never sees
a label of the period it is judged on. Segment families default to the attribute ones:
behavioural families (RFM, learned) are assigned as of the period's start, which would
tell the earlier training windows about their own label period.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from segrec.ranking.config import OWN_SOURCES, RankingConfig
from segrec.ranking.ranker import HistoryRanker
from segrec.ranking.training import SourceFactory

if TYPE_CHECKING:
    from segrec.config import Config
    from segrec.evaluation.candidates import Candidate

OWN_SOURCE = "ranking"


def static_families(cfg: Config, families: Sequence[str]) -> list[str]:
    """The families that do not change with behaviour: the attribute ones."""
    segments = getattr(cfg, "segments", None)
    if segments is None:
        return list(families)
    return [f for f in families if f in segments.attribute]


def retrieval_factories(
    cfg: Config,
    families: Sequence[str],
    names: Sequence[str],
    given: Mapping[str, SourceFactory] | None = None,
) -> dict[str, SourceFactory]:
    """Unfitted-model factories for ``names`` but the ranker's own sources: those in
    ``given`` as they are (the main job passes its trained two-tower model), the others
    from the other registered sources' candidates (default hyper-parameters; cold
    customers: the baselines' fallback)."""
    from segrec.baselines.candidates import make_fallback
    from segrec.evaluation.candidates import SOURCES

    given = dict(given or {})
    names = [n for n in names if n not in given and n not in OWN_SOURCES]
    if not names:
        return given
    pool: dict[str, Candidate] = {}
    for source, target in SOURCES.items():
        if source == OWN_SOURCE:
            continue
        module, function = target.split(":")
        for candidate in getattr(importlib.import_module(module), function)(cfg, families):
            pool.setdefault(candidate.name, candidate)
    missing = sorted(set(names) - set(pool))
    if missing:
        raise ValueError(
            f"ranking.candidates.sources: no registered model named {missing}; "
            f"known: {sorted(pool)}"
        )
    fallback = list(cfg.baselines.cold_fallback or [])

    def factory(candidate: Candidate) -> SourceFactory:
        return lambda: candidate.make(candidate.params, make_fallback(cfg.baselines, fallback))

    return given | {name: factory(pool[name]) for name in names}


def ranking_candidates(
    cfg: Config, families: Sequence[str], given: Mapping[str, SourceFactory] | None = None
) -> list[Candidate]:
    """The ranker rows (see the module docstring); none when ``ranking.enabled`` is false.

    ``given``: retrieval-source factories to use instead of the registry's (by name).
    """
    from segrec.evaluation.candidates import Candidate

    base: RankingConfig = getattr(cfg, "ranking", None) or RankingConfig()
    if not base.enabled:
        return []
    rc = copy.deepcopy(base)
    if rc.features.segment_families is None:
        rc.features.segment_families = static_families(cfg, families)
    sources = retrieval_factories(cfg, families, list(rc.candidates.sources), given)
    out = []
    if rc.candidates.sources:
        name = f"ranker[{'+'.join(rc.candidates.sources)}]"
        out.append(Candidate(name, _builder(rc, sources, name)))
    if rc.evaluate_history_only or not rc.candidates.sources:
        alone = copy.deepcopy(rc)
        alone.candidates.sources = {}
        out.append(Candidate("ranker[history]", _builder(alone, {}, "ranker[history]")))
    return out


def _builder(cfg: RankingConfig, sources: Mapping[str, SourceFactory], name: str):
    return lambda: HistoryRanker(cfg, sources, name=name)
