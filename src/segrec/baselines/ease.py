"""EASE (Steck 2019): a closed-form item-item linear model, strong on purchase data.

B = I - P · diagMat(1 / diag(P)), with P = (XᵀX + λI)⁻¹ over binary customer × item
purchases X, and the diagonal of B forced to zero. Fitting inverts a dense item × item
matrix: memory n² · 4 bytes and time ~n³. So on a large catalog only the items bought by
at least ``min_support`` customers are modelled, at most ``max_items`` of them (the most
bought). The default cap of 10,000 items (a 400 MB Gram matrix, about a minute on 2 cores
in float32) keeps the whole baseline run within minutes on a laptop; on a machine with
many cores raise it (20-30k items fit in 24 GiB, but cost 8-27x the time).
Other items rank after the modelled ones, by popularity.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.linalg as la
import scipy.sparse as sp

from segrec.baselines.base import FallbackRecommender, item_popularity, unit_scale
from segrec.recommender import History, Recommender


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """The EASE item-item matrix B from the Gram matrix XᵀX (float32 (n, n), overwritten).

    A Cholesky inverse (LAPACK potrf + potri) rather than a general one: the Gram matrix
    plus λI is symmetric positive definite, and this is about 1.5x faster in half the memory.
    """
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    factor, info = la.lapack.spotrf(gram, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky failed (info={info}); raise l2")
    inv, info = la.lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info}); raise l2")
    symmetrize_upper(inv)  # potri fills the upper triangle only
    inv /= -np.diag(inv)[None, :].copy()
    inv[np.diag_indices_from(inv)] = 0.0
    return inv


def symmetrize_upper(a: np.ndarray, block: int = 2048) -> None:
    """Copy the upper triangle of square ``a`` onto its lower one, in place, by blocks of
    rows (no n x n temporaries: at 20k items each would be 1.6 GB)."""
    for start in range(block, a.shape[0], block):
        stop = min(start + block, a.shape[0])
        a[start:stop, :start] = a[:start, start:stop].T
    for start in range(0, a.shape[0], block):
        stop = min(start + block, a.shape[0])
        tile = a[start:stop, start:stop]
        tile[:] = np.triu(tile) + np.triu(tile, 1).T


def gram_matrix(x: sp.csr_matrix, block: int = 2048) -> np.ndarray:
    """XᵀX as dense float32, one block of item columns at a time of a sparse product.

    Why sparse: its cost follows the co-purchased pairs (each customer's item count
    squared, summed), where dense BLAS over blocks of customers pays customers × items²
    whatever the sparsity (Ta-Feng, 6,000 items: 0.3 s against 20 s; Complete Journey,
    20,000 items: 14 s against 31 s). Why blocks: the sparse product of a dense
    co-occurrence holds up to 3x the dense matrix; a block of columns bounds it to
    (items, block).
    """
    n = x.shape[1]
    gram = np.empty((n, n), dtype=np.float32)
    xt = x.T.tocsr().astype(np.float32, copy=False)
    columns = x.tocsc().astype(np.float32, copy=False)
    for start in range(0, n, block):
        stop = min(start + block, n)
        gram[:, start:stop] = (xt @ columns[:, start:stop]).toarray()
    return gram


def modelled_columns(binary: sp.csr_matrix, min_support: int, max_items: int) -> np.ndarray:
    """The columns EASE models, ascending: the ``max_items`` bought by the most rows of
    the binary (rows, n_columns) ``binary``, each by at least ``min_support`` (column 0,
    the unknown item, never)."""
    support = np.asarray(binary.sum(axis=0)).ravel()
    support[0] = 0
    eligible = np.flatnonzero(support >= max(min_support, 1))
    order = np.argsort(-support[eligible], kind="stable")[:max_items]
    return np.sort(eligible[order])


class EASE(FallbackRecommender):
    """EASE on the catalog's best-supported items; others ranked after, by popularity."""

    def __init__(
        self,
        l2: float = 500.0,
        min_support: int = 5,
        max_items: int = 10_000,
        fallback: Recommender | None = None,
    ) -> None:
        super().__init__(fallback)
        self.l2, self.min_support, self.max_items = l2, min_support, max_items
        self.name = "ease"

    def _fit(self, history: History) -> None:
        binary = history.binary()
        self._columns = modelled_columns(binary, self.min_support, self.max_items)
        x = binary[:, self._columns].tocsr()
        self._x = x
        self._weights = ease_weights(gram_matrix(x), self.l2)
        self._fill = unit_scale(item_popularity(history))
        # A customer is scorable only through modelled items they bought.
        self._scorable = np.diff(x.indptr) > 0

    def _rows(self, customer_ids: pl.Series) -> np.ndarray:
        rows = self.history.customer_rows(customer_ids)
        return np.where(self._scorable[rows] & (rows > 0), rows, -1)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        modelled = np.asarray(self._x[rows] @ self._weights, dtype=np.float32)
        # Others rank after every modelled item, by popularity.
        floor = modelled.min(axis=1, keepdims=True) - np.float32(1.0)
        out = floor + self._fill[None, :]
        # By blocks of rows: numpy's 2-D fancy assignment is ~10x slower in one go.
        for start in range(0, len(rows), 64):
            out[start : start + 64, self._columns] = modelled[start : start + 64]
        return out
