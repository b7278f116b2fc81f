"""Features of (customer, item) candidate pairs, as one float32 matrix.

The ranker is fitted on windows whose histories are shorter than the one it is applied to
(and Ta-Feng's history is only four months), so raw counts would mean different things at
fit and apply time. Features are therefore shares, rates per week, decayed counts (whose
scale does not grow with history length), days, and ranks within the customer's
candidates. Absent values are ``FAR`` (never) or 0, never NaN.

Groups (names in ``feature_names``):
- the pair: line and day shares of the customer's purchases, purchase days per week,
  decayed counts (two half-lives) and share, rank among the customer's items, days since
  the last purchase, mean repurchase interval and their ratio (due soon or overdue),
  whether the item is new to the customer;
- the customer: days since the last visit, visits per week, distinct items per visit;
- the item: recent and overall sales share, trend, repeat-buyer rate, recent buyers'
  share of active customers, days on sale;
- item-item: affinity to the customer's history and its rank;
- per segment family: the item's share within the customer's label and its lift;
- per retrieval source: score, rank among the candidates, gap to the best candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from segrec.ranking.candidates import Block, PairScores
from segrec.ranking.state import RankingState
from segrec.ranking.stats import CUSTOMER_COLUMNS, FAR, ITEM_COLUMNS, PAIR_COLUMNS, position_in

BASE_FEATURES = (
    "own_line_share",
    "own_day_share",
    "own_days_per_week",
    "own_decay_short",
    "own_decay_long",
    "own_decay_share",
    "own_rank",
    "days_since_item",
    "item_interval",
    "since_over_interval",
    "is_new",
    "cust_days_since",
    "cust_days_per_week",
    "cust_items_per_visit",
    "item_recent_share",
    "item_share",
    "item_trend",
    "item_repeat_rate",
    "item_recent_buyers",
    "item_age",
    "nbr_score",
    "nbr_rank",
)

# Per item attribute: the customer's line and decayed shares in the item's value (e.g.
# category), and the item's share of that value's sales.
ATTRIBUTE_FEATURES = ("attr_line_share", "attr_decay_share", "attr_item_share")


def feature_names(
    families: Sequence[str], sources: Sequence[str], attributes: Sequence[str] = ()
) -> list[str]:
    """The columns of ``pair_features``, in order."""
    att = [f"{kind}:{a}" for a in attributes for kind in ATTRIBUTE_FEATURES]
    seg = [f"{kind}:{f}" for f in families for kind in ("seg_share", "seg_lift")]
    src = [f"{kind}:{s}" for s in sources for kind in ("src_score", "src_rank", "src_gap")]
    return [*BASE_FEATURES, *att, *seg, *src]


def names_for(state: RankingState, sources: Sequence[str]) -> list[str]:
    """The feature names of ``pair_features`` on this state with these sources."""
    return feature_names(state.families, sources, [a.name for a in state.attributes])


def ranks_and_gaps(block: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For candidate pairs grouped by customer (block position ``block``, sorted
    ascending): the 1-based rank of each value among its customer's (largest first; ties
    by order) and the value minus the largest of its customer's, float32 (m,) both."""
    rank, gap = np.empty(len(values), np.float32), np.empty(len(values), np.float32)
    _rank_runs(block, values, rank, gap)
    return rank, gap


@njit(cache=True, nogil=True)
def _rank_runs(block: np.ndarray, values: np.ndarray, rank: np.ndarray, gap: np.ndarray) -> None:
    """Per run of equal ``block``, a stable sort by descending value (the order of
    ``np.lexsort((-values, block))``), in one compiled pass: numpy's lexsort, scatter and
    gather were ten calls per feature, which is what one customer pays for."""
    s, m = 0, block.shape[0]
    while s < m:
        e = s + 1
        while e < m and block[e] == block[s]:
            e += 1
        order = np.argsort(-values[s:e], kind="mergesort")
        best = values[s + order[0]]
        for k in range(e - s):
            j = s + order[k]
            rank[j] = k + 1
            gap[j] = values[j] - best
        s = e


def _safe_div(a: np.ndarray, b: np.ndarray | np.float32, default: float = 0.0) -> np.ndarray:
    """``a / b`` where ``b > 0``, else ``default``, float32; nothing is divided where
    ``b <= 0``, so no warning to silence."""
    out = np.full(np.broadcast(a, b).shape, default, np.float32)
    return np.divide(a, b, out=out, where=np.greater(b, 0))


# Every feature that is a function of one pair's, customer's, item's or segment label's
# statistics is computed for all of them once per state (``RankingState.derived``), so a
# request gathers a few rows of each table instead of computing its ~30 columns: for one
# customer's ~120 candidates the cost is the number of numpy calls, not their size.
CUSTOMER_FEATURES = (*CUSTOMER_COLUMNS, "weeks", "days_per_week", "items_per_visit")
ITEM_FEATURES = ("recent_share", "share", "trend", "repeat_rate", "recent_buyers", "age")
# The customer's own columns among the features (``cust_*``), in BASE_FEATURES order.
_CUSTOMER_PICK = np.array(
    [CUSTOMER_FEATURES.index(n) for n in ("last_age", "days_per_week", "items_per_visit")]
)

# The pair table's columns for a pair never bought: no lines, days or decayed count;
# ages, interval and rank FAR (never).
_ABSENT = {"lines": 0.0, "days": 0.0, "decay_short": 0.0, "decay_long": 0.0}
ABSENT_PAIR = np.array([_ABSENT.get(name, FAR) for name in PAIR_COLUMNS], np.float32)


def customer_features(state: RankingState) -> np.ndarray:
    """float32 (n_rows, CUSTOMER_FEATURES): the customer table, weeks of history (at
    least 1), visits per week and distinct items per visit."""
    stats = state.customer_stats
    c = {name: stats[:, j] for j, name in enumerate(CUSTOMER_COLUMNS)}
    weeks = np.maximum(np.where(c["first_age"] < FAR, c["first_age"], 0.0) / 7.0, 1.0)
    extra = [weeks, c["days"] / weeks, _safe_div(c["items"], c["days"])]
    return np.column_stack([stats, *extra]).astype(np.float32, copy=False)


def own_features(state: RankingState) -> np.ndarray:
    """float32 (pairs + 1, 11): the features of every pair of the pair table, the
    BASE_FEATURES from ``own_line_share`` to ``is_new`` (shares of the customer's
    purchases, rates, decayed counts, recency, interval), and last those of a pair never
    bought, which ``_fill`` picks for a pair the customer never bought.

    The never-bought row is computed as customer 0's: its shares are 0 and its ages FAR
    whoever the customer (a share of no purchases is 0, weeks are at least 1)."""
    c = state.derived(customer_features)[np.append(state.pairs.rows, 0)]
    c = {name: c[:, j] for j, name in enumerate(CUSTOMER_FEATURES)}
    values = np.vstack([state.pairs.values, ABSENT_PAIR])
    p = {name: values[:, j] for j, name in enumerate(PAIR_COLUMNS)}
    never = np.arange(len(values)) == len(values) - 1
    columns = [
        _safe_div(p["lines"], c["lines"]),
        _safe_div(p["days"], c["days"]),
        (p["days"] / c["weeks"]).astype(np.float32),
        p["decay_short"],
        p["decay_long"],
        _safe_div(p["decay_long"], c["decay_long"]),
        p["rank"],
        p["last_age"],
        p["interval"],
        np.where(p["interval"] < FAR, _safe_div(p["last_age"], p["interval"]), -1.0),
        never,
    ]
    return np.column_stack(columns).astype(np.float32, copy=False)


def attribute_features(state: RankingState) -> tuple[np.ndarray, ...]:
    """Per item attribute, float32 (pairs + 1, 2): the customer's line and decayed shares
    of each (customer, value) pair of ``att.customers``, and last zeros for a value the
    customer never bought (or none: attribute tables hold no value 0)."""
    c = state.derived(customer_features)
    lines, decay = CUSTOMER_FEATURES.index("lines"), CUSTOMER_FEATURES.index("decay_long")
    out = []
    for att in state.attributes:
        table = att.customers
        rows = table.rows
        shares = np.column_stack(
            [
                _safe_div(table.column("lines"), c[rows, lines]),
                _safe_div(table.column("decay_long"), c[rows, decay]),
            ]
        )
        out.append(np.vstack([shares, np.zeros((1, 2), np.float32)]))
    return tuple(out)


def item_features(state: RankingState) -> np.ndarray:
    """float32 (n_columns, ITEM_FEATURES + one share per item attribute): recent and
    overall sales share, trend, repeat-buyer rate, recent buyers' share of active
    customers, days on sale, and the item's share of its attribute value's sales."""
    i = {name: state.item_stats[:, j] for j, name in enumerate(ITEM_COLUMNS)}
    totals = state.item_stats.sum(axis=0)
    share = _safe_div(i["lines"], np.float32(totals[ITEM_COLUMNS.index("lines")]))
    recent = _safe_div(i["recent_lines"], np.float32(totals[ITEM_COLUMNS.index("recent_lines")]))
    columns = [
        recent,
        share,
        _safe_div(recent, share),
        _safe_div(i["repeat_buyers"], i["buyers"]),
        _safe_div(i["recent_buyers"], np.float32(state.recent_customers)),
        np.minimum(i["first_age"], FAR),
    ]
    for att in state.attributes:
        value = att.codes
        columns.append(_safe_div(i["lines"], att.value_lines[value]) * (value > 0))
    return np.column_stack(columns).astype(np.float32, copy=False)


def segment_features(state: RankingState) -> tuple[np.ndarray, ...]:
    """Per segment family, float32 ((labels + 1) * n_columns, 2), row ``label *
    n_columns + item``: the label's share of the item and its lift over the item's global
    share (1 where that is 0). Flat, as one index array gathers faster than two."""
    return tuple(
        np.stack([seg.share, _safe_div(seg.share, state.global_share, 1.0)], axis=-1).reshape(-1, 2)
        for seg in state.segments
    )


@dataclass(frozen=True)
class FeatureTables:
    """Every table ``pair_features`` gathers from, laid out for one compiled pass.

    ``own``, ``customer`` and ``item``: the derived tables (``own_features``,
    ``customer_features``, ``item_features``). The attributes' (customer, value) tables
    are stacked: attribute k's rows are ``attribute_indptr[k]`` into ``attribute_values``
    (its value codes, sorted within each customer) and ``attribute_shares``, its absent
    row at ``attribute_absent[k]``; the segment families' tables likewise, family f's
    from ``segment_base[f]``."""

    own: np.ndarray
    customer: np.ndarray
    item: np.ndarray
    attribute_codes: np.ndarray  # int64 (attributes, n_columns)
    attribute_indptr: np.ndarray  # int64 (attributes, n_rows + 1)
    attribute_values: np.ndarray  # int64 (stacked pairs,)
    attribute_shares: np.ndarray  # float32 (stacked pairs, 2)
    attribute_absent: np.ndarray  # int64 (attributes,)
    segment_shares: np.ndarray  # float32 (stacked labels * n_columns, 2)
    segment_base: np.ndarray  # int64 (families,)


def feature_tables(state: RankingState) -> FeatureTables:
    """The ``FeatureTables`` of a state (``RankingState.derived``)."""
    shares = attribute_features(state)
    sizes = np.array([len(t) for t in shares], np.int64)  # pairs + the absent row
    base = _starts(sizes)
    n_rows = len(state.customer_stats)
    indptr = np.zeros((len(shares), n_rows + 1), np.int64)
    values = np.full(int(sizes.sum()), -1, np.int64)
    for k, att in enumerate(state.attributes):
        indptr[k] = att.customers.indptr + base[k]
        values[base[k] : base[k] + len(att.customers.items)] = att.customers.items
    segments = segment_features(state)
    return FeatureTables(
        own=state.derived(own_features),
        customer=state.derived(customer_features),
        item=state.derived(item_features),
        attribute_codes=np.array([att.codes for att in state.attributes], np.int64).reshape(
            len(shares), state.n_columns
        ),
        attribute_indptr=indptr,
        attribute_values=values,
        attribute_shares=_stacked(shares),
        attribute_absent=base + sizes - 1,
        segment_shares=_stacked(segments),
        segment_base=_starts(np.array([len(t) for t in segments], np.int64)),
    )


def _starts(sizes: np.ndarray) -> np.ndarray:
    """int64: where each of tables of ``sizes`` rows starts when they are stacked."""
    return (np.cumsum(sizes) - sizes).astype(np.int64)


def _stacked(tables: tuple[np.ndarray, ...]) -> np.ndarray:
    """float32 (total rows, 2): the tables one after the other (none: no rows)."""
    return np.vstack(tables) if tables else np.zeros((0, 2), np.float32)


def pair_features(
    state: RankingState,
    block: Block,
    neighbours: PairScores,
    b: np.ndarray,
    items: np.ndarray,
    sources: Sequence[str],
) -> np.ndarray:
    """float32 (pairs, features) for candidate pairs (block position ``b``, ``items``):
    rows of the derived tables, and the features that depend on the candidates (ranks
    and gaps among the customer's), side by side in ``feature_names`` order.

    The scores come from the neighbours and each source (whatever backs them); the rest
    is one compiled pass (``_fill``), where each table's gather, lookup, rank and column
    copy were numpy or numba calls of their own: about 25 per request, 2-4 µs each."""
    scores = np.empty((1 + len(sources), len(items)), np.float32)
    scores[0] = neighbours.at(b, items)
    for k, name in enumerate(sources):
        scores[1 + k] = block.sources[name].at(b, items)
    t = state.derived(feature_tables)
    n_att, n_seg = len(state.attributes), len(state.segments)
    width = len(BASE_FEATURES) + len(ATTRIBUTE_FEATURES) * n_att + 2 * n_seg + 3 * len(sources)
    x = np.empty((len(items), width), np.float32)
    _fill(
        x, b, items, block.rows, block.labels, state.pairs.indptr, state.pairs.items,
        t.own, t.customer, _CUSTOMER_PICK, t.item, t.attribute_codes, t.attribute_indptr,
        t.attribute_values, t.attribute_shares, t.attribute_absent, t.segment_shares,
        t.segment_base, state.n_columns, scores,
    )  # fmt: skip
    return x


# Where the customer's, the item's and the neighbour columns start in BASE_FEATURES (the
# pair's own, ``own_features``, come first).
_CUST = BASE_FEATURES.index("cust_days_since")
_ITEM = BASE_FEATURES.index("item_recent_share")
_NBR = BASE_FEATURES.index("nbr_score")
_N_ITEM, _N_ATT = len(ITEM_FEATURES), len(ATTRIBUTE_FEATURES)
_FIRST_ATT = len(BASE_FEATURES)  # the attribute columns, then the segments', the sources'
assert _CUST + len(_CUSTOMER_PICK) == _ITEM and _ITEM + _N_ITEM == _NBR


@njit(cache=True, nogil=True)
def _fill(
    x: np.ndarray,
    b: np.ndarray,
    items: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    pair_indptr: np.ndarray,
    pair_items: np.ndarray,
    own: np.ndarray,
    customer: np.ndarray,
    pick: np.ndarray,
    item: np.ndarray,
    att_codes: np.ndarray,
    att_indptr: np.ndarray,
    att_values: np.ndarray,
    att_shares: np.ndarray,
    att_absent: np.ndarray,
    seg_shares: np.ndarray,
    seg_base: np.ndarray,
    n_columns: int,
    scores: np.ndarray,
) -> None:
    """``pair_features``' pass: per pair, its row of each table in ``feature_names``
    order (a pair or (customer, value) never bought: the tables' absent rows), then per
    score row (neighbours first, then each source) its ranks (and the sources' gaps)."""
    n_att = att_codes.shape[0]
    first_seg = _FIRST_ATT + _N_ATT * n_att
    first_src = first_seg + 2 * seg_base.shape[0]
    for j in range(items.shape[0]):
        r, i = rows[b[j]], items[j]
        p = position_in(pair_items, i, pair_indptr[r], pair_indptr[r + 1])
        p = p if p >= 0 else own.shape[0] - 1
        for c in range(_CUST):
            x[j, c] = own[p, c]
        for c in range(pick.shape[0]):
            x[j, _CUST + c] = customer[r, pick[c]]
        for c in range(_N_ITEM):
            x[j, _ITEM + c] = item[i, c]
        x[j, _NBR] = scores[0, j]
        for k in range(n_att):
            col = _FIRST_ATT + _N_ATT * k
            p = position_in(att_values, att_codes[k, i], att_indptr[k, r], att_indptr[k, r + 1])
            p = p if p >= 0 else att_absent[k]
            x[j, col], x[j, col + 1] = att_shares[p, 0], att_shares[p, 1]
            x[j, col + 2] = item[i, _N_ITEM + k]  # the item's share of its value's sales
        for f in range(seg_base.shape[0]):
            row = seg_base[f] + labels[b[j], f] * n_columns + i
            x[j, first_seg + 2 * f], x[j, first_seg + 2 * f + 1] = (
                seg_shares[row, 0],
                seg_shares[row, 1],
            )
        for s in range(1, scores.shape[0]):
            x[j, first_src + 3 * (s - 1)] = scores[s, j]
    rank = np.empty(items.shape[0], np.float32)
    gap = np.empty(items.shape[0], np.float32)
    for s in range(scores.shape[0]):
        _rank_runs(b, scores[s], rank, gap)
        for j in range(items.shape[0]):
            if s == 0:
                x[j, _NBR + 1] = rank[j]
            else:
                col = first_src + 3 * (s - 1)
                x[j, col + 1], x[j, col + 2] = rank[j], gap[j]
