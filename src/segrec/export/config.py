"""Typed configuration of the export stage (``conf/export/*.yaml``).

Plain dataclasses, no Hydra import; Hydra checks the YAML against them at compose time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDEX_KINDS = ("flat", "ivf", "hnsw")


@dataclass
class ParityConfig:
    """torch vs ONNX Runtime on ``n_rows`` customers; export fails above ``tolerance``.

    The rows are the known customers (at most ``max_known``, sampled), the same customers
    made cold (unknown id), with an empty history, both, and random valid inputs up to
    ``n_rows``; a share of them is also run with shorter histories to exercise the dynamic
    history axis. ``report_rows`` worst rows are listed when it fails.
    """

    n_rows: int = 10_000
    tolerance: float = 1e-4
    max_known: int = 20_000
    report_rows: int = 10
    seed: int = 0


@dataclass
class IndexConfig:
    """The FAISS index over item vectors. ``flat`` is exact inner product (the default: up
    to a few hundred thousand items a brute-force scan is fast and has no recall loss).
    ``ivf`` (``nlist`` lists, 0 = 4·√n; ``nprobe`` searched) and ``hnsw`` (``hnsw_m`` links,
    ``ef_construction``, ``ef_search``) trade recall for speed on large catalogs; their
    recall@``recall_k`` against exact search over ``recall_queries`` customer vectors is
    measured at export, written to the manifest, and must reach ``min_recall``."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    recall_k: int = 20
    recall_queries: int = 2_000
    min_recall: float = 0.0


@dataclass
class ExportConfig:
    """Where and how the main job writes its bundle.

    ``dir``: the folder holding bundles and the ``latest`` pointer; relative paths are
    under the run's output directory. ``batch_size``: customers per tower call when
    precomputing vectors and checking parity. ``hash_workers``: threads hashing files
    (0 = one per core, at most 8).
    """

    enabled: bool = True
    dir: str = "bundle"
    opset: int = 17
    batch_size: int = 4_096
    hash_workers: int = 0
    update_latest: bool = True
    parity: ParityConfig = field(default_factory=ParityConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
