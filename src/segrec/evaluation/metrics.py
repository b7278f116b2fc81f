"""Ranking metrics on full-catalog top-K lists, vectorised over customers.

Definitions (rel_r = 1 if the item at rank r, 1-based, is a test item of the customer;
T = the customer's distinct test items in the catalog):

- Recall@K = Σ_{r≤K} rel_r / min(K, |T|)  (so a perfect list scores 1 even when |T| < K);
- NDCG@K   = Σ_{r≤K} rel_r / log2(r+1)  /  Σ_{r≤min(K,|T|)} 1 / log2(r+1);
- HitRate@K = 1 if any rel_r, else 0;
- Coverage@K (of a group of customers) = distinct items in their top-K / catalog size.

Customers with no test items are not scored (they have no defined recall). Ties in scores
are broken by item index in ``segrec.recommender.top_k``, so values are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from segrec.data import NEW, REPEAT, IdMap

METRICS = ("recall", "ndcg", "hit_rate")
ITEM_SETS = ("all", NEW, REPEAT)


@dataclass(frozen=True)
class Truth:
    """What each customer bought in the evaluation period, as binary CSR rows over the
    catalog columns (``(n, len(item_map)+1)``): ``all`` items, and the ``new`` / ``repeat``
    ones (never / already bought before the period). Row i is ``customer_ids[i]``."""

    customer_ids: pl.Series
    all: sp.csr_matrix
    new: sp.csr_matrix
    repeat: sp.csr_matrix

    def items(self, item_set: str) -> sp.csr_matrix:
        return {"all": self.all, NEW: self.new, REPEAT: self.repeat}[item_set]


def build_truth(period: pl.DataFrame, item_map: IdMap) -> Truth:
    """Truth from labelled period rows (customer_id, item_id, item_status).

    Items outside the catalog cannot be recommended and are dropped; so are customers left
    with no item. Customers are sorted by id so that results are reproducible.
    """
    pairs = (
        period.select("customer_id", "item_id", "item_status")
        .with_columns(pl.Series("col", item_map.encode(period["item_id"])))
        .filter(pl.col("col") > 0)
        .unique(["customer_id", "col"])
        .sort("customer_id", "col")
    )
    customers = pairs["customer_id"].unique().sort()
    rows = IdMap(customers).encode(pairs["customer_id"]) - 1
    cols = pairs["col"].to_numpy()
    new = (pairs["item_status"] == NEW).to_numpy()
    shape = (customers.len(), len(item_map) + 1)

    def csr(mask: np.ndarray) -> sp.csr_matrix:
        ones = np.ones(int(mask.sum()), dtype=np.int8)
        out = sp.csr_matrix((ones, (rows[mask], cols[mask])), shape=shape)
        out.sort_indices()
        return out

    everything = np.ones(len(rows), dtype=bool)
    return Truth(customers, csr(everything), csr(new), csr(~new))


def hits(truth: sp.csr_matrix, top: np.ndarray) -> np.ndarray:
    """``hits[i, r]``: is ``top[i, r]`` one of row i's truth items? bool (n, K).

    Looks every (row, item) pair up in the sorted flat keys of the CSR matrix at once.
    """
    n, k = top.shape
    width = truth.shape[1]
    truth_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(truth.indptr))
    keys = truth_rows * width + truth.indices.astype(np.int64)  # sorted: rows, then columns
    query = np.arange(n, dtype=np.int64)[:, None] * width + top.astype(np.int64)
    if keys.size == 0:
        return np.zeros((n, k), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[pos] == query) & (top > 0)


def discounts(k: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..k, float64 (k,)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def rank_metrics(hit: np.ndarray, n_truth: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-customer Recall/NDCG/HitRate at each K from a hit matrix (n, K_max).

    Rows with ``n_truth == 0`` get NaN: the caller drops them.
    """
    k_max = hit.shape[1]
    disc = discounts(max(k_max, max(ks)))
    ideal = np.concatenate([[0.0], np.cumsum(disc)])  # ideal[j]: DCG of j hits on top
    out: dict[str, np.ndarray] = {}
    valid = n_truth > 0
    for k in ks:
        h = hit[:, :k]
        found = h.sum(axis=1)
        denom = np.minimum(k, n_truth)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"recall@{k}"] = np.where(valid, found / denom, np.nan)
            dcg = h @ disc[: h.shape[1]]
            out[f"ndcg@{k}"] = np.where(valid, dcg / ideal[denom], np.nan)
        out[f"hit_rate@{k}"] = np.where(valid, (found > 0).astype(np.float64), np.nan)
    return out


def metric_names(ks: Sequence[int]) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in METRICS]


def coverage(column: str, k: int, catalog_size: int) -> pl.Expr:
    """Aggregation (for ``group_by().agg``): distinct items among the first ``k`` of list
    column ``column``, over the group's customers, divided by the catalog size."""
    items = pl.col(column).list.head(k).explode()
    return (items.filter(items > 0).n_unique() / catalog_size).alias(f"coverage@{k}")
