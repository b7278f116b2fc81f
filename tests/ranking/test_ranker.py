"""The ranker honours the scoring contract, is deterministic and never looks ahead."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segrec.baselines import Popularity
from segrec.ranking import HistoryRanker
from segrec.ranking.candidates import DenseScores
from segrec.ranking.training import training_set, training_windows
from segrec.recommender import NEVER, History, Recommender, check_scores, top_k
from tests.ranking.toy import habits, small_config

CUSTOMERS = pl.Series(["c000", "c001", "c017", "newcomer", "stranger"])


@pytest.fixture(scope="module")
def hist() -> History:
    return habits()


@pytest.fixture(scope="module")
def ranker(hist: History) -> HistoryRanker:
    return HistoryRanker(small_config()).fit(hist)


def with_rows(hist: History, rows: pl.DataFrame) -> History:
    """The same history with extra interaction rows (not checked against as_of)."""
    frame = pl.concat([hist.interactions, rows.select(hist.interactions.columns)])
    return History(frame, hist.as_of, hist.customers, hist.items, hist.item_map, hist.segments)


def purchase(hist: History, customer: str, item: str, when) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [customer],
            "item_id": [item],
            "timestamp": [when],
            "quantity": [1.0],
            "revenue": [1.0],
            "basket_id": [f"{customer}-planted"],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )


def test_scores_follow_the_contract(ranker: HistoryRanker, hist: History) -> None:
    assert isinstance(ranker, Recommender) and ranker.name and ranker.cold_start
    scores = ranker.score(CUSTOMERS)
    check_scores(scores, CUSTOMERS.len(), hist.n_columns, ranker.name)
    assert (scores[:, 0] == NEVER).all() and np.isfinite(scores[:, 1:]).all()
    # Each customer's candidates outrank every other item, and cold ones get some too.
    assert ((scores[:, 1:] >= 1.0).sum(axis=1) >= 5).all()


def test_the_ranker_recommends_the_customers_own_habits(
    ranker: HistoryRanker, hist: History
) -> None:
    items, _ = top_k(ranker.score(pl.Series(["c000"])), 3)
    bought = set(hist.purchased(pl.Series(["c000"])).indices)
    assert set(items[0]) <= bought


def test_fitting_twice_gives_the_same_scores(ranker: HistoryRanker, hist: History) -> None:
    again = HistoryRanker(small_config()).fit(hist)
    np.testing.assert_array_equal(again.score(CUSTOMERS), ranker.score(CUSTOMERS))


def test_a_purchase_after_the_cutoff_changes_nothing(ranker: HistoryRanker, hist: History) -> None:
    planted = purchase(hist, "c000", "i29", hist.as_of + timedelta(days=1))
    other = HistoryRanker(small_config()).fit(with_rows(hist, planted))
    np.testing.assert_array_equal(other.score(CUSTOMERS), ranker.score(CUSTOMERS))


def test_a_window_never_sees_purchases_after_its_end(hist: History) -> None:
    """A purchase planted after the second window ends leaves that window's rows alone."""
    cfg = small_config()
    windows = training_windows(hist, cfg.windows)
    assert len(windows) == 2 and windows[1].end < windows[0].end
    planted = purchase(hist, "c001", "i00", windows[1].end + timedelta(hours=1))
    before = training_set(hist, cfg, {})
    after = training_set(with_rows(hist, planted), cfg, {})
    for data in (before, after):
        assert set(np.unique(data.window)) == {0, 1}
    old, new = before.window == 1, after.window == 1
    np.testing.assert_array_equal(before.x[old], after.x[new])
    np.testing.assert_array_equal(before.y[old], after.y[new])


def test_rank_one_customer_agrees_with_score(ranker: HistoryRanker) -> None:
    scores = ranker.score(pl.Series(["c001"]))
    expected_items, expected = top_k(scores, 5)
    items, values = ranker.rank("c001", {}, labels={"taste": "B"}, k=5)
    np.testing.assert_array_equal(items, expected_items[0])
    np.testing.assert_array_equal(values, expected[0])
    bought = items[:2]
    rest, _ = ranker.rank("c001", {}, labels={"taste": "B"}, k=5, exclude=bought)
    assert not set(rest) & set(bought)


def test_save_and_load_give_the_same_ranking(
    ranker: HistoryRanker, hist: History, tmp_path: Path
) -> None:
    ranker.save(tmp_path / "ranker")
    loaded = HistoryRanker.load(tmp_path / "ranker", segments=hist.segments)
    assert loaded.state is not None and "_derived" in vars(loaded.state)  # built at load
    np.testing.assert_array_equal(loaded.score(CUSTOMERS), ranker.score(CUSTOMERS))
    assert loaded.importances() == ranker.importances()


def test_any_recommender_is_a_candidate_source(hist: History) -> None:
    cfg = small_config()
    cfg.candidates.sources = {"popularity": 5}
    with pytest.raises(ValueError, match="no model given for \\['popularity'\\]"):
        HistoryRanker(cfg)
    ranker = HistoryRanker(cfg, {"popularity": Popularity}).fit(hist)
    assert "src_score:popularity" in ranker.importances()
    scores = ranker.score(CUSTOMERS)
    check_scores(scores, CUSTOMERS.len(), hist.n_columns, ranker.name)
    popular = DenseScores(ranker.models["popularity"].score(pl.Series(["c000"])))
    items, _ = ranker.rank("c000", {"popularity": popular}, labels={"taste": "A"}, k=5)
    np.testing.assert_array_equal(items, top_k(scores[:1], 5)[0][0])


def test_importances_name_every_feature(ranker: HistoryRanker) -> None:
    imp = ranker.importances()
    assert sum(imp.values()) == pytest.approx(1.0)
    assert "seg_share:taste" in imp and "own_decay_long" in imp
