"""Loading a verified bundle for serving and batch scoring, without torch.

``read_bundle`` verifies first (``verify.py``) and only then hands out anything. Large
arrays (item and customer vectors, the customers' tower inputs) are memory-mapped
read-only, so a service with several workers shares one copy through the page cache and
starts in well under a second whatever the catalog size. FAISS and ONNX Runtime are
imported on first use: verifying a bundle needs neither.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segrec.bundle import schema as layout
from segrec.bundle.schema import Manifest, TowerInput
from segrec.bundle.tower import TowerSession
from segrec.bundle.verify import verify_bundle
from segrec.data.ids import IdMap


def read_bundle(path: str | Path, hash_workers: int | None = None) -> Bundle:
    """Verify the bundle at ``path`` (a bundle, its parent holding ``latest``, or ``latest``)
    and open it. Raises ``BundleError`` naming the file and the reason if it is refused."""
    root, manifest = verify_bundle(path, hash_workers)
    return Bundle(root, manifest)


class Bundle:
    """A verified bundle. Arrays are row-aligned with their id maps (row 0 = unknown)."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = Path(path)
        self.manifest = manifest

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @property
    def dim(self) -> int:
        return int(self.manifest.tower["dim"])

    @property
    def tower_inputs(self) -> list[TowerInput]:
        return self.manifest.tower_inputs

    @property
    def prior_head(self) -> tuple[int, int]:
        """(m, c): a ranking of items new to the customer puts first the m best by the
        vectors' columns from c on (the biases and the co-purchase prior: search with the
        first c query columns zeroed), then the rest by the inner product less
        ``head_only_columns`` (the model setting ``model.prior_heads``); (0, 0) without a
        head. The second search must go m + the customer's purchases deep to be sure of m
        new items, and on an approximate index it is as approximate as the first (the
        export's recall check covers the whole inner product only)."""
        head = self.manifest.tower.get("prior_head") or {}
        return int(head.get("length", 0)), int(head.get("cosine_dim", 0))

    @property
    def head_only_columns(self) -> list[int]:
        """Vector columns that score the prior's head only (the biases of segment families
        outside ``model.ranking_bias_families``): the whole ranking's search zeroes them in
        the query, the head's search keeps them. Empty: every column scores the whole
        ranking."""
        return [int(j) for j in self.manifest.tower.get("head_only_columns", [])]

    def has(self, rel: str) -> bool:
        """Whether the bundle holds the file ``rel`` (or, for a directory, any file in it)."""
        return rel in self.manifest.files or any(
            f.startswith(rel.rstrip("/") + "/") for f in self.manifest.files
        )

    def _mmap(self, rel: str) -> np.ndarray:
        return np.load(self.path / rel, mmap_mode="r", allow_pickle=False)

    # -- items --------------------------------------------------------------------------
    @cached_property
    def item_map(self) -> IdMap:
        return IdMap.load(self.path / layout.ITEM_IDS)

    @cached_property
    def item_vectors(self) -> np.ndarray:
        """float32 (n_items + 1, d), memory-mapped; row 0 (unknown item) is zeros."""
        return self._mmap(layout.ITEM_VECTORS)

    @cached_property
    def item_attributes(self) -> pl.DataFrame | None:
        """One row per item in index order (``item_index``, ``item_id``, attributes...)."""
        return self._parquet(layout.ITEM_ATTRIBUTES)

    # -- known customers -----------------------------------------------------------------
    @cached_property
    def customer_map(self) -> IdMap:
        return IdMap.load(self.path / layout.CUSTOMER_IDS)

    @cached_property
    def customer_vectors(self) -> np.ndarray:
        """float32 (n_customers + 1, d), memory-mapped; row 0 = the all-unknown customer."""
        return self._mmap(layout.CUSTOMER_VECTORS)

    @cached_property
    def customer_inputs(self) -> dict[str, np.ndarray]:
        """Tower inputs of the known customers (row r = customer index r), memory-mapped."""
        return {
            s.name: self._mmap(f"{layout.CUSTOMER_INPUTS}/{s.name}.npy") for s in self.tower_inputs
        }

    @cached_property
    def customer_features(self) -> pl.DataFrame | None:
        """customer_id, segment labels, purchase counts: one row per known customer."""
        return self._parquet(layout.CUSTOMER_FEATURES)

    @cached_property
    def purchases(self) -> pl.DataFrame | None:
        """Per (customer, item) purchase counts and recency: the ranker's history features."""
        return self._parquet(layout.PURCHASES)

    # -- segments and ranker -------------------------------------------------------------
    @property
    def segment_vocabularies_dir(self) -> Path | None:
        """For ``SegmentVocabularies.load``; None when the bundle has none."""
        return self._dir(layout.SEGMENT_VOCABULARIES)

    @cached_property
    def top_items(self) -> pl.DataFrame | None:
        """family, label, rank, item_id, ...: each segment's top items."""
        return self._parquet(layout.TOP_ITEMS)

    @property
    def ranker_dir(self) -> Path | None:
        """The ranker's own files, for its ``load``; None when the bundle has no ranker."""
        return self._dir(layout.RANKER)

    def _parquet(self, rel: str) -> pl.DataFrame | None:
        return pl.read_parquet(self.path / rel) if rel in self.manifest.files else None

    def _dir(self, rel: str) -> Path | None:
        return self.path / rel if self.has(rel) else None

    # -- engines -------------------------------------------------------------------------
    def tower(self, threads: int | None = None) -> TowerSession:
        """An ONNX Runtime session of the customer tower, checking inputs against the schema."""
        t = self.manifest.tower
        return TowerSession(
            self.path / t["file"],
            self.tower_inputs,
            t["output"],
            self.dim,
            t.get("history_len"),
            threads,
        )

    @cached_property
    def index(self) -> Any:
        """The FAISS index over item vectors (ids offset by ``index.id_offset``)."""
        import faiss

        info = self.manifest.index
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
        index: Any = faiss.read_index(str(self.path / info["file"]), flags)
        params = info.get("params", {})
        if info["kind"] == "ivf":
            index.nprobe = int(params["nprobe"])
        elif info["kind"] == "hnsw":
            index.hnsw.efSearch = int(params["ef_search"])
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by inner product for (n, d) queries.

        Returns item indices int64 (n, k), 0 where the index had fewer than k answers, and
        float32 scores (n, k), ``-inf`` in those slots.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(
                f"search: queries of shape (n, {self.dim}) expected, got {queries.shape}"
            )
        scores, ids = self.index.search(queries, k)
        missing = ids < 0
        items = ids + int(self.manifest.index.get("id_offset", 1))
        items[missing] = 0
        scores = scores.astype(np.float32)
        scores[missing] = -np.inf
        return items, scores
