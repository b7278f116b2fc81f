"""A gradient-boosted tree ensemble evaluated with numpy alone, saved as plain arrays.

Why not pickle the scikit-learn model: serving would then need scikit-learn (in the exact
version that pickled it), and loading a pickle can run code. Why not ONNX: it would add a
converter (``skl2onnx``) to training whose coverage of ``HistGradientBoosting`` we would
have to trust, for a model that is only arrays. A fitted ensemble is, per node, a feature,
a threshold, where missing values go and, per leaf, a value: stored as one ``.npz`` that
numpy reads without executing anything, and evaluated here exactly as scikit-learn does
(tests compare the two).

Layout: every tree is padded to a complete binary tree of depth ``depth`` (a leaf above
that depth becomes pass-through nodes whose descendants all carry its value), so a node's
children are ``2i+1`` and ``2i+2`` and evaluation is, per level, two gathers and a compare
over a ``(samples, trees)`` matrix: no child tables to look up. Ranking one customer's ~150
candidates through 150 trees of depth 6 costs a few tenths of a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
MAX_DEPTH = 12  # the padded layout holds 2**depth leaves per tree
BATCH = 256  # rows evaluated together


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Complete trees of one depth D, in level order (node i's children: 2i+1, 2i+2).

    ``feature`` int64 (trees, 2**D - 1) and ``threshold`` float64 (same): go right when
    ``x[feature] > threshold`` (NaN: right unless ``missing_left``); ``leaf`` float64
    (trees, 2**D); ``baseline``: the raw score before any tree; ``features``: the names of
    the input columns, in order. ``predict_raw`` gives log-odds for a binary classifier.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    leaf: np.ndarray
    baseline: float
    features: tuple[str, ...]

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaf.shape[1]))

    @property
    def n_trees(self) -> int:
        return self.leaf.shape[0]

    @classmethod
    def from_sklearn(cls, model: Any, features: list[str]) -> TreeEnsemble:
        """Read a fitted binary ``HistGradientBoostingClassifier`` (or a regressor).

        Categorical splits are not supported (the ranker's features are all numeric).
        """
        trees = [per_class[0].nodes for per_class in model._predictors]
        if any(t["is_categorical"].any() for t in trees):
            raise ValueError("TreeEnsemble: categorical splits are not supported")
        depth = max(1, max(int(t["depth"].max()) for t in trees))
        if depth > MAX_DEPTH:
            raise ValueError(f"TreeEnsemble: depth {depth} > {MAX_DEPTH}; limit max_depth")
        inner, n_leaves = 2**depth - 1, 2**depth
        feature = np.zeros((len(trees), inner), np.int64)
        threshold = np.full((len(trees), inner), np.inf)
        missing_left = np.ones((len(trees), inner), bool)
        leaf = np.zeros((len(trees), n_leaves))
        for t, nodes in enumerate(trees):
            _pad(nodes, depth, feature[t], threshold[t], missing_left[t], leaf[t])
        return cls(
            feature=feature,
            threshold=threshold,
            missing_left=missing_left,
            leaf=leaf,
            baseline=float(np.ravel(model._baseline_prediction)[0]),
            features=tuple(features),
        )

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds for a classifier), float64 (n,), of float32 ``x`` (n, f).

        Rows go through in batches of ``BATCH`` so that the (rows, trees) work arrays stay
        in cache; the result does not depend on the batching.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(
                f"TreeEnsemble: expected (n, {len(self.features)}) features, got {x.shape}"
            )
        if x.shape[0] <= BATCH:
            return self._predict(x)
        return np.concatenate(
            [self._predict(x[i : i + BATCH]) for i in range(0, x.shape[0], BATCH)]
        )

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """Every tree at once: ``g`` (rows, trees) is each row's current node per tree.

        Nodes and leaves share one index space (``_flat``), so a level is a few gathers,
        a compare and an add, with no per-level index arithmetic, and the roots' level
        gathers only (trees,) node arrays. For one customer's ~150 candidates the cost
        is these numpy calls over (rows, trees), a few per level.
        """
        n, n_features = x.shape
        feature, threshold, missing_right, left, leaf = self._flat
        has_nan = bool(np.isnan(x).any())
        flat = x.ravel()
        row_start = (np.arange(n, dtype=np.intp) * n_features)[:, None]
        g = self._roots  # (trees,) at the roots, where it broadcasts over rows
        for _ in range(self.depth):
            if g.ndim == 1:  # every row at the same node of a tree: gather x's columns
                v = x.take(feature.take(g), axis=1)
            else:
                v = flat.take(feature.take(g) + row_start)
            right = v > threshold.take(g)
            if has_nan:
                right |= np.isnan(v) & missing_right.take(g)
            g = left.take(g) + right
        return self.baseline + leaf.take(g).sum(axis=1)

    @cached_property
    def _roots(self) -> np.ndarray:
        """Index of each tree's root in ``_flat``'s node space, intp (trees,)."""
        return np.arange(self.n_trees, dtype=np.intp) * self.feature.shape[1]

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features, float32 thresholds, missing-right flags and left children of every
        inner node, and the values of one index space holding the inner nodes (tree
        ``t``'s node ``j`` at ``t * inner + j``) then the leaves (at ``trees * inner +
        t * leaves + j``; inner nodes' values are 0). A node's right child is its left
        child + 1, in both spaces. Indices are intp: ``take`` would convert others.

        Each float64 threshold is rounded *down* to float32, which keeps
        ``x <= threshold`` exact for float32 ``x`` (the largest float32 not above t).
        """
        n_trees, inner = self.feature.shape
        t64 = self.threshold.ravel()
        t32 = t64.astype(np.float32)
        up = t32.astype(np.float64) > t64
        t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
        tree = np.arange(n_trees, dtype=np.intp)[:, None]
        child = 2 * np.arange(inner, dtype=np.intp)[None, :] + 1  # within the tree
        leaves = n_trees * inner + tree * self.leaf.shape[1] + (child - inner)
        left = np.where(child < inner, tree * inner + child, leaves).ravel()
        return (
            self.feature.ravel().astype(np.intp),
            t32,
            ~self.missing_left.ravel(),
            left,
            np.concatenate([np.zeros(n_trees * inner), self.leaf.ravel()]),
        )

    def save(self, path: Path) -> None:
        """One ``.npz`` of plain arrays (no pickle), readable by ``load`` alone."""
        np.savez(
            path,
            format=np.array(FORMAT),
            feature=self.feature,
            threshold=self.threshold,
            missing_left=self.missing_left,
            leaf=self.leaf,
            baseline=np.array(self.baseline),
            features=np.array(self.features, dtype=str),
        )

    @classmethod
    def load(cls, path: Path) -> TreeEnsemble:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != FORMAT:
                raise ValueError(f"{path}: tree format {int(z['format'])}, expected {FORMAT}")
            return cls(
                feature=z["feature"],
                threshold=z["threshold"],
                missing_left=z["missing_left"],
                leaf=z["leaf"],
                baseline=float(z["baseline"]),
                features=tuple(str(f) for f in z["features"]),
            )

    def importances(self) -> dict[str, float]:
        """Share of the (real, not pass-through) splits made on each feature."""
        real = np.isfinite(self.threshold)
        counts = np.bincount(self.feature[real], minlength=len(self.features))
        total = max(int(counts.sum()), 1)
        return {f: float(c) / total for f, c in zip(self.features, counts, strict=True)}


def _pad(
    nodes: np.ndarray,
    depth: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    missing_left: np.ndarray,
    leaf: np.ndarray,
) -> None:
    """Write one scikit-learn tree into complete level-order arrays (in place).

    A leaf met above ``depth`` keeps pass-through nodes (threshold +inf: always left) and
    fills every leaf slot beneath it with its value, so all paths have the same length.
    """
    stack = [(0, 0, 0)]  # (scikit-learn node, level, position within the level)
    while stack:
        node, level, pos = stack.pop()
        record = nodes[node]
        if record["is_leaf"]:
            span = 2 ** (depth - level)
            leaf[pos * span : (pos + 1) * span] = record["value"]
            continue
        i = 2**level - 1 + pos
        feature[i] = record["feature_idx"]
        threshold[i] = record["num_threshold"]
        missing_left[i] = bool(record["missing_go_to_left"])
        stack.append((int(record["left"]), level + 1, 2 * pos))
        stack.append((int(record["right"]), level + 1, 2 * pos + 1))
