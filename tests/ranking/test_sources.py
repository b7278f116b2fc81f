"""The ranker's own retrieval source (``ease``): EASE's scores, truncated, served from the
saved state alone, ranking as the block path does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segrec.baselines import EASE, Popularity
from segrec.ranking import DenseScores, HistoryRanker, RankingState
from segrec.ranking.config import RankingConfig
from segrec.ranking.sources import item_item_scores
from segrec.recommender import History
from tests.ranking.toy import habits, small_config

L2 = 20.0


@pytest.fixture(scope="module")
def hist() -> History:
    return habits()


def ease_config(keep: int) -> RankingConfig:
    cfg = small_config()
    cfg.candidates.sources = {"ease": 5}
    cfg.ease.l2, cfg.ease.min_support, cfg.ease.keep = L2, 1, keep
    return cfg


def full_weights(hist: History) -> np.ndarray:
    """EASE's B in catalog columns, as the baseline fits it (0 outside modelled items)."""
    model = EASE(l2=L2, min_support=1).fit(hist)
    out = np.zeros((hist.n_columns, hist.n_columns), np.float32)
    out[np.ix_(model._columns, model._columns)] = model._weights
    return out


def test_ease_source_scores_are_eases_positive_weights_summed(hist: History) -> None:
    """Keeping every weight, the state holds B's positive part, and a customer's score is
    the sum of it over the items they bought: EASE's score without its negative links."""
    state = RankingState.build(hist, ease_config(keep=hist.n_columns))
    b = full_weights(hist)
    np.testing.assert_allclose(state.sources["ease"].toarray(), np.maximum(b, 0), atol=1e-6)
    ids = pl.Series(["c000", "c001", "c017", "newcomer"])
    rows = state.customer_rows(ids)
    bought = (hist.matrix()[hist.customer_rows(ids)].toarray() > 0).astype(np.float32)
    want = bought @ np.maximum(b, 0)
    scores = item_item_scores(state, rows, "ease", 4)
    block = np.repeat(np.arange(len(rows)), hist.n_columns)
    items = np.tile(np.arange(hist.n_columns), len(rows))
    got = scores.at(block, items).reshape(len(rows), -1)
    np.testing.assert_allclose(got[:-1], want[:-1], rtol=1e-5, atol=1e-6)
    top = scores.top(3)[0]
    assert list(top) == list(np.argsort(-want[0], kind="stable")[:3])
    # EASE cannot score a cold customer: like the baseline, it falls back to best sellers.
    assert rows[-1] == 0
    share = state.global_share.astype(np.float64)
    share[0] = -1.0
    best = np.argsort(-share, kind="stable")[:4]
    assert list(scores.top(4)[-1]) == list(best)
    np.testing.assert_array_equal(got[-1, best], state.global_share[best])
    assert np.count_nonzero(got[-1]) == 4


def test_a_block_scores_each_customer_as_alone(hist: History) -> None:
    """Cold customers between warm ones in one block get the best sellers, warm ones their
    own sums: the same pairs as each scored alone, keys sorted."""
    state = RankingState.build(hist, ease_config(keep=5))
    rows = state.customer_rows(pl.Series(["newcomer", "c000", "nobody", "c017", "c001"]))
    block = item_item_scores(state, rows, "ease", 3)
    assert np.all(np.diff(block.keys) > 0)
    items = np.arange(hist.n_columns)
    for i, row in enumerate(rows):
        alone = item_item_scores(state, row[None], "ease", 3)
        np.testing.assert_array_equal(
            block.at(np.full_like(items, i), items), alone.at(0 * items, items)
        )
        np.testing.assert_array_equal(block.top(3)[i], alone.top(3)[0])
    assert np.count_nonzero(block.at(np.zeros_like(items), items)) == 3


def test_keep_bounds_each_item_to_its_largest_weights(hist: History) -> None:
    state = RankingState.build(hist, ease_config(keep=3))
    w, b = state.sources["ease"], full_weights(hist)
    assert np.diff(w.indptr).max() == 3
    for i in np.flatnonzero(np.diff(w.indptr)):
        kept = w.indices[w.indptr[i] : w.indptr[i + 1]]
        assert set(kept) == set(np.argsort(-b[i], kind="stable")[:3])


def test_a_loaded_ranker_serves_its_own_source_as_the_block_path(
    hist: History, tmp_path: Path
) -> None:
    """Saved and loaded, the ranker scores ``ease`` itself from its state: ``rank`` takes
    only the outside source's scores and gives the block path's (``score``) ranking."""
    cfg = ease_config(keep=10)
    cfg.candidates.sources = {"popularity": 5, "ease": 5}
    fitted = HistoryRanker(cfg, {"popularity": Popularity}).fit(hist)
    assert "src_score:ease" in fitted.model.features
    fitted.save(tmp_path)
    popularity = fitted.models["popularity"]
    loaded = HistoryRanker.load(tmp_path, {"popularity": popularity}, hist.segments)
    ids = ["c000", "c001", "c033", "newcomer"]
    block = loaded.score(pl.Series(ids))
    np.testing.assert_array_equal(block, fitted.score(pl.Series(ids)))
    for i, c in enumerate(ids):
        label = "AB"[int(c[1:]) % 2] if c != "newcomer" else "B"
        given = {"popularity": DenseScores(popularity.score(pl.Series([c])))}
        items, values = loaded.rank(c, given, {"taste": label}, k=8)
        # ``rank`` returns candidates only; ``score`` ranks the rest after them.
        order = np.lexsort((np.arange(block.shape[1]), -block[i]))[: len(items)]
        assert len(items) >= 5
        np.testing.assert_array_equal(items, order)
        np.testing.assert_array_equal(values, block[i, order])
    with pytest.raises(ValueError, match=r"no scores given for \['popularity'\]"):
        loaded.rank(ids[0], {}, {}, k=8)


def test_a_ranker_with_only_its_own_source_needs_no_model(hist: History) -> None:
    ranker = HistoryRanker(ease_config(keep=10)).fit(hist)
    assert ranker.models == {}
    items, _ = ranker.rank("c000", {}, {"taste": "A"}, k=5)
    assert len(items) == 5
