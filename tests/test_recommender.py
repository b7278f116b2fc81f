"""The scoring contract: History, top-K with exact tie-breaking, exclusion, recommend()."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from segrec import recommender
from segrec.baselines import Popularity
from segrec.recommender import (
    ROWS_PER_THREAD,
    History,
    TopK,
    check_scores,
    chunk_size_for,
    compute_threads,
    exclude,
    recommend,
    top_k,
    top_k_and_new,
)
from tests.evaluation.toy import AS_OF, history, interactions

ITEMS = ["a", "b", "c", "d", "e"]


def reference_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full stable sort: best score first, smaller index first among ties."""
    cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((cols, -scores), axis=1)[:, :k]
    values = np.take_along_axis(scores, order, axis=1)
    order = np.where(np.isneginf(values), 0, order)
    return order, values


def test_top_k_equals_a_full_stable_sort_whatever_the_ties() -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        scores = rng.integers(0, 4, size=(6, 12)).astype(np.float32)  # many ties
        scores[:, 0] = -np.inf
        if trial % 3 == 0:
            scores[rng.random(scores.shape) < 0.6] = -np.inf
        k = int(rng.integers(1, 13))
        idx, val = top_k(scores, k)
        ref_idx, ref_val = reference_top_k(scores, k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(val, ref_val)
        assert idx.dtype == np.int32 and val.dtype == np.float32


def test_top_k_on_wide_rows_takes_the_candidate_path_and_agrees() -> None:
    rng = np.random.default_rng(1)
    for trial in range(60):
        m, k = int(rng.integers(200, 3000)), int(rng.integers(1, 4))
        scores = rng.integers(0, int(rng.integers(2, 400)), size=(5, m)).astype(np.float32)
        if trial % 2:
            scores[rng.random(scores.shape) < 0.5] = -np.inf
        idx, val = top_k(scores, k)
        ref_idx, ref_val = reference_top_k(scores, k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(val, ref_val)


def test_top_k_gathers_whole_blocks_on_a_catalog_sized_row() -> None:
    """Catalog-wide rows (the last block partial) go through the block gather and still
    equal the full stable sort, ties and -inf included."""
    from segrec.recommender import _candidates

    rng = np.random.default_rng(2)
    scores = rng.integers(0, 5000, size=(40, 24_007)).astype(np.float32)
    scores[:, 0] = -np.inf
    scores[3, 24_000:] = 1e6  # the best items sit in the partial last block
    scores[7, np.setdiff1d(np.arange(24_007), rng.choice(24_007, 30))] = -np.inf  # sparse row
    assert _candidates(scores, 20) is not None
    idx, val = top_k(scores, 20)
    ref_idx, ref_val = reference_top_k(scores, 20)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(val, ref_val)


def test_top_k_breaks_ties_towards_the_smaller_index() -> None:
    scores = np.array([[-np.inf, 1, 2, 2, 2, 0]], dtype=np.float32)
    idx, val = top_k(scores, 2)
    assert idx.tolist() == [[2, 3]] and val.tolist() == [[2, 2]]


def test_top_k_marks_unrankable_slots_with_item_zero_and_caps_k() -> None:
    scores = np.array([[-np.inf, 1, -np.inf]], dtype=np.float32)
    idx, _ = top_k(scores, 10)
    assert idx.tolist() == [[1, 0, 0]]
    assert top_k(np.zeros((0, 3), np.float32), 2)[0].shape == (0, 2)


def test_top_k_split_among_threads_equals_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of rows go to threads (enough rows for three): the same result as one
    thread, ties and -inf included, rows in order."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=(3 * ROWS_PER_THREAD + 7, 3_000)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert compute_threads() == 1
    one_idx, one_val = top_k(scores, 20)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert compute_threads() == 3
    blocks: list[int] = []
    rows_top_k = recommender._top_k_rows
    monkeypatch.setattr(
        recommender, "_top_k_rows", lambda s, k: blocks.append(len(s)) or rows_top_k(s, k)
    )
    idx, val = top_k(scores, 20)
    assert sorted(blocks) == [ROWS_PER_THREAD + 2, ROWS_PER_THREAD + 2, ROWS_PER_THREAD + 3]
    np.testing.assert_array_equal(idx, one_idx)
    np.testing.assert_array_equal(val, one_val)
    ref_idx, _ = reference_top_k(scores, 20)
    np.testing.assert_array_equal(idx, ref_idx)


def test_top_k_and_new_equals_two_passes_whatever_the_ties() -> None:
    """The plain top k merged from the new items' top k and the bought items is the plain
    top_k exactly: ties, -inf (bought items included), rows with more bought items than
    k, rows with none, k wider than the rankable items."""
    rng = np.random.default_rng(4)
    for trial in range(200):
        n, m = int(rng.integers(1, 30)), int(rng.integers(2, 40))
        scores = rng.integers(0, 6, size=(n, m)).astype(np.float32)
        scores[:, 0] = -np.inf
        scores[rng.random(scores.shape) < (0.5 if trial % 4 == 0 else 0.05)] = -np.inf
        bought = rng.random((n, m)) < rng.choice([0.0, 0.1, 0.6])
        bought[:, 0] = False
        purchased = sp.csr_matrix(bought.astype(np.float32))
        k = int(rng.integers(1, m + 3))
        expected_all = top_k(scores.copy(), k)
        expected_new = top_k(exclude(scores.copy(), purchased), k)
        (idx, val), (new_idx, new_val) = top_k_and_new(scores.copy(), purchased, k)
        for got, want in zip(
            (idx, val, new_idx, new_val), (*expected_all, *expected_new), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        assert idx.dtype == np.int32 and val.dtype == np.float32


def test_exclude_sets_purchased_items_to_minus_infinity() -> None:
    hist = history([("u1", "a", 3), ("u1", "c", 2), ("u2", "b", 1)], ITEMS)
    scores = np.ones((3, hist.n_columns), np.float32)
    exclude(scores, hist.purchased(pl.Series(["u1", "u2", "new"])))
    assert np.isneginf(scores[0, [1, 3]]).all() and np.isfinite(scores[0, [2, 4, 5]]).all()
    assert np.isneginf(scores[1, 2]) and np.isfinite(scores[2]).all()


def test_history_matrix_counts_lines_and_decays_by_half_life() -> None:
    hist = history([("u1", "a", 10), ("u1", "a", 0), ("u2", "b", 20), ("u2", "zz", 1)], ITEMS)
    assert hist.n_columns == 6
    counts = hist.matrix().toarray()
    row1, row2 = hist.customer_rows(pl.Series(["u1", "u2"]))
    assert counts[row1, 1] == 2 and counts[row2, 2] == 1
    assert counts.sum() == 3  # the item outside the catalog carries no signal
    decayed = hist.matrix(half_life_days=10).toarray()
    assert decayed[row1, 1] == pytest.approx(1.5) and decayed[row2, 2] == pytest.approx(0.25)
    assert hist.customer_rows(pl.Series(["nobody"])).tolist() == [0]


def test_history_refuses_interactions_at_or_after_as_of() -> None:
    from segrec.data import RetailData

    frame = interactions([("u1", "a", 1), ("u1", "b", 0)])
    data = RetailData(
        frame, pl.DataFrame({"customer_id": ["u1"]}), pl.DataFrame({"item_id": ["a", "b"]}), [], []
    )
    with pytest.raises(ValueError, match="at or after as_of"):
        History.from_data(data, frame, AS_OF)
    ok = History.from_data(data, frame.head(1), AS_OF)
    assert len(ok.item_map) == 2


def test_recommend_chunked_equals_unchunked_and_excludes_purchases() -> None:
    hist = history([("u1", "a", 3), ("u2", "a", 2), ("u2", "b", 1), ("u3", "c", 1)], ITEMS)
    model = Popularity().fit(hist)
    ids = pl.Series(["u1", "u2", "u3", "cold"])
    whole = recommend(model, hist, ids, k=3, exclude_purchased=True)
    for size in (1, 3):
        part = recommend(model, hist, ids, k=3, exclude_purchased=True, chunk_size=size)
        np.testing.assert_array_equal(whole.items, part.items)
    decoded = hist.item_map.decode(whole.items)
    assert decoded[0].tolist() == ["b", "c", "d"]  # a excluded; ties by id
    assert decoded[3].tolist() == ["a", "b", "c"]
    frame = whole.to_frame(hist.item_map)
    assert frame.columns == ["customer_id", "rank", "item_id", "score"]
    assert frame.filter(pl.col("customer_id") == "u2")["item_id"].to_list() == ["c", "d", "e"]


def test_topk_frame_drops_empty_slots() -> None:
    hist = history([("u1", "a", 1)], ["a"])
    top = TopK(
        pl.Series(["u1"]), np.array([[1, 0]], np.int32), np.array([[1, -np.inf]], np.float32)
    )
    assert top.to_frame(hist.item_map)["item_id"].to_list() == ["a"]


def test_recommend_refuses_a_score_matrix_that_breaks_the_contract() -> None:
    hist = history([("u1", "a", 1)], ITEMS)

    class Broken:
        name, cold_start = "broken", "native"

        def fit(self, history: History) -> Broken:
            return self

        def score(self, customer_ids: pl.Series) -> np.ndarray:
            return np.zeros((customer_ids.len(), 3), np.float32)

    with pytest.raises(ValueError, match=r"broken.score: shape"):
        recommend(Broken(), hist, pl.Series(["u1"]), k=2)
    width = hist.n_columns
    for bad in (np.nan, np.inf):
        block = np.zeros((1, width), np.float32)
        block[0, 2] = bad
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            check_scores(block, 1, width, "m")
    with pytest.raises(ValueError, match="float32"):
        check_scores(np.zeros((1, width)), 1, width, "m")


def test_chunk_size_bounds_the_memory_of_a_score_chunk() -> None:
    assert chunk_size_for(92_001, memory_mb=256) == 729
    assert chunk_size_for(10**9, memory_mb=1) == 1
