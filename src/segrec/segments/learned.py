"""Learned families: FAISS k-means over customer vectors, clusters named by category lift.

Any ``customer_id → vector`` matrix will do (``CustomerVectors``); the built-in source is
each customer's category-spend profile, taken as the square root of spend shares (the
Hellinger embedding), so Euclidean k-means compares shopping mixes rather than basket sizes
and a few big categories do not drown the rest. A cluster is named by the categories whose
share of its spend most exceeds their share of everyone's (lift), which is what tells a
marketer what the cluster is, where raw top categories would be the same staples for all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segrec.segments.config import LearnedFamilyConfig
from segrec.segments.errors import UNKNOWN_LABEL, SegmentConfigError, where
from segrec.segments.history import window

SOURCES = ("category_spend", "vectors")
SPEND = ("revenue", "quantity", "lines")
# FAISS work (rows x centroids x dimensions) below which it runs on one thread: OpenMP's
# start-up and spin-waits then cost more than the work, many times more on a busy machine.
_PARALLEL_WORK = 50_000_000


@contextmanager
def _faiss(rows: int, k: int, d: int) -> Iterator[Any]:
    """FAISS, imported lazily (serving may not need it) without its loader's INFO lines,
    on one thread for small work."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    threads = faiss.omp_get_max_threads()
    if rows * k * d < _PARALLEL_WORK:
        faiss.omp_set_num_threads(1)
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(threads)


@dataclass(frozen=True)
class CustomerVectors:
    """One row per customer: ``ids`` (unique str, shape (n,)) and ``matrix`` (n, d) float32."""

    ids: pl.Series
    matrix: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape[0] != self.ids.len():
            raise ValueError(
                f"CustomerVectors: matrix {self.matrix.shape} does not match {self.ids.len()} ids"
            )
        if not np.isfinite(self.matrix).all():
            raise ValueError("CustomerVectors: the matrix has non-finite values")

    def check_unique(self) -> CustomerVectors:
        """Raise unless each customer has one vector (checked on vectors from outside)."""
        if self.ids.n_unique() != self.ids.len():
            raise ValueError("CustomerVectors: customer ids must be unique")
        return self

    @classmethod
    def read_parquet(cls, path: str | Path) -> CustomerVectors:
        """Read ``customer_id`` + ``vector`` (list or array of floats) from a Parquet file."""
        frame = pl.read_parquet(path, columns=["customer_id", "vector"])
        matrix = np.asarray(frame["vector"].to_list(), dtype=np.float32)
        return cls(frame["customer_id"].cast(pl.Utf8), matrix.reshape(frame.height, -1))


def check_learned(
    name: str, cfg: LearnedFamilyConfig, items: pl.DataFrame, has_revenue: bool
) -> list[str]:
    """Problems with this family's config (empty: fine); k against the data is checked at fit."""

    def path(field: str) -> str:
        return where("learned", name, field)

    problems = []
    if cfg.k < 2:
        problems.append(f"{path('k')}: need at least 2 clusters, got {cfg.k}")
    if cfg.source not in SOURCES:
        problems.append(f"{path('source')}: {cfg.source!r} is not one of {SOURCES}")
    if cfg.source == "vectors" and not cfg.vectors_path:
        problems.append(f"{path('vectors_path')}: source 'vectors' needs a Parquet file")
    if cfg.spend not in SPEND:
        problems.append(f"{path('spend')}: {cfg.spend!r} is not one of {SPEND}")
    elif cfg.spend == "revenue" and not has_revenue:
        problems.append(f"{path('spend')}: the data has no revenue; use quantity or lines")
    if cfg.attribute not in items.columns or cfg.attribute == "item_id":
        attrs = [c for c in items.columns if c != "item_id"]
        problems.append(
            f"{path('attribute')}: no item attribute {cfg.attribute!r}; items have {attrs}"
        )
    for field in ("max_categories", "niter", "nredo", "label_categories"):
        if getattr(cfg, field) < 1:
            problems.append(f"{path(field)}: must be >= 1")
    if cfg.window_days is not None and cfg.window_days < 1:
        problems.append(f"{path('window_days')}: must be >= 1 or null")
    return problems


@dataclass(frozen=True)
class SpendMatrix:
    """Spend per customer and category: ``matrix`` (n_people, len(columns) + 1) float64.

    Rows follow the population passed to ``category_spend``; the last column pools the
    categories outside ``columns`` (and items without one).
    """

    matrix: np.ndarray
    columns: list[str]

    @property
    def active(self) -> np.ndarray:
        """Rows with any spend in the window, (n_active,) int64."""
        return np.flatnonzero(self.matrix.sum(axis=1) > 0)

    def profiles(self, rows: np.ndarray) -> np.ndarray:
        """Hellinger profiles (sqrt of spend shares) of ``rows``, (len(rows), d) float32."""
        spend = self.matrix[rows]
        return np.sqrt(spend / spend.sum(axis=1, keepdims=True)).astype(np.float32)


def category_spend(
    cfg: LearnedFamilyConfig,
    history: pl.LazyFrame,
    items: pl.DataFrame,
    people: pl.DataFrame,
    as_of: datetime,
    columns: list[str] | None = None,
) -> SpendMatrix:
    """Each customer's spend per category in the window, dense over ``people``'s rows.

    ``columns``: the categories to keep apart; by default the ``max_categories`` with most
    spend. Two joins and one ``np.bincount``: no group_by over (customer, category) pairs,
    which at millions of customers costs more than the rest of the family together. Memory:
    8 bytes x customers x (columns + 1), e.g. 170 MB for 1M customers and 20 categories.
    """
    value = {
        "revenue": pl.col("revenue").fill_null(0.0),
        "quantity": pl.col("quantity"),
        "lines": pl.lit(1.0),
    }[cfg.spend]
    categories = items[cfg.attribute].cast(pl.Utf8).drop_nulls().unique().sort()
    codes = categories.to_frame("category").with_row_index("code")
    item_code = items.select("item_id", pl.col(cfg.attribute).cast(pl.Utf8).alias("category")).join(
        codes, on="category", how="left"
    )
    rows = people.select("customer_id").with_row_index("row")
    lines = (
        window(history, as_of, cfg.window_days)
        .select("customer_id", "item_id", value.cast(pl.Float64).alias("v"))
        .join(rows.lazy(), on="customer_id")
        .join(item_code.lazy(), on="item_id", how="left")
        .select("row", pl.col("code").cast(pl.Int64).fill_null(categories.len()), "v")
        .collect()
    )
    code, spend = lines["code"].to_numpy(), lines["v"].to_numpy()
    if columns is None:
        totals = np.bincount(code, weights=spend, minlength=categories.len() + 1)[:-1]
        order = np.lexsort((np.arange(totals.size), -totals))  # most spend first, ties by name
        keep = order[: cfg.max_categories]
        columns = sorted(categories.gather(keep[totals[keep] > 0]).to_list())
    column_of = np.full(categories.len() + 1, len(columns), dtype=np.int64)
    known = codes.join(pl.DataFrame({"category": columns}).with_row_index("col"), on="category")
    column_of[known["code"].to_numpy()] = known["col"].to_numpy()
    width = len(columns) + 1
    flat = lines["row"].to_numpy().astype(np.int64) * width + column_of[code]
    matrix = np.bincount(flat, weights=spend, minlength=people.height * width)
    # Returns can leave a net negative spend in a category: count it as none bought.
    return SpendMatrix(np.maximum(matrix, 0.0).reshape(people.height, width), columns)


@dataclass(frozen=True)
class LearnedModel:
    """Fitted clusters: ``centroids`` (k, d), one label per cluster, profile ``columns``.

    ``columns`` is None for external vectors; for spend profiles it fixes the category
    order so that profiles at another date are comparable with the centroids.
    """

    centroids: np.ndarray
    labels: list[str]
    columns: list[str] | None

    def clusters(self, vectors: CustomerVectors) -> np.ndarray:
        """Nearest centroid of each row, (n,) int64."""
        (n, d), k = vectors.matrix.shape, self.centroids.shape[0]
        if d != self.centroids.shape[1]:
            raise ValueError(
                f"LearnedModel: vectors have {d} dimensions, centroids {self.centroids.shape[1]}"
            )
        if n == 0:  # nobody had bought yet at an early date
            return np.zeros(0, dtype=np.int64)
        with _faiss(n, k, d) as faiss:
            index = faiss.IndexFlatL2(d)
            index.add(np.ascontiguousarray(self.centroids, dtype=np.float32))
            _, nearest = index.search(np.ascontiguousarray(vectors.matrix, dtype=np.float32), 1)
        return nearest[:, 0].astype(np.int64)


def _kmeans(name: str, cfg: LearnedFamilyConfig, vectors: CustomerVectors) -> np.ndarray:
    """FAISS k-means centroids (k, d), ordered by cluster size, largest first, for stable ids."""
    n, d = vectors.matrix.shape
    if cfg.k > n:
        raise SegmentConfigError(
            [
                f"{where('learned', name, 'k')}: k={cfg.k} clusters but only {n:,} customers "
                f"have a vector ({cfg.source}); lower k"
            ]
        )
    x = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
    sample = min(n, 256 * cfg.k)  # FAISS trains on at most 256 points per centroid
    with _faiss(sample * cfg.nredo * cfg.niter, cfg.k, d) as faiss:
        km = faiss.Kmeans(d, cfg.k, niter=cfg.niter, nredo=cfg.nredo, seed=cfg.seed)
        km.train(x)
    centroids = km.centroids
    sizes = np.bincount(LearnedModel(centroids, [], None).clusters(vectors), minlength=cfg.k)
    return centroids[np.argsort(-sizes, kind="stable")]


def lift_labels(
    cfg: LearnedFamilyConfig, clusters: np.ndarray, spend: np.ndarray, columns: list[str]
) -> list[str]:
    """Name each cluster by its ``label_categories`` highest-lift categories.

    ``clusters`` (n,) and ``spend`` (n, len(columns) + 1) describe the same customers.
    lift = (category's share of the cluster's spend) / (its share of all spend); only
    categories holding at least ``label_min_share`` of the cluster's spend compete, so a
    rare category bought by two customers cannot name a cluster of thousands.
    """
    per_cluster = np.stack(  # one bincount per category column: no pass per cluster
        [np.bincount(clusters, weights=spend[:, j], minlength=cfg.k) for j in range(len(columns))],
        axis=1,
    )
    share = per_cluster / np.maximum(per_cluster.sum(axis=1, keepdims=True), 1e-12)
    base = per_cluster.sum(axis=0) / max(per_cluster.sum(), 1e-12)
    lift = np.where((share >= cfg.label_min_share) & (base > 0), share / np.maximum(base, 1e-12), 0)
    labels: list[str] = []
    for c in range(cfg.k):  # k clusters, not customers: a loop is fine here
        best = [j for j in np.lexsort((np.arange(len(columns)), -lift[c])) if lift[c, j] > 0]
        name = " + ".join(columns[j] for j in best[: cfg.label_categories]) or f"cluster {c + 1}"
        labels.append(name if name not in labels else f"{name} ({c + 1})")
    return labels


def learned_inputs(
    spend: SpendMatrix | None, people: pl.DataFrame, vectors: CustomerVectors | None
) -> tuple[CustomerVectors, np.ndarray]:
    """The vectors to cluster and, for each, its row in ``people`` (-1 where absent).

    Without external ``vectors`` these are the spend profiles of the active customers.
    """
    if vectors is None:
        assert spend is not None
        rows = spend.active
        return CustomerVectors(people["customer_id"].gather(rows), spend.profiles(rows)), rows
    vectors.check_unique()
    index = people.select("customer_id").with_row_index("row")
    found = pl.DataFrame({"customer_id": vectors.ids}).join(
        index, on="customer_id", how="left", maintain_order="left"
    )
    return vectors, found["row"].fill_null(-1).cast(pl.Int64).to_numpy()


def fit_learned(
    name: str,
    cfg: LearnedFamilyConfig,
    vectors: CustomerVectors,
    rows: np.ndarray,
    spend: SpendMatrix,
    external: bool,
) -> LearnedModel:
    """Cluster ``vectors`` and name the clusters from the spend of their customers."""
    centroids = _kmeans(name, cfg, vectors)
    present = rows >= 0
    clusters = LearnedModel(centroids, [], None).clusters(vectors)[present]
    labels = lift_labels(cfg, clusters, spend.matrix[rows[present]], spend.columns)
    return LearnedModel(centroids, labels, None if external else spend.columns)


def assign_learned(
    name: str, model: LearnedModel, vectors: CustomerVectors, rows: np.ndarray, n_people: int
) -> pl.Series:
    """Labels aligned with the population's rows; customers without a vector are unknown."""
    present = rows >= 0
    labels = np.full(n_people, UNKNOWN_LABEL, dtype=object)
    names = np.asarray(model.labels, dtype=object)
    labels[rows[present]] = names[model.clusters(vectors)[present]]
    return pl.Series(name, labels, dtype=pl.Utf8)
