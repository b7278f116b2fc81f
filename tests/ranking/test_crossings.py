"""Crossed segment families as ranker features: the crossing's item shares are those of a
family whose labels are the joined labels, and one customer ranks as in a block."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from segrec.baselines import Popularity
from segrec.ranking import DenseScores, HistoryRanker, RankingState
from segrec.recommender import History
from segrec.segments.crossing import family_labels, label_of
from tests.ranking.toy import habits, small_config

CROSSED = "taste × shop"


@pytest.fixture(scope="module")
def hist() -> History:
    """The toy habits plus a second family, ``shop`` (three labels, unrelated to taste)."""
    base = habits()
    assert base.segments is not None
    shop = pl.Series([f"s{i % 3}" for i in range(base.segments.height)])
    return dataclasses.replace(base, segments=base.segments.with_columns(shop.alias("shop")))


def test_a_crossing_shares_equal_those_of_its_joined_labels(hist: History) -> None:
    cfg = small_config()
    cfg.features.crossings = [["taste", "shop"]]
    state = RankingState.build(hist, cfg)
    assert state.families == ("taste", "shop", CROSSED)
    assert hist.segments is not None
    joined = hist.segments.select("customer_id", family_labels(hist.segments, CROSSED))
    alone = small_config()
    alone.features.segment_families = [CROSSED]
    direct = RankingState.build(dataclasses.replace(hist, segments=joined), alone)
    crossed, expected = state.segments[2], direct.segments[0]
    assert crossed.labels == expected.labels and "A × s1" in crossed.labels
    np.testing.assert_array_equal(crossed.share, expected.share)


def test_one_customer_builds_its_crossed_label_from_its_parts(hist: History) -> None:
    cfg = small_config()
    cfg.features.crossings = [["taste", "shop"]]
    cfg.candidates.sources = {"popularity": 5}
    ranker = HistoryRanker(cfg, {"popularity": Popularity}).fit(hist)
    assert "seg_share:taste × shop" in ranker.fitted[1].features
    assert hist.segments is not None
    rows = {r["customer_id"]: r for r in hist.segments.iter_rows(named=True)}
    for customer in ["c000", "c001", "c017", "c118"]:
        ids = pl.Series([customer])
        scores = ranker.models["popularity"].score(ids)
        labels = {f: rows[customer][f] for f in ("taste", "shop")}
        items, _ = ranker.rank(customer, {"popularity": DenseScores(scores)}, labels, k=8)
        row = ranker.score(ids)[0]
        np.testing.assert_array_equal(items, np.lexsort((np.arange(len(row)), -row))[:8])


def test_crossed_labels_and_errors() -> None:
    assert label_of({"taste": "A", "shop": "s1"}, CROSSED) == "A × s1"
    assert label_of({"taste": "A"}, CROSSED) is None
    assert label_of({"taste": "A"}, "taste") == "A"
    cfg = small_config()
    cfg.features.crossings = [["taste", "store"]]
    with pytest.raises(ValueError, match=r"segment families \['store'\] not in segments"):
        RankingState.build(habits(), cfg)
