"""Each baseline's own arithmetic, checked by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segrec.baselines import EASE, PersonalFrequency, Popularity, SegmentPopularity
from segrec.baselines.ease import ease_weights, gram_matrix, symmetrize_upper
from segrec.baselines.implicit_models import resolve_gpu, weigh
from tests.evaluation.toy import history

ITEMS = ["a", "b", "c", "d"]
ROWS = [("x", "a", 1), ("x", "a", 2), ("x", "b", 90), ("y", "c", 1), ("y", "a", 1), ("z", "d", 5)]
SEGMENTS = {
    "age": {"x": "young", "y": "old", "z": "old", "w": "young", "v": "unknown"},
    "region": {"x": "n", "y": "n", "z": "s", "w": "s", "v": "s"},
}


def test_popularity_counts_lines_and_can_favour_recent_sales() -> None:
    hist = history(ROWS, ITEMS)
    plain = Popularity().fit(hist).score(pl.Series(["anyone"]))[0]
    assert plain[1:].tolist() == [3, 1, 1, 1]
    recent = Popularity(half_life_days=1).fit(hist).score(pl.Series(["anyone"]))[0]
    assert recent[2] < recent[4] < recent[3]  # b (90 days) < d (5 days) < c (1 day)


def test_segment_popularity_shrinks_each_segment_towards_global() -> None:
    hist = history(ROWS, ITEMS, SEGMENTS)
    model = SegmentPopularity(["age"], prior_weight=2.0).fit(hist)
    assert model.name == "segment_popularity[age]"
    scores = model.score(pl.Series(["w", "z", "v", "stranger"]))
    glob = np.array([3, 1, 1, 1]) / 6
    young = (np.array([2, 1, 0, 0]) + 2 * glob) / (3 + 2)  # x's lines, shrunk
    np.testing.assert_allclose(scores[0, 1:], young, rtol=1e-6)
    old = (np.array([1, 0, 1, 1]) + 2 * glob) / (3 + 2)
    np.testing.assert_allclose(scores[1, 1:], old, rtol=1e-6)
    # "unknown" is a label like any other here; a customer without labels gets global.
    np.testing.assert_allclose(scores[2, 1:], glob, rtol=1e-6)
    np.testing.assert_allclose(scores[3, 1:], glob, rtol=1e-6)


def test_segment_popularity_crosses_families_and_names_bad_ones() -> None:
    hist = history(ROWS, ITEMS, SEGMENTS)
    model = SegmentPopularity(["age", "region"], prior_weight=0.0).fit(hist)
    assert model.name == "segment_popularity[age×region]"
    old_n = model.score(pl.Series(["y"]))[0, 1:]
    np.testing.assert_allclose(old_n, [0.5, 0, 0.5, 0])
    # Without prior, a customer without labels still gets global popularity, not NaN.
    np.testing.assert_allclose(
        model.score(pl.Series(["stranger"]))[0, 1:], [0.5, 1 / 6, 1 / 6, 1 / 6]
    )
    with pytest.raises(ValueError, match=r"unknown segment families \['income'\]"):
        SegmentPopularity(["income"]).fit(hist)
    with pytest.raises(ValueError, match="no segment labels"):
        SegmentPopularity(["age"]).fit(history(ROWS, ITEMS))


def test_personal_frequency_ranks_own_purchases_then_popularity() -> None:
    hist = history(ROWS, ITEMS)
    model = PersonalFrequency().fit(hist)
    order = np.argsort(-model.score(pl.Series(["x"]))[0], kind="stable")
    assert hist.item_map.decode(order[:4]).tolist() == ["a", "b", "c", "d"]
    # With a short half-life, x's old purchase of b still ranks above unbought items.
    decayed = PersonalFrequency(half_life_days=1).fit(hist).score(pl.Series(["x"]))[0]
    assert decayed[1] > decayed[2] > decayed[3] >= decayed[4]


def test_ease_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((200, 30)) < 0.2).astype(np.float32)
    weights = ease_weights(x.T @ x, 5.0)
    p = np.linalg.inv(x.T.astype(np.float64) @ x + 5 * np.eye(30))
    expected = p / -np.diag(p)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_block_helpers_match_their_dense_equivalents() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((7, 7)).astype(np.float32)
    b = a.copy()
    symmetrize_upper(b, block=3)
    np.testing.assert_array_equal(b, np.triu(a) + np.triu(a, 1).T)
    import scipy.sparse as sp

    x = sp.random(50, 9, density=0.3, format="csr", random_state=2, dtype=np.float32)
    np.testing.assert_allclose(gram_matrix(x, block=4), (x.T @ x).toarray(), rtol=1e-5)


def test_ease_models_only_supported_items_and_ranks_the_rest_after() -> None:
    hist = history([*ROWS, ("w", "a", 3), ("w", "c", 3)], ITEMS)
    model = EASE(l2=1.0, min_support=2, fallback=Popularity()).fit(hist)
    assert model._columns.tolist() == [1, 3]  # a (3 customers), c (2)
    scores = model.score(pl.Series(["y"]))[0]
    assert min(scores[1], scores[3]) > max(scores[2], scores[4])
    # z bought only d, which is not modelled: scored by the fallback.
    np.testing.assert_array_equal(
        model.score(pl.Series(["z"])), Popularity().fit(hist).score(pl.Series(["z"]))
    )
    capped = EASE(l2=1.0, min_support=1, max_items=1).fit(hist)
    assert capped._columns.tolist() == [1]


def test_weighting_options() -> None:
    hist = history(ROWS, ITEMS)
    counts = hist.matrix()
    assert weigh(counts, "none", 100, 0.8) is counts
    np.testing.assert_allclose(weigh(counts, "log", 100, 0.8).data, np.log1p(counts.data))
    bm25 = weigh(counts, "bm25", 100, 0.8)
    assert bm25.shape == counts.shape and bm25.dtype == np.float32
    with pytest.raises(ValueError, match="weighting"):
        weigh(counts, "tfidf", 100, 0.8)


def test_gpu_is_used_only_where_present() -> None:
    import implicit.gpu

    assert resolve_gpu(None) == bool(implicit.gpu.HAS_CUDA)
    assert resolve_gpu(False) is False
    if not implicit.gpu.HAS_CUDA:
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_gpu(True)
