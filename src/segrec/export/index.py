"""The FAISS index over item vectors, and its recall measured against exact search.

Retrieval is maximum inner product (the towers are trained with a dot-product score), so
every index uses ``METRIC_INNER_PRODUCT``. Row 0 of the item vectors (the unknown item) is
left out: faiss id ``i`` is item index ``i + 1`` (``id_offset`` in the manifest), which
keeps the index free of an 8-byte-per-item id map.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from segrec.export.config import INDEX_KINDS, IndexConfig

ID_OFFSET = 1


class RecallError(RuntimeError):
    """The approximate index's measured recall is below ``index.min_recall``."""


@dataclass
class RecallReport:
    """recall@k of the index against exact search over ``n_queries`` queries, and the mean
    search time per query of each (single call, all queries)."""

    k: int
    n_queries: int
    recall: float
    exact_ms_per_query: float
    index_ms_per_query: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def nlist_for(n_items: int, nlist: int) -> int:
    """Inverted lists: the configured number, else 4·√n, at most n/39 (faiss needs about 39
    training points per centroid) and at least 1."""
    wanted = nlist or int(4 * math.sqrt(n_items))
    return max(1, min(wanted, n_items // 39))


def build_index(vectors: np.ndarray, cfg: IndexConfig) -> faiss.Index:
    """An inner-product index over ``vectors`` (n_items, d) float32 (no unknown row)."""
    if cfg.kind not in INDEX_KINDS:
        raise ValueError(f"export.index.kind: {cfg.kind!r} is not one of {INDEX_KINDS}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    index: Any  # faiss's stubs type each class apart; the three share the Index API
    if cfg.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif cfg.kind == "ivf":
        quantizer = faiss.IndexFlatIP(d)
        nlist = nlist_for(n, cfg.nlist)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(vectors, nlist))
        index.nprobe = cfg.nprobe
    else:
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
    index.add(vectors)
    return index


def _training_sample(vectors: np.ndarray, nlist: int, per_list: int = 64) -> np.ndarray:
    """k-means needs tens of points per centroid, not all of them: 64 per list keeps the
    centroids as good and cuts the training time of a million-item catalog several-fold."""
    if len(vectors) <= per_list * nlist:
        return vectors
    rng = np.random.default_rng(0)
    return vectors[np.sort(rng.choice(len(vectors), per_list * nlist, replace=False))]


def index_params(index: Any, cfg: IndexConfig) -> dict[str, Any]:
    """The parameters a reader needs to search the index as it was measured."""
    if cfg.kind == "ivf":
        return {"nlist": int(index.nlist), "nprobe": int(index.nprobe)}
    if cfg.kind == "hnsw":
        return {
            "m": cfg.hnsw_m,
            "ef_construction": cfg.ef_construction,
            "ef_search": int(index.hnsw.efSearch),
        }
    return {}


def exact_kth(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """The k-th best exact inner product of each query (n,), and seconds the scan took."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    start = time.perf_counter()
    scores, _ = exact.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores[:, -1], time.perf_counter() - start


def measure_recall(
    index: faiss.Index,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    kth: np.ndarray | None = None,
) -> RecallReport:
    """recall@k of ``index`` against exact search, averaged over the queries.

    A returned item is a hit when its true score reaches the k-th exact score (so an item
    tied with the exact k-th counts, whichever of the tied ones exact search kept): with
    distinct scores this is |index top-k ∩ exact top-k| / k. ``kth`` may pass the exact
    k-th scores when the caller already has them (``exact_kth``).
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(vectors))
    exact_s = float("nan")
    if kth is None:
        kth, exact_s = exact_kth(vectors, queries, k)
    start = time.perf_counter()
    _, found = index.search(queries, k)
    index_s = time.perf_counter() - start
    true_scores = np.einsum("qd,qkd->qk", queries, vectors[np.maximum(found, 0)])
    hits = ((found >= 0) & (true_scores >= kth[:, None] - 1e-5)).sum(axis=1)
    n = max(len(queries), 1)
    return RecallReport(
        k=k,
        n_queries=len(queries),
        recall=float(hits.sum() / (k * n)),
        exact_ms_per_query=1e3 * exact_s / n,
        index_ms_per_query=1e3 * index_s / n,
    )


def check_recall(report: RecallReport, cfg: IndexConfig) -> None:
    if report.recall < cfg.min_recall:
        raise RecallError(
            f"{cfg.kind} index recall@{report.k} = {report.recall:.3f} over {report.n_queries} "
            f"queries is below export.index.min_recall = {cfg.min_recall}; raise nprobe / "
            f"ef_search or use kind=flat"
        )
