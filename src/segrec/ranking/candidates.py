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
from functools import cached_property
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numba import njit

from segrec.ranking.config import CandidateConfig
from segrec.ranking.state import RankingState
from segrec.ranking.stats import position
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
        out = np.empty(len(items), np.float32)
        _dense_at(self.scores, block, items, out)
        return out


@njit(cache=True, nogil=True)
def _dense_at(scores: np.ndarray, block: np.ndarray, items: np.ndarray, out: np.ndarray) -> None:
    """``DenseScores.at``: the float32 scores, -1e9 where not finite (-inf: excluded
    items), in one compiled loop instead of a 2-d gather, a cast and a mask."""
    for j in range(items.shape[0]):
        v = np.float32(scores[block[j], items[j]])
        out[j] = v if np.isfinite(v) else np.float32(-1e9)


@dataclass(frozen=True)
class RetrievedScores:
    """A source's answer as the service has it: ``top_items`` int (block, N), best first
    and 0-padded, from a nearest-neighbour search (FAISS), and ``scores``, any item's
    score (dot products with the item vectors), for ``at``. Ranking asks for at most the
    N that were retrieved."""

    top_items: np.ndarray
    scores: SourceScores

    def top(self, n: int) -> np.ndarray:
        if n > self.top_items.shape[1]:
            raise ValueError(
                f"RetrievedScores: top {n} asked, {self.top_items.shape[1]} retrieved; "
                "retrieve at least ranking.candidates.sources' N"
            )
        return self.top_items[:, :n]

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.scores.at(block, items)


@dataclass(frozen=True)
class PairScores:
    """Scores of (block position, item) pairs as sorted arrays: ``keys`` int64 (m,),
    ascending and unique, are ``position * n_columns + item``; ``values`` float (m,).
    Absent pairs score 0; only positive scores are ever "top". Built with numpy alone, so
    that one customer's scores cost no sparse-matrix construction. (``values`` keep
    the dtype they come in, float32 from ``neighbour_scores``: ``top`` orders by them.)"""

    n_rows: int
    n_columns: int
    keys: np.ndarray
    values: np.ndarray

    def top(self, n: int) -> np.ndarray:
        """Best ``n`` items per row, int64 (rows, n), ties to the smaller item; 0 where
        there are fewer."""
        out = np.zeros((self.n_rows, n), np.int64)
        bits = self.values.astype(np.float32, copy=False).view(np.uint32)
        _top_per_row(self.keys, self.values, bits, self.n_columns, out)
        return out

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of (block position, item) pairs, float32 (m,), 0 where absent."""
        out = np.empty(len(items), np.float32)
        _values_at(self.keys, self.values, block, items, self.n_columns, out)
        return out


@njit(cache=True, nogil=True)
def _top_per_row(
    keys: np.ndarray, values: np.ndarray, bits: np.ndarray, n_columns: int, out: np.ndarray
) -> None:
    """``PairScores.top`` in one compiled pass over the rows (keys sorted by row, then
    item; rows found by ``row_end``), each row's best by ``_best_positions``. numpy took
    about 14 calls per source for one customer."""
    n, s, m = out.shape[1], 0, keys.shape[0]
    counts = np.zeros(_BUCKETS, np.int64)
    while s < m:
        row = keys[s] // n_columns
        e = row_end(keys, s, row, n_columns)
        best = _best_positions(values, bits, s, e, n, counts)
        for j in range(best.shape[0]):
            out[row, j] = keys[best[j]] - row * n_columns
        s = e


# Buckets of a positive float32 by its bit pattern's top bits (exponent and 3 bits of
# mantissa), which order like the values: an eighth of an octave each.
_BUCKETS, _BUCKET_SHIFT = 2048, 20


@njit(cache=True, nogil=True)
def _best_positions(
    values: np.ndarray, bits: np.ndarray, start: int, end: int, n: int, counts: np.ndarray
) -> np.ndarray:
    """Positions of the ``n`` largest positive ``values[start:end]``, best first, ties
    to the earlier; ``bits``: the values as float32 bit patterns; ``counts``: zeros of
    ``_BUCKETS``, left zero.

    Hand-written selection: a histogram of the values' buckets finds the bucket of the
    n-th largest, and only the values from that bucket up (n and a bucket's worth) are
    sorted. numba's ``np.partition`` and a sort of every positive value cost a warm
    customer's 1,500 ease scores 30 µs, the histogram's two passes a fraction of that."""
    if n <= 0:
        return np.empty(0, np.int64)
    for j in range(start, end):
        if values[j] > 0:
            counts[bits[j] >> _BUCKET_SHIFT] += 1
    cut, above = 0, 0  # the n-th largest's bucket; how many values are in it or above
    for bucket in range(_BUCKETS - 1, -1, -1):
        if above < n:
            above += counts[bucket]
            cut = bucket
        counts[bucket] = 0
    pos = np.empty(above, np.int64)
    k = 0
    for j in range(start, end):
        if values[j] > 0 and bits[j] >> _BUCKET_SHIFT >= cut:
            pos[k] = j
            k += 1
    order = np.argsort(-values[pos], kind="mergesort")  # k == above: pos is full
    return pos[order[:n]]


@njit(cache=True, nogil=True)
def row_end(keys: np.ndarray, start: int, row: int, n_columns: int) -> int:
    """The end of ``row``'s run of sorted ``keys`` (``position * n_columns + item``)
    that begins at ``start``: found by comparing with the next row's first key, as a
    64-bit division per key (``key // n_columns == row``) cost up to 40 cycles each,
    20 µs on a warm customer's 1,500 ease scores."""
    limit, e = (row + 1) * n_columns, start
    while e < keys.shape[0] and keys[e] < limit:
        e += 1
    return e


@njit(cache=True, nogil=True)
def _values_at(
    keys: np.ndarray,
    values: np.ndarray,
    block: np.ndarray,
    items: np.ndarray,
    n_columns: int,
    out: np.ndarray,
) -> None:
    """``PairScores.at`` in one compiled loop (numpy took eight calls)."""
    for j in range(items.shape[0]):
        p = position(keys, block[j] * n_columns + items[j])
        out[j] = values[p] if p >= 0 else 0.0


@dataclass(frozen=True)
class SparseScores:
    """Scores as CSR (block, n_columns); absent entries score 0 and are never "top"."""

    scores: sp.csr_matrix

    @cached_property
    def pairs(self) -> PairScores:
        m = self.scores.tocsr(copy=True)
        m.sum_duplicates()  # sorted, unique indices per row
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        keys = rows * m.shape[1] + m.indices
        return PairScores(m.shape[0], m.shape[1], keys, m.data)

    def top(self, n: int) -> np.ndarray:
        return self.pairs.top(n)

    def at(self, block: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.pairs.at(block, items)


@dataclass(frozen=True)
class Block:
    """Customers ranked together: ``rows`` int64 (n,) in the state (0 = cold), segment
    ``labels`` int64 (n, families), and each retrieval source's scores for them."""

    rows: np.ndarray
    labels: np.ndarray
    sources: Mapping[str, SourceScores]

    def __len__(self) -> int:
        return len(self.rows)


def pair_weights(state: RankingState) -> np.ndarray:
    """float32 (pairs,): each pair's decayed purchase count over its customer's total
    (their own items' weights sum to 1), for every pair once per state
    (``RankingState.derived``): a request gathers its customer's instead of normalising
    them, a dozen numpy calls.

    float32 throughout, each row summed by ``np.add.reduceat`` as scipy's CSR row sum
    does: the same numbers as the sparse product (``diag(1 / row sums) @ W``) this
    replaced, so rankings did not move."""
    pairs = state.pairs
    decayed = pairs.column("decay_long")
    bought = np.diff(pairs.indptr) > 0
    total = np.zeros(len(bought), np.float32)
    total[bought] = np.add.reduceat(decayed, pairs.indptr[:-1][bought])
    scale = np.where(total > 0, 1.0 / np.maximum(total, 1e-12), 0.0).astype(np.float32)
    return scale[pairs.rows] * decayed


def own_weights(state: RankingState, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block's own items and their ``pair_weights``: (index into ``rows``, position
    in the pair table, float32 weight), row after row, items ascending."""
    at, pos = state.pairs.rows_of(rows)
    return at, pos, state.derived(pair_weights)[pos]


def neighbour_scores(state: RankingState, rows: np.ndarray) -> PairScores:
    """Affinity of every item to the customer's history: the decay-weighted mean of its
    similarity to the items they bought (0 for cold customers).

    A dense accumulation over the neighbour rows of the customer's own items (tens of
    rows of ``k`` entries each) rather than a sparse matrix product per call. Each sum
    adds its terms in float32 in descending own-item order, as scipy's CSR product did
    (its intermediate rows come out reversed), so the scores are bit for bit the same.
    """
    at, pos, weight = (a[::-1] for a in own_weights(state, rows))
    keys, sums = item_sums(state.neighbours, at, state.pairs.items[pos], len(rows), weight)
    return PairScores(len(rows), state.n_columns, keys, sums)


def item_sums(
    matrix: sp.csr_matrix,
    at: np.ndarray,
    items: np.ndarray,
    n_rows: int,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the sum of the item-item ``matrix``'s rows of their own ``items``
    (``at``: each item's customer in the block), each row times its float32 ``weight``
    (1 when None): (keys ``position * n_columns + item`` ascending, float32 sums), zero
    sums dropped, as a sparse product drops them. Each sum adds its terms in float32 in
    the order the items come in, so the caller fixes the rounding."""
    if weight is None:
        weight = np.ones(len(items), np.float32)
    size = n_rows * matrix.shape[1]
    # Contiguous: a reversed view (a warm customer's) and an empty array (a cold one's)
    # have different layouts, and each layout would be compiled apart.
    at, weight = np.ascontiguousarray(at), np.ascontiguousarray(weight)
    return _item_sums(
        matrix.indptr, matrix.indices, matrix.data, at, items, weight, matrix.shape[1],
        size, min(DENSE_CELLS, size),
    )  # fmt: skip


DENSE_CELLS = 1 << 22  # scratch cells of one pass of ``_item_sums`` (16 MiB of float32)


@njit(cache=True, nogil=True)
def _item_sums(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    at: np.ndarray,
    items: np.ndarray,
    weight: np.ndarray,
    n_columns: int,
    size: int,
    cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``item_sums``' loop: the terms added into a dense scratch row, each touched cell
    marked in a bitmap, then the touched cells read out in key order, zero sums dropped.
    Dense rather than sorting the keys: one customer's key space is one catalog row, and
    a block's is cut into passes of ``cells`` so that memory stays bounded. The bitmap
    spares reading every cell (1 ns each: 24 µs for Ta-Feng's 24k items, the cost of
    numpy's ``nonzero`` too): its words are read, and their set bits found by a de Bruijn
    multiplication."""
    total = 0
    for k in range(len(items)):
        total += indptr[items[k] + 1] - indptr[items[k]]
    keys = np.empty(total, np.int64)
    sums = np.empty(total, np.float32)
    cells = max(cells, 1)
    dense = np.zeros(cells, np.float32)
    touched = np.zeros((cells + 63) >> 6, np.uint64)
    one = np.uint64(1)
    m = 0
    for lo in range(0, size, cells):
        hi = min(lo + cells, size)
        for k in range(len(items)):
            first = at[k] * n_columns
            if first >= hi or first + n_columns <= lo:
                continue
            w = weight[k]
            for e in range(indptr[items[k]], indptr[items[k] + 1]):
                key = first + indices[e]
                if lo <= key < hi:
                    cell = key - lo
                    dense[cell] += w * data[e]
                    _mark(touched, cell)
        for word in range(touched.shape[0]):
            bits = touched[word]
            while bits:
                low = bits & (~bits + one)  # the lowest set bit
                cell = word * 64 + _bit_index(low)
                if dense[cell] != 0:
                    keys[m], sums[m] = lo + cell, dense[cell]
                    m += 1
                dense[cell] = 0.0
                bits ^= low
            touched[word] = 0
    return keys[:m], sums[:m]


# Bit index of a power of two 2**i: (2**i * _DE_BRUIJN mod 2**64) >> 58 is distinct per i.
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_OF = np.zeros(64, np.int64)
for _i in range(64):
    _BIT_OF[((1 << _i) * 0x03F79D71B4CB0A89 % (1 << 64)) >> 58] = _i


def candidate_pairs(
    state: RankingState, block: Block, neighbours: PairScores, cfg: CandidateConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(block position, item) of every candidate, int64, sorted by position then item."""
    n = len(block)
    tops = [np.zeros((n, 0), np.int64)]  # (block, N) top lists, 0-padded
    if cfg.neighbours:
        tops.append(neighbours.top(cfg.neighbours))
    for name, size in cfg.sources.items():
        if size:
            tops.append(block.sources[name].top(size))
    if cfg.segment:
        for j, seg in enumerate(state.segments):
            tops.append(seg.top[block.labels[:, j], : cfg.segment])
    listed = np.concatenate(tops, axis=1).astype(np.int64, copy=False)
    pairs = state.pairs
    return _union(
        pairs.indptr, pairs.items, pairs.column("rank"), block.rows, cfg.own, listed,
        state.popular[: cfg.popular], state.n_columns,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _union(
    indptr: np.ndarray,
    pair_items: np.ndarray,
    pair_rank: np.ndarray,
    rows: np.ndarray,
    own: int,
    listed: np.ndarray,
    popular: np.ndarray,
    n_columns: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The union of each customer's own items ranked ``own`` or better (the pair table's
    CSR ``indptr``, ``pair_items``, ``pair_rank`` at the block's ``rows``), of each
    row's ``listed`` items (0: padding) and of the ``popular`` ones, as (position, item)
    sorted and unique: marked in a bitmap over the block's (position, item) cells and
    read back in order. A sort of the few hundred keys and numpy's mask, divmod and
    filter took 0.07 ms a customer, the own items' slices and masks a dozen numpy calls
    more; the bitmap is the block's dense score matrix's size over 32, which ``score``
    allocates anyway."""
    cells = listed.shape[0] * n_columns
    marked = np.zeros((cells + 63) >> 6, np.uint64)
    one = np.uint64(1)
    for r in range(listed.shape[0]):
        first = r * n_columns
        for p in range(indptr[rows[r]], indptr[rows[r] + 1]):
            if pair_rank[p] <= own and pair_items[p] > 0:
                _mark(marked, first + pair_items[p])
        for j in range(listed.shape[1]):
            if listed[r, j] > 0:
                _mark(marked, first + listed[r, j])
        for j in range(popular.shape[0]):
            if popular[j] > 0:
                _mark(marked, first + popular[j])
    size = listed.shape[0] * (listed.shape[1] + popular.shape[0])  # at most: each marked once
    for r in range(listed.shape[0]):
        size += indptr[rows[r] + 1] - indptr[rows[r]]
    b = np.empty(size, np.int64)
    items = np.empty(size, np.int64)
    m, row = 0, 0
    for word in range(marked.shape[0]):
        bits = marked[word]
        while bits:
            low = bits & (~bits + one)
            cell = word * 64 + _bit_index(low)
            while cell >= (row + 1) * n_columns:  # cells come in order: no division
                row += 1
            b[m], items[m] = row, cell - row * n_columns
            m += 1
            bits ^= low
    return b[:m], items[:m]


@njit(cache=True, nogil=True, inline="always")
def _mark(bitmap: np.ndarray, cell: int) -> None:
    """Set bit ``cell`` of a uint64 ``bitmap`` (word ``cell >> 6``, bit ``cell & 63``)."""
    bitmap[cell >> 6] |= np.uint64(1) << np.uint64(cell & 63)


@njit(cache=True, nogil=True)
def _bit_index(power: np.uint64) -> int:
    """The index of the one set bit of ``power``, by a de Bruijn multiplication."""
    return _BIT_OF[(power * _DE_BRUIJN) >> np.uint64(58)]
