"""Every customer's purchase lines in time order, as flat arrays, and the history gathers.

A training example is a basket (its lines are the targets); its features are what was
known *before it*: the last L lines (or distinct items) of earlier baskets, counts, the gap
since the previous basket.
Sorting once by (customer, basket time) turns all of that into index arithmetic on flat
arrays, so building millions of examples costs a few vectorised passes and a batch of
histories is one gather, with no per-example Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np
import polars as pl
import torch
from torch import Tensor

from segrec.data import IdMap

US_PER_DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1)
NUMERIC_FEATURES = ("log_lines", "log_baskets", "log_days_since_last", "has_history")


@dataclass(frozen=True)
class PurchaseSequences:
    """Deduplicated purchase lines grouped by customer, in time order.

    ``customers`` row r (0-based) is customer index r + 1 of the map; its lines are
    ``ptr[r]:ptr[r+1]``. Per line (n,): ``items`` (catalog index), ``times`` (basket time,
    µs since the epoch), ``basket_start`` (first line of its basket) and ``basket_ordinal``
    (0 for the customer's first basket). A repeat of an item within one basket is one line.
    """

    customers: IdMap
    ptr: np.ndarray
    items: np.ndarray
    times: np.ndarray
    basket_start: np.ndarray
    basket_ordinal: np.ndarray

    @classmethod
    def build(cls, interactions: pl.DataFrame, item_map: IdMap) -> PurchaseSequences:
        """From canonical interactions; lines on items outside ``item_map`` are dropped."""
        basket = pl.col("timestamp").cast(pl.Utf8)
        if "basket_id" in interactions.columns:
            basket = pl.coalesce(pl.col("basket_id").cast(pl.Utf8), basket)
        frame = interactions.select(
            pl.col("customer_id").cast(pl.Utf8),
            pl.Series("item", item_map.encode(interactions["item_id"])),
            pl.col("timestamp"),
            basket.alias("basket"),
        ).filter(pl.col("item") > 0)
        customers = IdMap.from_values(frame["customer_id"])
        frame = (
            frame.with_columns(pl.Series("row", customers.encode(frame["customer_id"]) - 1))
            .group_by("row", "basket", "item")
            .agg(pl.col("timestamp").min())
            .with_columns(pl.col("timestamp").min().over("row", "basket").alias("time"))
            .sort("row", "time", "basket", "item")
        )
        rows = frame["row"].to_numpy()
        n = len(rows)
        new_customer = np.ones(n, bool)
        new_customer[1:] = rows[1:] != rows[:-1]
        basket_key = frame["basket"].to_numpy()
        new_basket = new_customer.copy()
        new_basket[1:] |= basket_key[1:] != basket_key[:-1]
        index = np.arange(n, dtype=np.int64)
        basket_start = np.maximum.accumulate(np.where(new_basket, index, 0))
        baskets_so_far = np.cumsum(new_basket) - 1
        customer_first = np.maximum.accumulate(np.where(new_customer, index, 0))
        ptr = np.zeros(len(customers) + 1, np.int64)
        np.add.at(ptr, rows + 1, 1)
        return cls(
            customers=customers,
            ptr=np.cumsum(ptr),
            items=frame["item"].to_numpy().astype(np.int64),
            times=frame["time"].dt.epoch("us").to_numpy().astype(np.int64),
            basket_start=basket_start,
            basket_ordinal=baskets_so_far - baskets_so_far[customer_first],
        )

    def __len__(self) -> int:
        return len(self.items)

    def line_customers(self) -> np.ndarray:
        """Customer row of every line (n,)."""
        return np.repeat(np.arange(len(self.customers), dtype=np.int64), np.diff(self.ptr))

    @cached_property
    def _same_item_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Lines sorted by (customer, item), time order within each pair, and whether each
        sorted line continues the previous one's pair (one sort for ``repeats`` and
        ``next_same``, which training with a distinct history both reads)."""
        key = self.line_customers() * (int(self.items.max(initial=0)) + 1) + self.items
        order = np.argsort(key, kind="stable")  # stable: time order within each key
        return order, key[order[1:]] == key[order[:-1]]

    def repeats(self) -> np.ndarray:
        """Whether each line (n,) buys an item its customer bought in an earlier basket."""
        order, same = self._same_item_order
        repeat = np.zeros(len(self), bool)
        repeat[order[1:]] = same
        return repeat

    @cached_property
    def next_same(self) -> np.ndarray:
        """For each line (n,), the next line where its customer buys the same item again
        (``len(self)`` if never): line j is the customer's latest purchase of its item as
        of any history end ``e`` with ``j < e <= next_same[j]``."""
        order, same = self._same_item_order
        out = np.full(len(self), len(self), np.int64)
        out[order[:-1][same]] = order[1:][same]
        return out

    def before_basket(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For target lines: (first line of customer, end of known history, days since the
        previous basket) — history is lines ``[start, end)``, all of earlier baskets."""
        rows = self.line_customers()[lines]
        start, end = self.ptr[rows], self.basket_start[lines]
        gap = np.where(end > start, self.times[lines] - self.times[np.maximum(end - 1, 0)], 0)
        return start, end, gap / US_PER_DAY

    def rows_of(self, customer_ids: pl.Series) -> np.ndarray:
        """Row of each customer id (int64 (n,)), -1 for customers with no line."""
        return self.customers.encode(customer_ids) - 1

    def as_of(self, customer_ids: pl.Series, as_of: datetime) -> tuple[np.ndarray, ...]:
        """(start, end, days since last basket, baskets) of each customer at ``as_of``
        (every line is before it); customers without lines get an empty range."""
        rows = self.rows_of(customer_ids)
        known = rows >= 0
        if not known.any():  # also a history of no lines, whose ``ptr`` is [0] alone
            zeros = np.zeros(len(rows), np.int64)
            return zeros, zeros, np.zeros(len(rows)), zeros
        safe = np.where(known, rows, 0)
        start = np.where(known, self.ptr[safe], 0)
        end = np.where(known, self.ptr[safe + 1], 0)
        has = end > start
        last = np.maximum(end - 1, 0)
        as_of_us = (as_of - EPOCH) // timedelta(microseconds=1)
        gap = np.where(has, (as_of_us - self.times[last]) / US_PER_DAY, 0.0)
        baskets = np.where(has, self.basket_ordinal[last] + 1, 0)
        return start, end, gap, baskets


@dataclass(frozen=True)
class HistoryReader:
    """What the customer tower reads as history: the last ``length`` purchase lines, or
    with ``next_same`` (``PurchaseSequences.next_same``) the last ``length`` *distinct*
    items, each at its latest purchase, found among the last ``scan`` lines.

    Distinct items are the customer's purchase set, as EASE reads it: a staple bought
    every week is one item, not most of the window, so a long history reaches the
    occasional purchases that say what else the customer might like. The scan bounds the
    work per example to a fixed gather (``scan`` = a few times ``length`` finds
    ``length`` distinct items for all but the most repetitive customers).
    """

    items: Tensor
    length: int
    next_same: Tensor | None = None
    scan: int = 0

    def __call__(self, start: Tensor, end: Tensor) -> Tensor:
        """Items of history lines ``[start, end)`` (B,) → (B, length) int64, most recent
        first, 0-padded."""
        if self.next_same is None:
            return gather_history(self.items, start, end, self.length)
        return gather_distinct(self.items, self.next_same, start, end, self.length, self.scan)


def _last_lines(start: Tensor, end: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Line indices (B, length) ``end-1, end-2, ...`` (clamped to 0) and which of them are
    at or after ``start``."""
    idx = end.unsqueeze(1) - torch.arange(1, length + 1, device=end.device)
    return idx.clamp_min(0), idx >= start.unsqueeze(1)


def gather_history(items: Tensor, start: Tensor, end: Tensor, length: int) -> Tensor:
    """Items of lines ``[max(start, end - length), end)``, most recent first, 0-padded.

    ``items`` (n_lines,) int64; ``start``/``end`` (B,) int64 → (B, length) int64.
    """
    idx, valid = _last_lines(start, end, length)
    if items.numel() == 0:
        return torch.zeros_like(idx)
    return torch.where(valid, items[idx], torch.zeros_like(idx))


def gather_distinct(
    items: Tensor, next_same: Tensor, start: Tensor, end: Tensor, length: int, scan: int
) -> Tensor:
    """The last ``length`` distinct items of lines ``[max(start, end - scan), end)``, each
    at its latest purchase before ``end``, most recent first, 0-padded → (B, length)."""
    idx, valid = _last_lines(start, end, max(scan, length))
    if items.numel() == 0:
        return torch.zeros(idx.shape[0], length, dtype=torch.int64, device=idx.device)
    valid &= next_same[idx] >= end.unsqueeze(1)  # no later purchase of it before end
    # Stable sort of "not kept" moves the kept lines to the front in recency order.
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[:, :length]
    kept = torch.gather(valid, 1, order)
    return torch.where(kept, items[torch.gather(idx, 1, order)], torch.zeros_like(order))


def numeric_features(n_lines: Tensor, n_baskets: Tensor, days: Tensor) -> Tensor:
    """(B,) counts and gap → (B, 4) float32 log features, see ``NUMERIC_FEATURES``."""
    has = (n_lines > 0).float()
    return torch.stack(
        [
            torch.log1p(n_lines.float()),
            torch.log1p(n_baskets.float()),
            torch.log1p(days.float().clamp_min(0.0)) * has,
            has,
        ],
        dim=1,
    )
