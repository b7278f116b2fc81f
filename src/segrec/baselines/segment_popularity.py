"""Segment popularity: what segmentation alone gives.

Each customer gets the best sellers of their segment: one family (``age_band``) or the
crossing of several (``age_band × region``). Crossings get small fast, so each segment's
item distribution is shrunk towards the global one (a Dirichlet prior of ``prior_weight``
pseudo-purchases): a segment with few purchases backs off smoothly to global popularity,
and a customer whose segment is unknown or unseen gets global popularity exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from segrec.data import IdMap
from segrec.recommender import NEVER, History
from segrec.segments.crossing import crossing, family_labels

DENSE_TABLE_BYTES = 256 * 2**20  # precompute all segments' scores below this size


def segment_keys(
    segments: pl.DataFrame, families: Sequence[str], customer_ids: pl.Series
) -> pl.Series:
    """One key per customer id: its labels in ``families`` joined by ``CROSS``; null if absent."""
    key = family_labels(segments, crossing(families)).alias("_key")
    table = segments.select(pl.col("customer_id").cast(pl.Utf8)).with_columns(key)
    frame = pl.DataFrame({"customer_id": customer_ids.cast(pl.Utf8)})
    return frame.join(table, on="customer_id", how="left", maintain_order="left")["_key"]


class SegmentPopularity:
    """Per-segment best sellers, shrunk towards global popularity.

    score(c, i) = (n_{s,i} + w · p_i) / (n_s + w), where s is c's segment, n_{s,i} the
    (decayed) purchase lines of i by s's customers, n_s their total, p_i the global share
    of i and w = ``prior_weight``.
    """

    cold_start = "native"

    def __init__(
        self,
        families: Sequence[str],
        prior_weight: float = 100.0,
        half_life_days: float | None = None,
    ) -> None:
        if not families:
            raise ValueError("segment popularity needs at least one segment family")
        self.families = tuple(families)
        self.prior_weight = prior_weight
        self.half_life_days = half_life_days
        self.name = f"segment_popularity[{'×'.join(self.families)}]"
        self._segments: pl.DataFrame | None = None

    def fit(self, history: History) -> SegmentPopularity:
        if history.segments is None:
            raise ValueError(f"{self.name}: the history carries no segment labels")
        self._segments = history.segments
        matrix = history.matrix(self.half_life_days)
        customers = history.customer_map.ids
        keys = segment_keys(history.segments, self.families, customers)
        self._map = IdMap.from_values(keys)
        seg = self._map.encode(keys)
        # (n_segments+1, n_customers+1) membership; customer row r+1 is customers[r].
        member = sp.csr_matrix(
            (np.ones(len(seg), np.float32), (seg, np.arange(1, len(seg) + 1))),
            shape=(len(self._map) + 1, matrix.shape[0]),
        )
        keep = np.ones(member.shape[0], np.float32)
        keep[0] = 0.0  # customers without labels teach nothing about a segment
        self._counts = (sp.diags(keep) @ member @ matrix).tocsr().astype(np.float32)
        self._totals = np.asarray(self._counts.sum(axis=1), dtype=np.float32).ravel()
        glob = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        total = glob.sum()
        self._prior = (glob / total if total > 0 else glob).astype(np.float32)
        # Few segments (the usual case): every segment's scores once, scoring is a row gather.
        self._table = None
        if self._counts.shape[0] * self._counts.shape[1] * 4 <= DENSE_TABLE_BYTES:
            self._table = self._scores(np.arange(self._counts.shape[0]))
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        if self._segments is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        seg = self._map.encode(segment_keys(self._segments, self.families, customer_ids))
        return self._table[seg] if self._table is not None else self._scores(seg)

    def _scores(self, seg: np.ndarray) -> np.ndarray:
        """Score rows of segment indices ``seg`` (float32 (len(seg), n_columns))."""
        w = np.float32(self.prior_weight)
        out = self._counts[seg].toarray()
        out += w * self._prior
        mass = self._totals[seg] + w
        empty = mass <= 0  # no purchases and no prior (prior_weight 0): global popularity
        out /= np.where(empty, 1, mass)[:, None]
        out[empty] = self._prior
        out[:, 0] = NEVER
        return out
