"""Typed configuration of the ranking stage (``conf/ranking/*.yaml``).

Plain dataclasses, no Hydra import: the serving path reads them from the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

# Retrieval sources the ranker builds itself inside its state (segrec.ranking.sources):
# scored from the customer's purchases, so the bundle alone can serve them.
OWN_SOURCES = ("ease",)


@dataclass
class CandidateConfig:
    """How many items each candidate source contributes per customer (their union is
    ranked). ``sources`` maps a retrieval model's name to its top-N: one of
    ``OWN_SOURCES``, which the ranker builds itself, or any ``Recommender`` the caller
    supplies by name (``two_tower``, ``als`` ...)."""

    own: int = 60  # the customer's own items, by decayed purchase count
    neighbours: int = 40  # items bought together with the customer's items
    segment: int = 10  # best sellers of each of the customer's segments, per family
    popular: int = 20  # best sellers overall (decayed with the long half-life)
    sources: dict[str, int] = field(default_factory=dict)


def own_sources(cfg: CandidateConfig) -> list[str]:
    """The sources of ``cfg`` that the ranker builds itself, in config order."""
    return [name for name in cfg.sources if name in OWN_SOURCES]


@dataclass
class FeatureConfig:
    """Settings of the features (``segrec.ranking.features`` lists them)."""

    short_half_life_days: float = 14.0
    long_half_life_days: float = 60.0
    # Window of the "recent" item popularity, trend and buyer share.
    recent_days: int = 28
    # Segment families whose popularity is a feature (null: every family of the history's
    # segments). Training windows end before the history's as_of: families that change
    # with behaviour (RFM, rules) need ``segments_at`` (see HistoryRanker), or they leak.
    segment_families: list[str] | None = None
    # Crossed families whose popularity is a feature too (e.g. [[age_group, region]]): a
    # crossing's item shares are what segment popularity, the strongest baseline on items
    # new to the customer, ranks by; the plain families' shares only approximate them.
    crossings: list[list[str]] = field(default_factory=list)
    # Dirichlet prior (pseudo-purchases) shrinking a segment's item shares to the global.
    segment_prior: float = 50.0
    # Item attributes (category, brand ...) whose share of the customer's purchases is a
    # feature: an item new to the customer from a category they buy a lot is a good bet.
    item_attributes: list[str] = field(default_factory=lambda: ["category"])


@dataclass
class NeighboursConfig:
    """Item-item "bought together" similarity: cosine over baskets (or customers)."""

    # basket: items in the same basket (complements); customer: bought by the same people
    # (the taste signal EASE has): better for new items on Ta-Feng and Complete Journey
    # (NDCG@20 on new items +15% and +6%, all items within 1%).
    level: str = "customer"
    k: int = 50  # neighbours kept per item
    min_support: int = 3  # an item needs this many baskets (customers) to have neighbours
    min_co: int = 2  # pairs seen together fewer times are noise (and most of the work)
    shrink: float = 10.0  # added to the cosine's denominator: damps rare co-occurrences
    window_days: int | None = None  # only history this recent (null: all)
    # cosine (the formula above) | ease: EASE's item-item weights over the same groups,
    # each item's k largest kept (segrec.ranking.neighbours explains when each wins).
    method: str = "cosine"
    ease_l2: float = 500.0
    ease_max_items: int = 6000  # EASE inverts a dense item x item matrix: n^2 memory, n^3 time


@dataclass
class EaseSourceConfig:
    """The ranker's own ``ease`` source: EASE (Steck 2019) over the customers' binary
    purchases, each item keeping its ``keep`` largest weights (segrec.ranking.sources)."""

    l2: float = 500.0
    min_support: int = 5  # customers who bought an item, for it to be modelled
    max_items: int = 6000  # dense item x item inversion (n^2 memory, n^3 time) per window
    keep: int = 200  # weights kept per item: what the state (and the bundle) carries


@dataclass
class WindowsConfig:
    """The periods the ranker learns from: ``n`` label windows of ``label_days`` each,
    the last ending at the history's as_of, each earlier one ``stride_days`` before; the
    features of a window are as of its own start. Several windows keep one unusual month
    (a holiday) from defining what the ranker learns."""

    n: int = 3
    label_days: int = 28
    stride_days: int = 14
    # Weight of window k (0 = the latest) is decay ** k.
    decay: float = 1.0
    # Customers sampled per window (those who bought in it); null: all.
    max_customers: int | None = 20000
    # Share of negative candidates kept (weighted back up): less memory, same model.
    negative_rate: float = 0.5


@dataclass
class ModelConfig:
    """The gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier)."""

    max_iter: int = 150
    learning_rate: float = 0.08
    max_depth: int = 6
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    # OpenMP threads while fitting (null: all cores). On a shared machine 1 is often much
    # faster: busy-waiting OpenMP threads collapse when the cores are oversubscribed.
    n_threads: int | None = None


@dataclass
class RankingConfig:
    """Candidates, features, training windows and the tree model of the ranker."""

    enabled: bool = True
    # In the evaluation, also a row for the ranker without retrieval sources (ablation).
    evaluate_history_only: bool = True
    # How items new to the customer are ordered (segrec.ranking.new_items): model (the
    # trees) | prior (after the customer's own items, by segment popularity) | blend (the
    # mean of the two logs, interleaved) | linear (a logistic regression over popularity,
    # segment, neighbour and source features) | ensemble (the mean of the trees', the
    # linear model's and the prior's logs) | auto (the best of the others on the
    # latest window, held out).
    new_items: str = "auto"
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    neighbours: NeighboursConfig = field(default_factory=NeighboursConfig)
    ease: EaseSourceConfig = field(default_factory=EaseSourceConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0


def ranking_config(values: dict[str, Any]) -> RankingConfig:
    """A ``RankingConfig`` from its ``asdict`` form (as saved beside a fitted ranker),
    refusing unknown keys; no OmegaConf needed on the serving path."""
    return _build(RankingConfig, values, "ranking")


def _build(cls: type, values: dict[str, Any], path: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{path}.{name}")
        kwargs[name] = value
    return cls(**kwargs)
