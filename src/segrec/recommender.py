"""The one scoring contract that baselines, the two-tower model and the ranker all honour.

A recommender learns from a ``History`` (everything known as of a cutoff) and scores
customers against the *whole* catalog: ``score(customer_ids)`` returns a dense
``(n, len(item_map) + 1)`` float32 matrix whose column ``j`` is item index ``j`` of
``history.item_map``. Evaluation, benchmarks and batch scoring only ever call ``fit`` and
``score``, so every model is measured the same way (full ranking, never sampled negatives)
and a new model joins them by implementing two methods.

Conventions of a score matrix:

- column 0 (the unknown item) is always ``-inf``;
- ``-inf`` means "never recommend" (excluded); any finite value is rankable, so a model
  that has nothing to say about an item gives it a low *finite* score, not ``-inf``;
- ties are broken towards the smaller item index (``top_k`` makes this exact), so rankings
  are deterministic and chunked results equal unchunked ones;
- every customer id gets a row, including customers the history never saw (cold): a model
  that cannot score them natively delegates to a fallback and says so in ``cold_start``.

Scoring is chunked by the caller (``recommend``, the evaluation), never per customer, so
memory stays bounded on large catalogs: see ``chunk_size_for``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl
import scipy.sparse as sp

from segrec.data import IdMap, RetailData

try:  # Python 3.11+
    from typing import Self
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

NEVER = np.float32(-np.inf)


@dataclass(frozen=True)
class History:
    """Everything a recommender may learn from, as of ``as_of``.

    ``interactions`` are canonical rows (customer_id, item_id, timestamp, quantity, ...)
    with ``timestamp < as_of``. ``item_map`` is the catalog: full ranking is over all of it,
    including items nobody bought yet. ``segments`` holds ``customer_id`` plus one Utf8 label
    column per segment family (``"unknown"`` where missing), as of ``as_of``; it should
    cover every customer that may be scored, cold ones included (their attribute segments
    are known before their first purchase).
    """

    interactions: pl.DataFrame
    as_of: datetime
    customers: pl.DataFrame
    items: pl.DataFrame
    item_map: IdMap
    segments: pl.DataFrame | None = None

    @classmethod
    def from_data(
        cls,
        data: RetailData,
        interactions: pl.DataFrame,
        as_of: datetime,
        segments: pl.DataFrame | None = None,
        item_map: IdMap | None = None,
    ) -> History:
        """History from the loaded data; the catalog defaults to every item in ``data.items``."""
        late = interactions.filter(pl.col("timestamp") >= as_of).height
        if late:
            raise ValueError(f"History: {late} interactions are at or after as_of={as_of}")
        return cls(
            interactions=interactions,
            as_of=as_of,
            customers=data.customers,
            items=data.items,
            item_map=item_map or IdMap.from_values(data.items["item_id"]),
            segments=segments,
        )

    @property
    def n_columns(self) -> int:
        """Width of every score matrix: the catalog plus the unknown column 0."""
        return len(self.item_map) + 1

    @cached_property
    def customer_map(self) -> IdMap:
        """Customers with at least one interaction in the history (the warm ones)."""
        return IdMap.from_values(self.interactions["customer_id"])

    def customer_rows(self, customer_ids: pl.Series) -> np.ndarray:
        """Row of each customer in ``matrix()`` (int64, (n,)); 0 = not in the history."""
        return self.customer_map.encode(customer_ids)

    def matrix(self, half_life_days: float | None = None) -> sp.csr_matrix:
        """Customer × item purchase counts, CSR float32 ``(len(customer_map)+1, n_columns)``.

        Each interaction row counts 1 (a purchase line, whatever the quantity, so one bulk
        buy does not outweigh a habit), multiplied by ``0.5 ** (age_days / half_life_days)``
        when a half-life is given. Row 0 and column 0 (unknown) stay empty.
        """
        # Cached per half-life: baselines and the evaluation share one build. The dataclass
        # is frozen, so the cache lives in the instance dict directly.
        cache: dict[float | None, sp.csr_matrix] = self.__dict__.setdefault("_matrices", {})
        if half_life_days not in cache:
            cache[half_life_days] = self._build_matrix(half_life_days)
        return cache[half_life_days]

    def _build_matrix(self, half_life_days: float | None) -> sp.csr_matrix:
        rows = self.customer_map.encode(self.interactions["customer_id"])
        cols = self.item_map.encode(self.interactions["item_id"])
        if half_life_days is None:
            values = np.ones(len(rows), dtype=np.float32)
        else:
            age = (pl.lit(self.as_of) - pl.col("timestamp")).dt.total_seconds().alias("age")
            age_days = self.interactions.select(age)["age"].to_numpy() / 86_400.0
            values = np.power(0.5, age_days / half_life_days).astype(np.float32)
        inside = cols > 0  # interactions on items outside the catalog carry no signal
        shape = (len(self.customer_map) + 1, self.n_columns)
        out = sp.csr_matrix(
            (values[inside], (rows[inside], cols[inside])), shape=shape, dtype=np.float32
        )
        out.sum_duplicates()
        return out

    def binary(self) -> sp.csr_matrix:
        """Which items each customer bought, 1.0 per pair: ``matrix()``'s pattern, a new
        copy each call (callers may modify it; ``matrix()`` is shared)."""
        out = self.matrix().copy()
        out.data[:] = 1.0
        return out

    def purchased(self, customer_ids: pl.Series) -> sp.csr_matrix:
        """Which catalog items each customer bought in the history (CSR, (n, n_columns))."""
        return self.matrix()[self.customer_rows(customer_ids)]


@runtime_checkable
class Recommender(Protocol):
    """What every model implements (baselines, two-tower, ranker).

    ``name`` identifies the model in reports. ``cold_start`` says in words how customers
    absent from the history are scored (``"native"`` or e.g. ``"segment popularity
    (age_band × region)"``); reports print it. ``fit`` returns ``self`` so that
    ``model = Model(...).fit(history)`` reads naturally. ``score`` must accept any ids,
    in any number, and return ``(len(customer_ids), history.n_columns)`` float32 following
    the conventions of this module. Saving, where sensible, is the model's own business
    (``save(path)`` / ``load(path)`` classmethod); the contract does not require it.
    """

    name: str
    cold_start: str

    def fit(self, history: History) -> Self: ...

    def score(self, customer_ids: pl.Series) -> np.ndarray: ...


@dataclass(frozen=True)
class TopK:
    """The K best items of n customers: ``items`` int32 (n, k) item indices (0 = none,
    where fewer than k items were rankable) and ``scores`` float32 (n, k), best first."""

    customer_ids: pl.Series
    items: np.ndarray
    scores: np.ndarray

    def to_frame(self, item_map: IdMap) -> pl.DataFrame:
        """Long table: customer_id, rank (1-based), item_id, score; empty slots dropped."""
        n, k = self.items.shape
        keep = self.items.ravel() > 0
        return pl.DataFrame(
            {
                "customer_id": np.repeat(self.customer_ids.to_numpy(), k)[keep],
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n)[keep],
                "item_id": item_map.decode(self.items.ravel()[keep]),
                "score": self.scores.ravel()[keep],
            },
            schema={
                "customer_id": pl.Utf8,
                "rank": pl.Int32,
                "item_id": pl.Utf8,
                "score": pl.Float32,
            },
        )


def exclude(scores: np.ndarray, purchased: sp.csr_matrix) -> np.ndarray:
    """Set ``scores[i, j] = -inf`` wherever ``purchased[i, j]`` is stored; in place, returned."""
    rows = np.repeat(np.arange(purchased.shape[0]), np.diff(purchased.indptr))
    scores[rows, purchased.indices] = NEVER
    return scores


def top_k_and_new(
    scores: np.ndarray, purchased: sp.csr_matrix, k: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``top_k`` of ``scores`` and of ``exclude(scores, purchased)`` (the items new to each
    customer), from one pass over the matrix; ``scores`` is left excluded.

    Why: an item of the plain top k is either new, and then in the new items' top k, or
    bought, and then among the row's few bought items; so the plain top k is the top k
    of those two short lists, and a second pass over the whole catalog is saved (Ta-Feng:
    a quarter of a validation pass). Ties and ``-inf`` come out exactly as ``top_k``'s.
    """
    rows = np.repeat(np.arange(purchased.shape[0]), np.diff(purchased.indptr))
    bought = scores[rows, purchased.indices]
    new_idx, new_val = top_k(exclude(scores, purchased), k)
    width = new_idx.shape[1]
    # Each row's bought items, best first, smaller index first among equals (lexsort: the
    # last key sorts first), the first ``width`` kept in a padded (n, width) table.
    order = np.lexsort((purchased.indices, -bought, rows))
    place = np.arange(order.size) - purchased.indptr[rows[order]]
    first = place < width
    kept, slot = order[first], place[first]
    bought_idx = np.zeros_like(new_idx)
    bought_val = np.full_like(new_val, NEVER)
    bought_idx[rows[kept], slot] = purchased.indices[kept]
    bought_val[rows[kept], slot] = bought[kept]
    both_idx = np.concatenate([new_idx, bought_idx], axis=1)
    both_val = np.concatenate([new_val, bought_val], axis=1)
    best = np.lexsort((both_idx, -both_val), axis=1)[:, :width]
    idx = np.take_along_axis(both_idx, best, axis=1)
    val = np.take_along_axis(both_val, best, axis=1)
    idx[np.isneginf(val)] = 0
    return (idx, val), (new_idx, new_val)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` highest scores of each row, best first.

    Ties are broken towards the smaller index, exactly, so the result does not depend on
    chunking or on numpy's partition order. Slots that are ``-inf`` get index 0. Returns
    (int32 (n, k), float32 (n, k)).

    A full-row ``argpartition`` costs ~25 ns per score, more than the model's own matrix
    product; so on wide rows a cheap lower bound (the k-th largest of block maxima) first
    keeps the few candidates that can make the top k, and only those are partitioned.
    Blocks of rows go to threads (``compute_threads``): numpy releases the GIL in the
    reductions, partitions and gathers, so each core takes its share (a Ta-Feng
    validation chunk, 1,409 x 23,813 scores on 2 cores: 69 -> 32 ms).
    """
    n = scores.shape[0]
    workers = min(compute_threads(), n // ROWS_PER_THREAD)
    if workers < 2:
        return _top_k_rows(scores, k)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda block: _top_k_rows(block, k), np.array_split(scores, workers)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


ROWS_PER_THREAD = 256  # fewer rows than this per thread are not worth a thread


def compute_threads() -> int:
    """Threads for numpy work split by rows: ``OMP_NUM_THREADS`` where set (the limit a
    user puts on numeric libraries, honoured here too), else the cores this process may
    run on."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` of one block of rows, in the calling thread."""
    n, m = scores.shape
    k = min(k, m)
    if n == 0 or k == 0:
        return np.zeros((n, k), np.int32), np.zeros((n, k), np.float32)
    narrowed = _candidates(scores, k) if m > 64 * k else None
    if narrowed is None:
        pos, vals = _exact_top_k(scores, k)
        idx = pos
    else:
        columns, values = narrowed
        pos, vals = _exact_top_k(values, k)
        idx = np.take_along_axis(columns, pos, axis=1)
    idx = idx.astype(np.int32)
    idx[np.isneginf(vals)] = 0
    return idx, vals.astype(np.float32, copy=False)


def _candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row, the scores of every block whose maximum is at least the k-th largest
    block maximum (a lower bound of the k-th largest score, so these blocks hold the top
    k), as (columns (n, c), values (n, c)) padded with -inf; columns stay in increasing
    order, so position order is index order. None when too many blocks survive.

    Only the (n, blocks) maxima are compared and searched; the surviving blocks are
    gathered whole. Masking the full score matrix and listing its survivors
    (``np.nonzero``) cost more than the maxima themselves: a third of a validation pass.
    """
    n, m = scores.shape
    block = max(1, m // (32 * k))
    starts = np.arange(0, m, block)
    maxima = np.maximum.reduceat(scores, starts, axis=1)
    bound = -np.partition(-maxima, k - 1, axis=1)[:, k - 1]
    hit = maxima >= bound[:, None]
    counts = hit.sum(axis=1)
    width = int(counts.max())
    if width * block > m // 8:
        return None
    rows, blocks = np.nonzero(hit)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    first = np.full((n, width), -1, np.int64)
    first[rows, slot] = starts[blocks]
    columns = (first[:, :, None] + np.arange(block)).reshape(n, width * block)
    valid = (np.repeat(first, block, axis=1) >= 0) & (columns < m)
    columns = np.where(valid, columns, 0)
    values = np.take_along_axis(scores, columns, axis=1)
    values[~valid] = -np.inf
    return columns, values


def _exact_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the k best of each row, ties to the smaller position.

    ``argpartition`` picks k, then ties at the k-th value are re-resolved only on the rows
    where a tie straddles the boundary.
    """
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    kth = vals.min(axis=1)
    n_above = (scores > kth[:, None]).sum(axis=1)
    n_tied = (scores == kth[:, None]).sum(axis=1)
    straddle = np.flatnonzero((n_above + n_tied > k) & np.isfinite(kth))
    if straddle.size:
        sub = scores[straddle]
        tied = sub == kth[straddle, None]
        room = (k - n_above[straddle])[:, None]
        chosen = (sub > kth[straddle, None]) | (tied & (np.cumsum(tied, axis=1) <= room))
        part[straddle] = np.nonzero(chosen)[1].reshape(len(straddle), k)
        vals[straddle] = np.take_along_axis(sub, part[straddle], axis=1)
    # Best first; among equal values the smaller position first (lexsort: last key first).
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def chunk_size_for(n_columns: int, memory_mb: float = 256.0) -> int:
    """Customers per chunk so that one float32 score chunk stays within ``memory_mb``."""
    return max(1, int(memory_mb * 2**20 // (4 * n_columns)))


def iter_chunks(customer_ids: pl.Series, chunk_size: int) -> Iterator[pl.Series]:
    """Consecutive slices of ``customer_ids`` of at most ``chunk_size`` ids."""
    for start in range(0, customer_ids.len(), chunk_size):
        yield customer_ids.slice(start, chunk_size)


def recommend(
    model: Recommender,
    history: History,
    customer_ids: pl.Series,
    k: int,
    exclude_purchased: bool = False,
    chunk_size: int | None = None,
) -> TopK:
    """Top-``k`` items of every customer, scored chunk by chunk (memory bounded).

    With ``exclude_purchased`` the items each customer bought in ``history`` are never
    recommended (the "new to the customer" ranking).
    """
    customer_ids = customer_ids.cast(pl.Utf8)
    chunk_size = chunk_size or chunk_size_for(history.n_columns)
    items, scores = [], []
    for chunk in iter_chunks(customer_ids, chunk_size):
        block = model.score(chunk)
        check_scores(block, chunk.len(), history.n_columns, model.name)
        if exclude_purchased:
            exclude(block, history.purchased(chunk))
        idx, val = top_k(block, k)
        items.append(idx)
        scores.append(val)
    width = min(k, history.n_columns)
    return TopK(
        customer_ids=customer_ids,
        items=np.concatenate(items) if items else np.zeros((0, width), np.int32),
        scores=np.concatenate(scores) if scores else np.zeros((0, width), np.float32),
    )


def check_scores(block: np.ndarray, n_rows: int, n_columns: int, name: str) -> None:
    """Refuse a score chunk that breaks the contract, naming the model and the problem."""
    if block.shape != (n_rows, n_columns):
        raise ValueError(f"{name}.score: shape {block.shape}, expected ({n_rows}, {n_columns})")
    if block.dtype != np.float32:
        raise ValueError(f"{name}.score: dtype {block.dtype}, expected float32")
    # One pass, no temporary: max() is NaN if any score is NaN, +inf if any is +inf.
    if block.size and not block.max() < np.inf:
        raise ValueError(f"{name}.score: NaN or +inf in the scores")
