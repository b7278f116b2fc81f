"""Training examples as tensors, and the batches the training loop draws from them.

Every deduplicated purchase line of the training history is a training target, weighted
by ``model.repeat_weight`` where the customer had bought the item before; its
features are what was known before its basket (``PurchaseSequences``) and the customer's
segment labels at the last snapshot before it. All lines of one basket share those
features, so an example is a *basket*: the customer tower runs once per basket and the
loss sums over the basket's lines, the same objective as one example per line at a
fraction of the cost (Ta-Feng: 7 lines per basket). Nothing is materialised per example
beyond a few integers; a batch is gathered with tensor indexing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from segrec.training.features import FeatureSpace
from segrec.training.sequences import (
    EPOCH,
    HistoryReader,
    PurchaseSequences,
    numeric_features,
)

SegmentsAt = Callable[[datetime], "pl.DataFrame | None"]
Batch = dict[str, Tensor]


@dataclass
class Examples:
    """One row per basket (n,): its lines ``[first, stop)`` of ``items`` (the targets,
    weighted by ``weights``, one per line of ``items``), history range ``[start, first)``,
    ``n_baskets`` and ``gap_days`` before it,
    ``customers`` (id embedding index), ``rows`` (customer row of ``segment_table``) and
    ``snapshot``. ``segment_table`` is (S, C, F): labels of the C training customers at S
    snapshots."""

    items: Tensor
    weights: Tensor
    first: Tensor
    stop: Tensor
    start: Tensor
    n_baskets: Tensor
    gap_days: Tensor
    customers: Tensor
    rows: Tensor
    snapshot: Tensor
    segment_table: Tensor
    history: HistoryReader

    def __len__(self) -> int:
        return int(self.first.shape[0])

    @property
    def n_lines(self) -> int:
        return int((self.stop - self.first).sum())

    def batch(self, index: Tensor) -> Batch:
        """Inputs of baskets ``index`` (B,): customer (B,), segments (B, F), history (B, L),
        numeric (B, 4); and their T lines: target (T,) items, target_row (T,) basket row,
        weight (T,)."""
        start, first = self.start[index], self.first[index]
        lines, row = self.basket_lines(index)
        return {
            "customer": self.customers[index],
            "segments": self.segment_table[self.snapshot[index], self.rows[index]],
            "history": self.history(start, first),
            "numeric": numeric_features(first - start, self.n_baskets[index], self.gap_days[index]),
            "target": self.items[lines],
            "target_row": row,
            "weight": self.weights[lines],
        }

    def basket_lines(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The lines of baskets ``index`` (B,): their rows of ``items`` (T,), basket by
        basket, and the position in ``index`` of each one's basket (T,)."""
        first = self.first[index]
        sizes = self.stop[index] - first
        row = torch.repeat_interleave(torch.arange(len(index)), sizes)
        offsets = torch.cumsum(sizes, 0) - sizes
        return first[row] + torch.arange(int(sizes.sum())) - offsets[row], row

    def target_counts(self, n_items: int) -> Tensor:
        """How often each item index is a target (n_items,), for logQ correction."""
        return torch.bincount(self.items, minlength=n_items)


def snapshot_dates(first: datetime, as_of: datetime, every_days: int | None) -> list[datetime]:
    """Days on which segments are re-assigned: the day after the first purchase, then every
    ``every_days`` before ``as_of``. Empty when ``every_days`` is None or no such day falls
    before ``as_of``: the examples then read the labels as of the cutoff (a snapshot dated
    at the cutoff would postdate every basket, so every label would read as unknown)."""
    if every_days is None:
        return []
    day = datetime.combine(first.date(), datetime.min.time()) + timedelta(days=1)
    out = []
    while day < as_of:
        out.append(day)
        day += timedelta(days=every_days)
    return out


def build_examples(
    sequences: PurchaseSequences,
    features: FeatureSpace,
    segments: pl.DataFrame | None,
    snapshots: list[tuple[datetime, pl.DataFrame | None]] | None = None,
    repeat_weight: float = 1.0,
) -> Examples:
    """One example per basket of ``sequences`` (the training history).

    With ``snapshots`` (date, labels as of that date), each example reads the labels of
    the latest snapshot at or before its basket (labels at day D use purchases before D
    only, so never its own basket); examples before the first snapshot see every family as
    unknown. Without them, every example reads ``segments`` (labels as of the cutoff:
    simpler, but behavioural labels then describe the customer's future within training).

    A line whose item the customer bought in an earlier basket weighs ``repeat_weight``
    (others 1); baskets whose lines all weigh 0 are no examples.
    """
    weights = np.where(sequences.repeats(), np.float32(repeat_weight), np.float32(1.0))
    first = np.flatnonzero(sequences.basket_start == np.arange(len(sequences)))
    stop = np.append(first[1:], len(sequences))
    if repeat_weight == 0:
        useful = np.add.reduceat(weights, first) > 0 if len(first) else np.zeros(0, bool)
        first, stop = first[useful], stop[useful]
    start, _, gap = sequences.before_basket(first)
    customer_ids = sequences.customers.ids
    rows = sequences.line_customers()[first]
    if not snapshots:
        table = features.encode_segments(segments, customer_ids)[None]
        snapshot = np.zeros(len(first), np.int64)
    else:
        tables = [np.zeros((len(customer_ids), len(features.families)), np.int64)]
        tables += [features.encode_segments(f, customer_ids) for _, f in snapshots]
        table = np.stack(tables)
        date_us = np.array([(d - EPOCH) // timedelta(microseconds=1) for d, _ in snapshots])
        snapshot = np.searchsorted(date_us, sequences.times[first], side="right")  # 0: none
    return Examples(
        items=torch.from_numpy(sequences.items),
        weights=torch.from_numpy(weights.astype(np.float32)),
        first=torch.from_numpy(first),
        stop=torch.from_numpy(stop),
        start=torch.from_numpy(start),
        n_baskets=torch.from_numpy(sequences.basket_ordinal[first]),
        gap_days=torch.from_numpy(gap.astype(np.float32)),
        customers=torch.from_numpy(features.customer_map.encode(customer_ids)[rows]),
        rows=torch.from_numpy(rows),
        snapshot=torch.from_numpy(snapshot.astype(np.int64)),
        segment_table=torch.from_numpy(table),
        history=features.history_reader(sequences),
    )


class ExampleBatches(Dataset):
    """A map-style dataset whose keys are whole batches of example indices."""

    def __init__(self, examples: Examples):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: Tensor) -> Batch:
        return self.examples.batch(index)


class EpochBatches(Sampler[Tensor]):
    """Shuffled batches of example indices, a pure function of (seed, epoch).

    Lightning calls ``set_epoch`` before each epoch, so a run resumed at epoch e draws the
    same batches as an uninterrupted one. Under DDP each rank takes every world-th batch
    (the count is trimmed to a multiple of the world size so ranks stay in step).
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _world(self) -> tuple[int, int]:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[Tensor]:
        # A generator: the order is drawn at the first batch, not when the DataLoader makes
        # its iterator (on resume, Lightning makes it before calling set_epoch).
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen)
        batches = list(torch.split(order, self.batch_size))
        if len(batches) > self._n_batches():  # a last basket alone joins the batch before
            batches[-2:] = [torch.cat(batches[-2:])]
        rank, world = self._world()
        if world > 1:
            batches = batches[: len(batches) // world * world][rank::world]
        yield from batches

    def _n_batches(self) -> int:
        """Batches per epoch before any DDP split: a last basket alone joins the batch
        before it, since the numeric features' BatchNorm cannot train on one row."""
        n_batches = -(-self.n // self.batch_size)
        return n_batches - 1 if n_batches > 1 and self.n % self.batch_size == 1 else n_batches

    def __len__(self) -> int:
        _, world = self._world()
        n_batches = self._n_batches()
        return n_batches // world if world > 1 else n_batches


def customer_inputs(
    features: FeatureSpace,
    sequences: PurchaseSequences,
    customer_ids: pl.Series,
    as_of: datetime,
    segments: pl.DataFrame | None,
) -> Batch:
    """Model inputs of ``customer_ids`` as of ``as_of`` (every line of ``sequences`` is
    before it): the last L lines, counts and the gap to ``as_of``, labels from ``segments``.
    Customers absent from the history or from ``customer_map`` get index 0 where unknown."""
    start, end, gap, baskets = sequences.as_of(customer_ids, as_of)
    start_t, end_t = torch.from_numpy(start), torch.from_numpy(end)
    return {
        "customer": torch.from_numpy(features.customer_map.encode(customer_ids).copy()),
        "segments": torch.from_numpy(features.encode_segments(segments, customer_ids)),
        "history": features.history_reader(sequences)(start_t, end_t),
        "numeric": numeric_features(
            end_t - start_t, torch.from_numpy(baskets), torch.from_numpy(gap.astype(np.float32))
        ),
    }
