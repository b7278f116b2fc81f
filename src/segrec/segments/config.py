"""Typed configuration of the segment families (``conf/segments/*.yaml``).

Families are grouped by kind, each kind a mapping from family name to its settings, so that
a misspelt key fails when Hydra composes the config and a family can be changed or removed
from the command line (``segments.rfm.rfm.bins=5``, ``~segments.learned.taste``). Plain
dataclasses, no Hydra import: the serving path reads them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AttributeFamilyConfig:
    """A customer attribute as a family: categorical as is, or numeric cut at ``edges``.

    Buckets are left-closed, ``[edges[i], edges[i+1])``, so ``edges: [25, 35]`` on an integer
    age gives ``<25``, ``25-34``, ``35+``. ``labels`` (one more than ``edges``) renames them.
    Values listed in ``unknown_values`` (a dataset's own "Unknown") count as unknown.
    """

    column: str = "???"
    edges: list[float] | None = None
    labels: list[str] | None = None
    unknown_values: list[str] = field(default_factory=list)


@dataclass
class RFMGroup:
    """A named region of the recency × frequency grid, inclusive score ranges [lo, hi]."""

    label: str = "???"
    r: list[int] = field(default_factory=lambda: [1, 5])
    f: list[int] = field(default_factory=lambda: [1, 5])


def _classic_groups() -> list[RFMGroup]:
    """The widely used 5 × 5 recency-frequency map; together the cells cover the grid once."""
    cells = [
        ("hibernating", (1, 2), (1, 2)),
        ("at_risk", (1, 2), (3, 4)),
        ("cant_lose_them", (1, 2), (5, 5)),
        ("about_to_sleep", (3, 3), (1, 2)),
        ("need_attention", (3, 3), (3, 3)),
        ("loyal", (3, 4), (4, 5)),
        ("promising", (4, 4), (1, 1)),
        ("new", (5, 5), (1, 1)),
        ("potential_loyalists", (4, 5), (2, 3)),
        ("champions", (5, 5), (4, 5)),
    ]
    return [RFMGroup(label, list(r), list(f)) for label, r, f in cells]


@dataclass
class RFMFamilyConfig:
    """Recency, frequency (orders) and monetary (revenue) scores, 1 = worst, ``bins`` = best.

    Edges come from quantiles of the customers active in the window, or are given (recency
    in days, frequency in orders, monetary in revenue), in which case that dimension has
    ``len(edges) + 1`` scores. Labels read ``R4-F2-M3``; with ``named: true`` they are the
    ``groups`` of the recency × frequency grid instead (champions, at_risk, ...).
    """

    bins: int = 4
    window_days: int | None = None  # null: all history before as_of
    recency_edges: list[float] | None = None
    frequency_edges: list[float] | None = None
    monetary_edges: list[float] | None = None
    monetary: bool = True  # include M in the label (needs revenue)
    named: bool = False
    groups: list[RFMGroup] = field(default_factory=_classic_groups)


@dataclass
class RuleConfig:
    """One rule: every condition that is set must hold. ``days`` bounds ``bought`` and
    ``spent_over`` to the last N days before as_of (null: all history)."""

    label: str = "???"
    never_purchased: bool = False
    bought: str | None = None  # a value of ``bought_attribute``, e.g. a category
    bought_attribute: str = "category"
    spent_over: float | None = None
    lapsed_days: int | None = None  # bought before, but nothing in the last N days
    days: int | None = None


@dataclass
class RulesFamilyConfig:
    """Rules tried in order; the first that holds names the customer, else ``otherwise``."""

    rules: list[RuleConfig] = field(default_factory=list)
    otherwise: str = "other"


@dataclass
class LearnedFamilyConfig:
    """k-means (FAISS) over customer vectors; clusters named by their highest-lift categories.

    ``source: category_spend`` builds each customer's spend profile over ``attribute`` in
    the window (the ``max_categories`` biggest values, the rest pooled); ``source: vectors``
    reads ``customer_id`` + ``vector`` from ``vectors_path`` (e.g. customer embeddings of a
    trained model). Either way the names come from category-spend lift.
    """

    k: int = 8
    source: str = "category_spend"
    vectors_path: str | None = None
    attribute: str = "category"
    spend: str = "revenue"  # revenue | quantity | lines
    window_days: int | None = None
    max_categories: int = 200
    niter: int = 25
    # k-means restarts, best kept: unequal cluster sizes trap a single run in local optima,
    # and training runs on a sample (FAISS: 256 points per centroid), so restarts are cheap.
    nredo: int = 5
    seed: int = 0
    label_categories: int = 2  # categories named per cluster
    label_min_share: float = 0.02  # a named category holds at least this share of the spend


@dataclass
class SegmentReportConfig:
    """What the segment report shows."""

    category_attribute: str = "category"
    top_n: int = 5
    min_buyers: int = 5  # lift is only shown for categories/items with this many buyers
    max_plot_labels: int = 20  # larger families plot their biggest labels only


@dataclass
class SegmentsConfig:
    """Every segment family, when to assign them, and the report period.

    ``as_of``: an ISO date, ``end`` (the day after the last purchase), or null for the
    data's test cutoff, so that the model's inputs never see the test period.
    """

    as_of: str | None = None
    period_days: int = 28
    attribute: dict[str, AttributeFamilyConfig] = field(default_factory=dict)
    rfm: dict[str, RFMFamilyConfig] = field(default_factory=dict)
    rules: dict[str, RulesFamilyConfig] = field(default_factory=dict)
    learned: dict[str, LearnedFamilyConfig] = field(default_factory=dict)
    report: SegmentReportConfig = field(default_factory=SegmentReportConfig)

    @property
    def families(self) -> list[str]:
        """Family names in output column order: attribute, rfm, rules, learned."""
        return [*self.attribute, *self.rfm, *self.rules, *self.learned]
