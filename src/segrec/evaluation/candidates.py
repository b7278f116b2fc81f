"""What the evaluation runs: candidates, and the registry that names their sources.

A ``Candidate`` is a recommender *recipe*: a constructor, its default hyper-parameters and
a grid to tune on validation. Models join the evaluation (and ``bench/quality.py``) by
adding one line to ``SOURCES``: a name → ``"module:function"`` whose function takes
``(cfg, families)`` and returns candidates. Sources are imported lazily, so listing the
two-tower model here does not import torch unless it is asked for.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segrec.recommender import Recommender

if TYPE_CHECKING:
    from segrec.config import Config

SOURCES: dict[str, str] = {
    "baselines": "segrec.baselines.candidates:baseline_candidates",
    "two_tower": "segrec.training.candidates:two_tower_candidates",
    "ranking": "segrec.ranking.evaluation:ranking_candidates",
}


@dataclass(frozen=True)
class Candidate:
    """``build(**params)`` (plus ``fallback=`` when ``uses_fallback``) → an unfitted model."""

    name: str
    build: Callable[..., Recommender]
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    uses_fallback: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.grid) - set(self.params)
        if unknown:
            raise ValueError(
                f"{self.name}.grid: unknown parameter(s) {sorted(unknown)}; "
                f"tunable: {sorted(self.params)}"
            )

    def points(self) -> list[dict[str, Any]]:
        """Every parameter set of the grid (the defaults alone when the grid is empty)."""
        keys = list(self.grid)
        return [
            {**self.params, **dict(zip(keys, values, strict=True))}
            for values in itertools.product(*(self.grid[k] for k in keys))
        ]

    def make(self, params: dict[str, Any], fallback: Recommender | None) -> Recommender:
        if self.uses_fallback:
            return self.build(**params, fallback=fallback)
        return self.build(**params)


CandidateSource = Callable[["Config", Sequence[str]], list[Candidate]]


def load_candidates(cfg: Config, families: Sequence[str]) -> list[Candidate]:
    """The candidates of every source named in ``cfg.evaluation.models``, in that order
    (``evaluate_candidates`` refuses two with one name)."""
    out: list[Candidate] = []
    for name in cfg.evaluation.models:
        if name not in SOURCES:
            raise ValueError(f"evaluation.models: unknown {name!r}; known: {sorted(SOURCES)}")
        module, function = SOURCES[name].split(":")
        source: CandidateSource = getattr(importlib.import_module(module), function)
        out.extend(source(cfg, families))
    return out
