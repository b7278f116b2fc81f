"""Item-to-item "bought together" similarity, sparse, for candidates and a feature.

Items a customer never bought are where item-to-item signals win: a ranker whose
candidates came only from the customer's own history and the best sellers could not
recommend the jam to the buyer of bread. The similarity is the cosine of two items'
baskets (``level: basket``; complements bought on the same trip) or of their buyers
(``level: customer``; the taste signal EASE and ALS also capture), shrunk for rare pairs:

    S(i, j) = |B_i ∩ B_j| / (sqrt(|B_i| · |B_j|) + shrink),

keeping each item's ``k`` best neighbours among the pairs seen together at least
``min_co`` times (a single co-occurrence is noise, and most of the work). The default is
the customer level: on both real datasets it orders items new to the customer better than
baskets do. Basket co-occurrence is the cheaper one on a large population (a basket holds
tens of items, a loyal customer thousands): ``level: basket`` where the customer-level
product grows too large.

``method: ease`` replaces the cosine by EASE's item-item weights (Steck 2019) over the
same groups, each item keeping its ``k`` largest: the signal of the strongest baseline on
items new to the customer, as a neighbour affinity. The ranker's own ``ease`` retrieval
source (``ease_source``, segrec.ranking.sources) is the same model over the customers'
purchases, kept apart: its own top-N candidates and score features.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import numpy as np
import polars as pl
import scipy.sparse as sp

from segrec.ranking.config import EaseSourceConfig, NeighboursConfig
from segrec.recommender import History

LEVELS = {"basket": "basket_id", "customer": "customer_id"}
METHODS = ("cosine", "ease")


def incidence(history: History, cfg: NeighboursConfig) -> sp.csr_matrix:
    """Binary (groups, n_columns) matrix: which catalog items each basket (customer) holds."""
    if cfg.level not in LEVELS:
        raise ValueError(f"ranking.neighbours.level: {cfg.level!r} is not one of {list(LEVELS)}")
    rows = history.interactions
    if cfg.window_days is not None:
        rows = rows.filter(pl.col("timestamp") >= history.as_of - timedelta(days=cfg.window_days))
    pairs = pl.DataFrame(
        {
            "g": rows[LEVELS[cfg.level]].cast(pl.Utf8),
            "c": history.item_map.encode(rows["item_id"]),
        }
    ).filter(pl.col("c") > 0)
    # Group codes by hashing (ranking millions of basket ids as text is slow); the
    # similarity does not depend on how groups are numbered.
    pairs = pairs.unique(maintain_order=True).with_columns(
        pl.col("g").cast(pl.Categorical).to_physical().cast(pl.Int64)
    )
    n_groups = int(cast("int | None", pairs["g"].max()) or 0) + 1 if pairs.height else 0
    ones = np.ones(pairs.height, np.float32)
    return sp.csr_matrix(
        (ones, (pairs["g"].to_numpy(), pairs["c"].to_numpy())),
        shape=(n_groups, history.n_columns),
    )


def item_similarity(history: History, cfg: NeighboursConfig) -> sp.csr_matrix:
    """float32 CSR (n_columns, n_columns): row i holds i's ``k`` best neighbours (not i)."""
    if cfg.method not in METHODS:
        raise ValueError(f"ranking.neighbours.method: {cfg.method!r} is not one of {list(METHODS)}")
    if cfg.method == "ease":
        return ease_similarity(history, cfg)
    x = incidence(history, cfg)
    support = np.asarray(x.sum(axis=0)).ravel()
    weak = support < max(cfg.min_support, 1)
    x = (x @ sp.diags((~weak).astype(np.float32))).tocsr()
    x.eliminate_zeros()
    gram = (x.T @ x).tocsr()
    gram.data[gram.data < cfg.min_co] = 0.0
    gram.eliminate_zeros()
    gram.sort_indices()  # row-major, columns ascending: the order top_per_row keeps on ties
    gram = gram.tocoo()
    keep = gram.row != gram.col
    row, col, co = gram.row[keep], gram.col[keep], gram.data[keep]
    norm = np.sqrt(support[row] * support[col]) + cfg.shrink
    sim = (co / norm).astype(np.float32)
    return top_per_row(row, col, sim, cfg.k, history.n_columns)


def ease_similarity(history: History, cfg: NeighboursConfig) -> sp.csr_matrix:
    """EASE's weights B (Steck 2019) over the groups' incidence, as neighbours: row i
    keeps the ``k`` largest positive B[i, j], scaled by the largest of all into (0, 1].

    A customer's neighbour score is then a decay-weighted EASE score, truncated to each
    item's strongest links. Only the ``ease_max_items`` best-supported items (at least
    ``min_support`` groups) are modelled: the others have no neighbours.
    """
    out = ease_top(incidence(history, cfg), cfg.min_support, cfg.ease_max_items, cfg.ease_l2, cfg.k)
    if out.nnz:
        out.data /= out.data.max()
    return out


def ease_source(history: History, cfg: EaseSourceConfig) -> sp.csr_matrix:
    """The ranker's ``ease`` source: EASE's weights over the customers' binary purchases
    (as the EASE baseline fits them), row i keeping its ``keep`` largest positive B[i, j]
    unscaled, so that a customer's score is a truncated EASE score."""
    return ease_top(history.binary(), cfg.min_support, cfg.max_items, cfg.l2, cfg.keep)


def ease_top(
    x: sp.csr_matrix, min_support: int, max_items: int, l2: float, k: int
) -> sp.csr_matrix:
    """float32 CSR (n_columns, n_columns) of EASE over the binary (groups, n_columns)
    ``x``: row i holds the ``k`` largest positive B[i, j] over the modelled columns.

    Truncated because the dense B (n^2 floats: 400 MB at 10,000 items) is too large to
    carry in the ranker's state, and a customer's score is dominated by each of their
    items' strongest links."""
    from segrec.baselines.ease import ease_weights, gram_matrix, modelled_columns

    columns = modelled_columns(x, min_support, max_items)
    n = x.shape[1]
    k = min(k, len(columns) - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    weights = ease_weights(gram_matrix(x[:, columns].tocsr()), l2)
    best = np.argpartition(-weights, k - 1, axis=1)[:, :k]
    value = np.take_along_axis(weights, best, axis=1)
    keep = value > 0
    row = np.repeat(columns, k).reshape(-1, k)[keep]
    out = sp.csr_matrix((value[keep], (row, columns[best[keep]])), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


def top_per_row(
    row: np.ndarray, col: np.ndarray, value: np.ndarray, k: int, n: int
) -> sp.csr_matrix:
    """The ``k`` largest values in [0, 1] of each row, CSR (n, n); pairs must come in
    row-major order with columns ascending, so that ties keep the smaller column.

    One stable sort of ``row - value / 2`` orders rows ascending and, within a row, values
    descending (a lexsort of tens of millions of pairs takes many times longer).
    """
    order = np.argsort(row - np.clip(value, 0.0, 1.0).astype(np.float64) / 2, kind="stable")
    row, col, value = row[order], col[order], value[order]
    starts = np.searchsorted(row, np.arange(n))
    rank = np.arange(len(row)) - starts[row]
    keep = rank < k
    out = sp.csr_matrix((value[keep], (row[keep], col[keep])), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out
