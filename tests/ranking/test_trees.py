"""The tree ensemble gives scikit-learn's scores (to float32) and saves as plain arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from segrec.ranking.trees import TreeEnsemble


@pytest.fixture(scope="module")
def fitted() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take a learned side
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * x[:, 2] > 0.3).astype(int)
    model = HistGradientBoostingClassifier(
        max_iter=30, max_depth=5, early_stopping=False, random_state=0
    )
    with threadpool_limits(1):  # OpenMP threads crawl on a busy shared machine
        model.fit(x, y)
    return model, x


def test_scores_equal_scikit_learns(fitted) -> None:
    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    np.testing.assert_allclose(
        trees.predict_raw(x), model.decision_function(x), rtol=1e-6, atol=1e-5
    )
    assert trees.predict_raw(x[:0]).shape == (0,)


def walk(trees: TreeEnsemble, x: np.ndarray) -> np.ndarray:
    """The plain definition, row by row: each tree's leaf by comparisons in float32
    (thresholds rounded down), the leaves added in float32 in tree order, the baseline
    last: what the compiled evaluator (and ONNX Runtime before it) computes, bit for bit."""
    t32, leaf = trees.float32_thresholds(), trees.leaf.astype(np.float32)
    out = np.empty(len(x), np.float32)
    for r, row in enumerate(x):
        total = np.float32(0.0)
        for t in range(trees.n_trees):
            i = 0
            while i < trees.feature.shape[1]:
                v = row[trees.feature[t, i]]
                left = v <= t32[t, i] if not np.isnan(v) else trees.missing_left[t, i]
                i = 2 * i + (1 if left else 2)
            total = np.float32(total + leaf[t, i - trees.feature.shape[1]])
        out[r] = np.float32(total + np.float32(trees.baseline))
    return out


def test_scores_are_the_float32_walk_bit_for_bit(fitted) -> None:
    """Rankings tie-break on exact scores: the compiled loop must not change a bit, with
    or without missing values in the batch (it takes a faster path without)."""
    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    rows = x[:300]
    clean = rows[~np.isnan(rows).any(axis=1)]
    np.testing.assert_array_equal(trees.predict_raw(rows), walk(trees, rows))
    np.testing.assert_array_equal(trees.predict_raw(clean), walk(trees, clean))


def test_thresholds_hold_at_their_exact_value(fitted) -> None:
    """float32 inputs on either side of every threshold go where scikit-learn sends them."""
    model, _ = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    t = trees.threshold[np.isfinite(trees.threshold)].astype(np.float32)
    edges = np.concatenate([t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, -np.inf)])
    x = np.repeat(edges[:, None], 5, axis=1).astype(np.float32)
    np.testing.assert_allclose(
        trees.predict_raw(x), model.decision_function(x), rtol=1e-6, atol=1e-5
    )


def test_save_and_load_round_trip_without_pickle(fitted, tmp_path: Path) -> None:
    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    trees.save(tmp_path / "trees.npz")
    loaded = TreeEnsemble.load(tmp_path / "trees.npz")
    assert "_compiled" in vars(loaded)  # warmed at load, not on the first request
    np.testing.assert_array_equal(loaded.predict_raw(x), trees.predict_raw(x))
    assert loaded.features == trees.features and loaded.depth == trees.depth


def test_wrong_width_is_refused(fitted) -> None:
    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    with pytest.raises(ValueError, match=r"expected \(n, 5\) features, got \(3000, 4\)"):
        trees.predict_raw(x[:, :4])


def test_one_row_or_a_few_score_as_in_a_large_batch(fitted) -> None:
    """The per-customer path scores a handful of rows: same numbers as any batch."""
    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    whole = trees.predict_raw(x)
    clean = np.flatnonzero(~np.isnan(x).any(axis=1))[:7]  # rows without missing values
    for rows in ([0], [5, 6, 7], clean.tolist(), list(range(250, 270))):
        np.testing.assert_array_equal(trees.predict_raw(x[rows]), whole[rows])


def test_a_used_ensemble_pickles_and_scores_the_same(fitted) -> None:
    """Batch scoring ships rankers to worker processes: a used ensemble (its evaluator's
    arrays built) pickles and scores the same there."""
    import pickle

    model, x = fitted
    trees = TreeEnsemble.from_sklearn(model, list("abcde"))
    before = trees.predict_raw(x)
    again = pickle.loads(pickle.dumps(trees))
    np.testing.assert_array_equal(again.predict_raw(x), before)
