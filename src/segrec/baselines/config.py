"""Typed configuration of the baselines (``conf/baselines/*.yaml``).

Each baseline's section holds its constructor's hyper-parameters, ``enabled``, and a
``grid``: parameter name → values tried on the validation period (empty: no tuning). The
grid is the cartesian product of those lists, so keep it small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PopularityConfig:
    enabled: bool = True
    half_life_days: float | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class SegmentPopularityConfig:
    """One model per segment family (``families``; null: every family the segments have)
    plus one per crossing in ``crossings`` (e.g. ``[[age_band, region]]``)."""

    enabled: bool = True
    families: list[str] | None = None
    crossings: list[list[str]] = field(default_factory=list)
    prior_weight: float = 100.0
    half_life_days: float | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class PersonalFrequencyConfig:
    enabled: bool = True
    half_life_days: float | None = None
    popularity_half_life_days: float | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class ALSConfig:
    enabled: bool = True
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    # none | log | bm25: how purchase counts are weighted before factorisation.
    weighting: str = "bm25"
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    # null: the GPU when implicit has CUDA and one is present.
    use_gpu: bool | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class BPRConfig:
    enabled: bool = True
    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    use_gpu: bool | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class EASEConfig:
    enabled: bool = True
    l2: float = 500.0
    min_support: int = 5
    # Dense item × item inversion: ~n² · 4 bytes and ~n³ time; see segrec.baselines.ease.
    max_items: int = 10000
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class BaselinesConfig:
    """Which baselines run, with what hyper-parameters and tuning grids.

    ``cold_fallback``: the segment families (crossed) whose popularity scores customers a
    personalised baseline cannot score; null: the segment-popularity model that does best
    on the validation period's cold customers; [] : global popularity.
    """

    cold_fallback: list[str] | None = None
    popularity: PopularityConfig = field(default_factory=PopularityConfig)
    segment_popularity: SegmentPopularityConfig = field(default_factory=SegmentPopularityConfig)
    personal_frequency: PersonalFrequencyConfig = field(default_factory=PersonalFrequencyConfig)
    als: ALSConfig = field(default_factory=ALSConfig)
    bpr: BPRConfig = field(default_factory=BPRConfig)
    ease: EASEConfig = field(default_factory=EASEConfig)
