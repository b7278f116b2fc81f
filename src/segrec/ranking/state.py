"""``RankingState``: everything the ranker reads about a history, built once, saved plainly.

It is the ranker's view of the world as of one cutoff: per-pair, per-customer and per-item
statistics, the item-item neighbours, segment popularity, the best sellers, and the
weights of the retrieval sources the ranker builds itself (``segrec.ranking.sources``). Training
builds one per window (each as of its own cutoff); scoring and serving use the one built
on the full history. ``save``/``load`` use ``.npz`` arrays and JSON only (no pickle), so
the bundle can carry it and the service can read it with numpy and scipy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from segrec.data import IdMap
from segrec.ranking.config import RankingConfig, own_sources
from segrec.ranking.neighbours import ease_source, item_similarity
from segrec.ranking.stats import (
    ATTRIBUTE_COLUMNS,
    ITEM_COLUMNS,
    PairTable,
    attribute_codes,
    attribute_table,
    customer_table,
    item_table,
    pair_table,
    purchase_frame,
    recent_customers,
)
from segrec.recommender import History, top_k
from segrec.segments.crossing import crossing, family_labels, parts

FORMAT = 2  # 2: the ranker's own retrieval sources (``sources``)
T = TypeVar("T")


@dataclass(frozen=True)
class SegmentPopularity:
    """One family's item shares per label, shrunk towards the global share.

    ``labels``: the family's labels (index i+1 is ``labels[i]``; 0 = a label unseen in the
    history, which gets the global share); ``share`` float32 (labels+1, n_columns);
    ``top`` int32 (labels+1, N): each label's best items.
    """

    family: str
    labels: tuple[str, ...]
    share: np.ndarray
    top: np.ndarray

    @cached_property
    def vocabulary(self) -> IdMap:
        """The labels as an id map: ``vocabulary.index(label)`` for one customer."""
        return IdMap(pl.Series(self.labels, dtype=pl.Utf8))

    def encode(self, values: pl.Series) -> np.ndarray:
        """Label index of each value (0 where unknown), int64 (n,)."""
        if not self.labels:
            return np.zeros(values.len(), np.int64)
        return self.vocabulary.encode(values.cast(pl.Utf8))


@dataclass(frozen=True)
class ItemAttribute:
    """An item attribute (e.g. category): ``codes`` int64 (n_columns,) value of each item
    (0 = none), ``customers``: per (customer row, value) lines and decayed lines,
    ``value_lines`` float32 (values,): purchase lines of each value."""

    name: str
    codes: np.ndarray
    customers: PairTable
    value_lines: np.ndarray


@dataclass(frozen=True)
class RankingState:
    """The statistics of one history, as arrays; see ``segrec.ranking.stats``."""

    as_of: datetime
    customers: IdMap
    pairs: PairTable
    customer_stats: np.ndarray
    item_stats: np.ndarray
    recent_customers: int
    neighbours: sp.csr_matrix
    global_share: np.ndarray
    segments: tuple[SegmentPopularity, ...]
    popular: np.ndarray
    attributes: tuple[ItemAttribute, ...] = ()
    # Item-item weights (n_columns, n_columns) of the ranker's own retrieval sources.
    sources: Mapping[str, sp.csr_matrix] = field(default_factory=dict)

    @property
    def n_columns(self) -> int:
        return self.item_stats.shape[0]

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(s.family for s in self.segments)

    def derived(self, build: Callable[[RankingState], T]) -> T:
        """``build(self)``, computed on first use and kept with this (immutable) state:
        tables derived from the statistics, such as per-item features, that each request
        would otherwise recompute for its few candidates (``training.build_tables``
        builds them all when a ranker loads)."""
        memo = self.__dict__.setdefault("_derived", {})
        if build not in memo:
            memo[build] = build(self)
        return memo[build]

    def __getstate__(self) -> dict[str, Any]:
        """Pickles (Ray workers) carry the statistics; derived tables (tens of MB: one row
        per pair) are rebuilt on first use."""
        state = self.__dict__.copy()
        state.pop("_derived", None)
        return state

    @classmethod
    def build(cls, history: History, cfg: RankingConfig) -> RankingState:
        """Every statistic of ``history`` (rows at or after its as_of are ignored)."""
        history = history_before(history, history.as_of, history.segments)
        f = cfg.features
        frame = purchase_frame(history)
        n_rows = len(history.customer_map) + 1
        items = item_table(frame, history.n_columns, f.recent_days)
        weights = history.matrix(f.long_half_life_days)
        glob = np.asarray(weights.sum(axis=0), dtype=np.float64).ravel()
        glob = (glob / max(glob.sum(), 1e-12)).astype(np.float32)
        # Best sellers by the long-decayed share, not the last few weeks: a holiday month
        # (Ta-Feng's January) would otherwise fill every cold list with seasonal items.
        ranked = glob.astype(np.float64)
        ranked[0] = -np.inf
        popular = top_k(ranked[None, :], cfg.candidates.popular)[0][0]
        return cls(
            as_of=history.as_of,
            customers=history.customer_map,
            pairs=pair_table(
                frame, n_rows, history.n_columns, f.short_half_life_days, f.long_half_life_days
            ),
            customer_stats=customer_table(frame, n_rows, f.long_half_life_days),
            item_stats=items,
            recent_customers=recent_customers(frame, f.recent_days),
            neighbours=item_similarity(history, cfg.neighbours),
            global_share=glob,
            segments=segment_popularity(history, weights, glob, cfg),
            popular=popular[popular > 0].astype(np.int64),
            attributes=tuple(
                item_attribute(history, frame, items, name, n_rows, f.long_half_life_days)
                for name in f.item_attributes
            ),
            sources={name: ease_source(history, cfg.ease) for name in own_sources(cfg.candidates)},
        )

    def customer_rows(self, customer_ids: pl.Series) -> np.ndarray:
        """Row of each customer (int64 (n,)); 0 = absent from the history (cold)."""
        return self.customers.encode(customer_ids.cast(pl.Utf8))

    def segment_index(self, segments: pl.DataFrame | None, customer_ids: pl.Series) -> np.ndarray:
        """Label index per customer and family, int64 (n, families); 0 = unknown."""
        out = np.zeros((customer_ids.len(), len(self.segments)), np.int64)
        if segments is None or not self.segments:
            return out
        frame = pl.DataFrame({"customer_id": customer_ids.cast(pl.Utf8)}).join(
            segments.with_columns(pl.col("customer_id").cast(pl.Utf8)),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        for j, seg in enumerate(self.segments):
            out[:, j] = seg.encode(family_labels(frame, seg.family))
        return out

    def save(self, directory: Path) -> None:
        """``ranking_state.npz`` (arrays), ``customers.parquet`` and ``ranking_state.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "pairs_indptr": self.pairs.indptr,
            "pairs_items": self.pairs.items,
            "pairs_values": self.pairs.values,
            "customer_stats": self.customer_stats,
            "item_stats": self.item_stats,
            **_csr_arrays("neighbours", self.neighbours),
            "global_share": self.global_share,
            "popular": self.popular,
        }
        for j, seg in enumerate(self.segments):
            arrays[f"segment_{j}_share"] = seg.share
            arrays[f"segment_{j}_top"] = seg.top
        for j, att in enumerate(self.attributes):
            arrays[f"attribute_{j}_codes"] = att.codes
            arrays[f"attribute_{j}_indptr"] = att.customers.indptr
            arrays[f"attribute_{j}_items"] = att.customers.items
            arrays[f"attribute_{j}_values"] = att.customers.values
            arrays[f"attribute_{j}_lines"] = att.value_lines
        for name, weights in self.sources.items():
            arrays.update(_csr_arrays(f"source_{name}", weights))
        # numpy's stub types **kwds alongside the bool keyword allow_pickle, so a
        # dict[str, ndarray] unpacked into it is rejected though every value is an array.
        np.savez(directory / "ranking_state.npz", **arrays)  # type: ignore[arg-type]
        self.customers.save(directory / "customers.parquet")
        meta = {
            "format": FORMAT,
            "as_of": self.as_of.isoformat(),
            "recent_customers": self.recent_customers,
            "segments": [{"family": s.family, "labels": list(s.labels)} for s in self.segments],
            "attributes": [a.name for a in self.attributes],
            "sources": list(self.sources),
        }
        (directory / "ranking_state.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> RankingState:
        meta = json.loads((directory / "ranking_state.json").read_text())
        if meta["format"] != FORMAT:
            raise ValueError(
                f"{directory}: ranking state format {meta['format']}, expected {FORMAT}"
            )
        with np.load(directory / "ranking_state.npz", allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        n = a["item_stats"].shape[0]
        segments = tuple(
            SegmentPopularity(
                s["family"], tuple(s["labels"]), a[f"segment_{j}_share"], a[f"segment_{j}_top"]
            )
            for j, s in enumerate(meta["segments"])
        )
        attributes = tuple(
            ItemAttribute(
                name,
                a[f"attribute_{j}_codes"],
                PairTable(
                    a[f"attribute_{j}_indptr"],
                    a[f"attribute_{j}_items"],
                    a[f"attribute_{j}_values"],
                    len(a[f"attribute_{j}_lines"]),
                    ATTRIBUTE_COLUMNS,
                ),
                a[f"attribute_{j}_lines"],
            )
            for j, name in enumerate(meta["attributes"])
        )
        return cls(
            as_of=datetime.fromisoformat(meta["as_of"]),
            customers=IdMap.load(directory / "customers.parquet"),
            pairs=PairTable(a["pairs_indptr"], a["pairs_items"], a["pairs_values"], n),
            customer_stats=a["customer_stats"],
            item_stats=a["item_stats"],
            recent_customers=int(meta["recent_customers"]),
            neighbours=_csr_from(a, "neighbours", n),
            global_share=a["global_share"],
            segments=segments,
            popular=a["popular"],
            attributes=attributes,
            sources={name: _csr_from(a, f"source_{name}", n) for name in meta["sources"]},
        )


def _csr_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A square CSR matrix as three named arrays, for ``np.savez``."""
    return {f"{prefix}_indptr": m.indptr, f"{prefix}_indices": m.indices, f"{prefix}_data": m.data}


def _csr_from(a: Mapping[str, np.ndarray], prefix: str, n: int) -> sp.csr_matrix:
    """The (n, n) CSR matrix ``_csr_arrays`` saved under ``prefix``."""
    parts = (a[f"{prefix}_data"], a[f"{prefix}_indices"], a[f"{prefix}_indptr"])
    return sp.csr_matrix(parts, shape=(n, n))


def item_attribute(
    history: History,
    frame: pl.DataFrame,
    items: np.ndarray,
    name: str,
    n_rows: int,
    long_days: float,
) -> ItemAttribute:
    """Codes, per-customer shares and sales of one item attribute."""
    codes = attribute_codes(history, name)
    table = attribute_table(frame, codes, n_rows, long_days)
    lines = np.bincount(
        codes, weights=items[:, ITEM_COLUMNS.index("lines")], minlength=table.n_columns
    ).astype(np.float32)
    return ItemAttribute(name, codes, table, lines)


def history_before(history: History, as_of: datetime, segments: pl.DataFrame | None) -> History:
    """The same catalog and customers, with only the purchases before ``as_of``."""
    late = history.interactions["timestamp"] >= as_of
    if as_of == history.as_of and not late.any() and segments is history.segments:
        return history  # keeps the history's cached matrices
    return History(
        interactions=history.interactions.filter(~late),
        as_of=as_of,
        customers=history.customers,
        items=history.items,
        item_map=history.item_map,
        segments=segments,
    )


def ranked_families(cfg: RankingConfig, columns: Sequence[str]) -> list[str]:
    """The families whose popularity is a feature: ``segment_families`` (null: every
    column) then the ``crossings``, all made of ``columns``."""
    wanted = cfg.features.segment_families
    families = [*(columns if wanted is None else wanted), *map(crossing, cfg.features.crossings)]
    missing = sorted({f for family in families for f in parts(family, columns)} - set(columns))
    if missing:
        raise ValueError(
            f"ranking.features: segment families {missing} not in segments {list(columns)}"
        )
    return families


def segment_popularity(
    history: History, weights: sp.csr_matrix, glob: np.ndarray, cfg: RankingConfig
) -> tuple[SegmentPopularity, ...]:
    """Per family: item shares of each label's customers (decayed purchase lines),
    shrunk towards the global share with ``segment_prior`` pseudo-purchases."""
    if history.segments is None:
        return ()
    families = ranked_families(cfg, [c for c in history.segments.columns if c != "customer_id"])
    ids = history.customer_map.ids
    frame = pl.DataFrame({"customer_id": ids}).join(
        history.segments.with_columns(pl.col("customer_id").cast(pl.Utf8)),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    prior = np.float32(cfg.features.segment_prior)
    out = []
    for family in families:
        column = family_labels(frame, family)
        labels = tuple(sorted(column.drop_nulls().unique().to_list()))
        seg = SegmentPopularity(family, labels, np.zeros(0), np.zeros(0))
        index = seg.encode(column)
        member = sp.csr_matrix(
            (np.ones(len(index), np.float32), (index, np.arange(1, len(index) + 1))),
            shape=(len(labels) + 1, weights.shape[0]),
        )
        counts = (member @ weights).toarray()
        counts[0] = 0.0  # customers without a label teach nothing about a label
        share = (counts + prior * glob) / (counts.sum(axis=1, keepdims=True) + prior)
        share[:, 0] = -np.inf
        top = top_k(share, cfg.candidates.segment)[0]
        share[:, 0] = 0.0
        out.append(SegmentPopularity(family, labels, share.astype(np.float32), top))
    return tuple(out)
