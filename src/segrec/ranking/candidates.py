"""Candidates: the items worth ranking for each customer of a block.

The union of the customer's own items (by decayed purchase count), the items bought with
them (item-item neighbours), the best sellers of each of the customer's segments, the
best sellers (long-decayed), and the top-N of every retrieval source. A retrieval source is any
``Recommender`` (EASE, ALS, the two-tower model): ranking sees it only through
``SourceScores`` (its best items, and its score of any item), so the service can back it
with a FAISS search and dot products and batch scoring with a dense score matrix, and both
rank through the same code.

A block is a few customers ranked together: rows of the ``RankingState`` (0 = cold),
their segment label indices and their retrieval scores. Pairs come back as (position in
the block, item column), sorted, without duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from segrec.ranking.config import CandidateConfig
from segrec.ranking.state import RankingState
from segrec.recommender import top_k


class SourceScores(Protocol):
    """A retrieval model's scores for the customers of one block."""

    def top(self, n: int) -> np.ndarray:
        """Best ``n`` items per customer, int (block, n); 0 where there are fewer."""
        ...

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of (block position, item) pairs, float32 (m,), finite."""
        ...


@dataclass(frozen=True)
class DenseScores:
    """Scores as a dense (block, n_columns) matrix, as ``Recommender.score`` returns them."""

    scores: np.ndarray

    def top(self, n: int) -> np.ndarray:
        return top_k(self.scores, n)[0]

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = self.scores[block, items].astype(np.float32)
        return np.where(np.isfinite(out), out, np.float32(-1e9))


@dataclass(frozen=True)
class SparseScores:
    """Scores as CSR (block, n_columns); absent entries score 0 and are never "top"."""

    scores: sp.csr_matrix

    def top(self, n: int) -> np.ndarray:
        coo = self.scores.tocoo()
        keep = coo.data > 0
        row, col, val = coo.row[keep], coo.col[keep], coo.data[keep]
        order = np.lexsort((col, -val, row))
        row, col = row[order], col[order]
        rank = np.arange(len(row)) - np.searchsorted(row, np.arange(self.scores.shape[0]))[row]
        out = np.zeros((self.scores.shape[0], n), np.int64)
        keep = rank < n
        out[row[keep], rank[keep]] = col[keep]
        return out

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        m = self.scores
        row_of = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        keys = row_of * m.shape[1] + m.indices
        query = block.astype(np.int64) * m.shape[1] + items
        if keys.size == 0:
            return np.zeros(len(query), np.float32)
        pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        return np.where(keys[pos] == query, m.data[pos], 0.0).astype(np.float32)


@dataclass(frozen=True)
class Block:
    """Customers ranked together: ``rows`` int64 (n,) in the state (0 = cold), segment
    ``labels`` int64 (n, families), and each retrieval source's scores for them."""

    rows: np.ndarray
    labels: np.ndarray
    sources: Mapping[str, SourceScores]

    def __len__(self) -> int:
        return len(self.rows)


def own_weights(state: RankingState, rows: np.ndarray) -> sp.csr_matrix:
    """The block's decayed purchase counts, CSR (block, n_columns)."""
    block, pos = state.pairs.rows_of(rows)
    values = state.pairs.column("decay_long")[pos]
    shape = (len(rows), state.n_columns)
    out = sp.csr_matrix((values, (block, state.pairs.items[pos])), shape=shape)
    out.sort_indices()
    return out


def neighbour_scores(state: RankingState, rows: np.ndarray) -> SparseScores:
    """Affinity of every item to the customer's history: the decay-weighted mean of its
    similarity to the items they bought (0 for cold customers)."""
    weights = own_weights(state, rows)
    total = np.asarray(weights.sum(axis=1)).ravel()
    scale = np.where(total > 0, 1.0 / np.maximum(total, 1e-12), 0.0).astype(np.float32)
    scores = (sp.diags(scale) @ weights @ state.neighbours).tocsr()
    scores.sort_indices()
    return SparseScores(scores)


def candidate_pairs(
    state: RankingState, block: Block, neighbours: SparseScores, cfg: CandidateConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(block position, item) of every candidate, int64, sorted by position then item."""
    n = len(block)
    at, pos = state.pairs.rows_of(block.rows)
    own = state.pairs.column("rank")[pos] <= cfg.own
    parts_b, parts_c = [at[own]], [state.pairs.items[pos][own]]

    def add(top: np.ndarray) -> None:
        parts_b.append(np.repeat(np.arange(n, dtype=np.int64), top.shape[1]))
        parts_c.append(top.ravel().astype(np.int64))

    if cfg.neighbours:
        add(neighbours.top(cfg.neighbours))
    for name, size in cfg.sources.items():
        if size:
            add(block.sources[name].top(size))
    if cfg.segment:
        for j, seg in enumerate(state.segments):
            add(seg.top[block.labels[:, j], : cfg.segment])
    if cfg.popular:
        add(
            np.broadcast_to(state.popular[: cfg.popular], (n, min(cfg.popular, len(state.popular))))
        )
    keys = np.unique(np.concatenate(parts_b) * state.n_columns + np.concatenate(parts_c))
    b, c = np.divmod(keys, state.n_columns)
    keep = c > 0
    return b[keep], c[keep]
