"""Feature arithmetic on hand-made histories: decay, recency, repurchase intervals."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from segrec.ranking.candidates import Block, DenseScores, neighbour_scores
from segrec.ranking.config import RankingConfig
from segrec.ranking.features import names_for, pair_features, ranks_and_gaps
from segrec.ranking.state import RankingState
from segrec.ranking.stats import FAR
from segrec.recommender import History
from tests.evaluation.toy import history

ITEMS = ["a", "b", "c", "d"]
# x buys a every 10 days (30, 20, 10 days ago), b once 14 days ago; y buys c and a today-1.
ROWS = [
    ("x", "a", 30),
    ("x", "a", 20),
    ("x", "a", 10),
    ("x", "b", 14),
    ("y", "c", 1),
    ("y", "a", 1),
    ("y", "c", 29),
]
SEGMENTS = {"age": {"x": "young", "y": "old", "z": "old"}}
CATS = ["dairy", "dairy", "fruit", None]


@pytest.fixture
def cfg() -> RankingConfig:
    cfg = RankingConfig()
    cfg.features.short_half_life_days = 10.0
    cfg.features.long_half_life_days = 20.0
    cfg.features.recent_days = 15
    cfg.neighbours.min_support = 1
    cfg.neighbours.min_co = 1  # the toy's pairs are each seen together once
    return cfg


def toy() -> History:
    hist = history(ROWS, ITEMS, SEGMENTS)
    return dataclasses.replace(hist, items=pl.DataFrame({"item_id": ITEMS, "category": CATS}))


def features_of(cfg: RankingConfig, customer: str, items: list[str], **sources) -> dict:
    hist = toy()
    state = RankingState.build(hist, cfg)
    ids = pl.Series([customer])
    block = Block(
        state.customer_rows(ids),
        state.segment_index(hist.segments, ids),
        {k: DenseScores(v) for k, v in sources.items()},
    )
    cols = hist.item_map.encode(items)
    b = np.zeros(len(cols), np.int64)
    x = pair_features(state, block, neighbour_scores(state, block.rows), b, cols, list(sources))
    names = names_for(state, list(sources))
    return {n: x[:, j] for j, n in enumerate(names)}


def test_counts_shares_decay_and_rank(cfg: RankingConfig) -> None:
    f = features_of(cfg, "x", ["a", "b", "c"])
    assert f["own_line_share"].tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert f["own_day_share"].tolist() == pytest.approx([0.75, 0.25, 0.0])
    expected_a = 0.5**3 + 0.5**2 + 0.5**1  # ages 30, 20, 10 with a 10-day half-life
    assert f["own_decay_short"][0] == pytest.approx(expected_a)
    assert f["own_decay_short"][1] == pytest.approx(0.5**1.4)
    assert f["own_decay_long"][0] == pytest.approx(0.5**1.5 + 0.5**1 + 0.5**0.5)
    assert f["own_rank"].tolist() == [1, 2, FAR]
    assert f["is_new"].tolist() == [0, 0, 1]
    # 30 days of history: 30/7 weeks, a bought on 3 days.
    assert f["own_days_per_week"][0] == pytest.approx(3 / (30 / 7))


def test_recency_and_repurchase_interval(cfg: RankingConfig) -> None:
    f = features_of(cfg, "x", ["a", "b", "c"])
    assert f["days_since_item"].tolist() == pytest.approx([10, 14, FAR])
    assert f["item_interval"].tolist() == pytest.approx([10, FAR, FAR])  # (30 - 10) / 2
    assert f["since_over_interval"].tolist() == pytest.approx([1.0, -1.0, -1.0])
    assert f["cust_days_since"][0] == pytest.approx(10)
    assert f["cust_items_per_visit"][0] == pytest.approx(2 / 4)


def test_item_popularity_repeat_rate_and_segment_share(cfg: RankingConfig) -> None:
    f = features_of(cfg, "y", ["a", "c", "d"])
    # Lines: a 4, b 1, c 2 (of 7); recent (< 15 days): a 2 (10, 1), b 1, c 1 (of 4).
    assert f["item_share"].tolist() == pytest.approx([4 / 7, 2 / 7, 0])
    assert f["item_recent_share"].tolist() == pytest.approx([2 / 4, 1 / 4, 0])
    # a: bought by x (3 days) and y (1 day): one repeat buyer of two.
    assert f["item_repeat_rate"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert f["item_age"].tolist() == pytest.approx([30, 29, FAR])
    # Segment "old" is y alone: c is a larger share of its purchases than overall.
    assert f["seg_lift:age"][1] > 1 > f["seg_lift:age"][0]


def test_category_shares_tell_new_items_of_a_familiar_category(cfg: RankingConfig) -> None:
    # x: a 3 lines, b 1 line, both dairy; y: a 1 (dairy), c 2 (fruit); d has no category.
    f = features_of(cfg, "y", ["b", "c", "d"])
    assert f["attr_line_share:category"].tolist() == pytest.approx([1 / 3, 2 / 3, 0])
    assert f["attr_item_share:category"].tolist() == pytest.approx([1 / 5, 1.0, 0])
    decay = features_of(cfg, "y", ["a"])["attr_decay_share:category"][0]
    assert decay == pytest.approx(0.5 ** (1 / 20) / (2 * 0.5 ** (1 / 20) + 0.5 ** (29 / 20)))


def test_a_cold_customer_has_no_history_features(cfg: RankingConfig) -> None:
    f = features_of(cfg, "nobody", ["a", "b"])
    assert f["is_new"].tolist() == [1, 1]
    assert f["own_line_share"].tolist() == [0, 0]
    assert f["cust_days_since"].tolist() == [FAR, FAR]
    assert f["nbr_score"].tolist() == [0, 0]


def test_neighbours_reward_items_bought_with_the_customers_items(cfg: RankingConfig) -> None:
    # y bought a and c together (1 day ago): for x, who bought a, c has an affinity; d none.
    f = features_of(cfg, "x", ["c", "d"])
    assert f["nbr_score"][0] > 0 == f["nbr_score"][1]


def test_source_scores_rank_and_gap_are_within_the_customer(cfg: RankingConfig) -> None:
    scores = np.array([[-np.inf, 0.5, 2.0, 1.0, 0.0]], np.float32)
    f = features_of(cfg, "x", ["a", "b", "c"], ease=scores)
    assert f["src_score:ease"].tolist() == [0.5, 2.0, 1.0]
    assert f["src_rank:ease"].tolist() == [3, 1, 2]
    assert f["src_gap:ease"].tolist() == [-1.5, 0.0, -1.0]


def test_rank_and_gap_helpers_work_per_block_position() -> None:
    b = np.array([0, 0, 0, 2, 2])
    v = np.array([1.0, 3.0, 2.0, 5.0, 7.0], np.float32)
    rank, gap = ranks_and_gaps(b, v)
    assert rank.tolist() == [3, 1, 2, 2, 1]
    assert gap.tolist() == [-2, 0, -1, -2, 0]
    empty = ranks_and_gaps(np.zeros(0, np.int64), v[:0])
    assert [a.tolist() for a in empty] == [[], []]


def test_ranks_and_gaps_match_a_lexsort_with_ties() -> None:
    """The compiled ranks order each customer's values as ``np.lexsort((-v, b))`` does:
    ties by position, float32 gaps to the customer's largest."""
    rng = np.random.default_rng(0)
    b = np.sort(rng.integers(0, 30, 600))
    v = rng.integers(0, 5, 600).astype(np.float32) / 4  # many ties
    order = np.lexsort((-v, b))
    first = b.searchsorted(b)
    want_rank = np.empty(600, np.float32)
    want_rank[order] = (np.arange(600) - first + 1).astype(np.float32)
    rank, gap = ranks_and_gaps(b, v)
    np.testing.assert_array_equal(rank, want_rank)
    np.testing.assert_array_equal(gap, v - v[order[first]])


def test_dense_scores_make_non_finite_scores_the_lowest() -> None:
    scores = np.array([[np.inf, -np.inf, np.nan, 2.5], [1e40, 1.0, -1.0, 0.0]])
    got = DenseScores(scores).at(np.array([0, 0, 0, 0, 1, 1]), np.array([0, 1, 2, 3, 0, 2]))
    assert got.dtype == np.float32
    assert got.tolist() == [-1e9, -1e9, -1e9, 2.5, -1e9, -1.0]  # 1e40 overflows float32
