"""Every customer's purchase lines in time order, as flat arrays, and the history gathers.

A training example is a purchase line; its features are what was known *before its
basket*: the last L lines of earlier baskets, counts, the gap since the previous basket.
Sorting once by (customer, basket time) turns all of that into index arithmetic on flat
arrays, so building millions of examples costs a few vectorised passes and a batch of
histories is one gather, with no per-example Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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

    def repeats(self) -> np.ndarray:
        """Whether each line (n,) buys an item its customer bought in an earlier basket."""
        key = self.line_customers() * (int(self.items.max(initial=0)) + 1) + self.items
        order = np.argsort(key, kind="stable")  # stable: time order within each key
        repeat = np.zeros(len(key), bool)
        repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
        return repeat

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
        safe = np.where(known, rows, 0)
        start = np.where(known, self.ptr[safe], 0)
        end = np.where(known, self.ptr[safe + 1], 0)
        has = end > start
        if not has.any():
            zeros = np.zeros(len(rows), np.int64)
            return start, end, np.zeros(len(rows)), zeros
        last = np.maximum(end - 1, 0)
        as_of_us = (as_of - EPOCH) // timedelta(microseconds=1)
        gap = np.where(has, (as_of_us - self.times[last]) / US_PER_DAY, 0.0)
        baskets = np.where(has, self.basket_ordinal[last] + 1, 0)
        return start, end, gap, baskets


def gather_history(items: Tensor, start: Tensor, end: Tensor, length: int) -> Tensor:
    """Items of lines ``[max(start, end - length), end)``, most recent first, 0-padded.

    ``items`` (n_lines,) int64; ``start``/``end`` (B,) int64 → (B, length) int64.
    """
    offsets = torch.arange(1, length + 1, device=end.device)
    idx = end.unsqueeze(1) - offsets  # (B, L): end-1, end-2, ...
    valid = idx >= start.unsqueeze(1)
    if items.numel() == 0:
        return torch.zeros_like(idx)
    return torch.where(valid, items[idx.clamp_min(0)], torch.zeros_like(idx))


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
