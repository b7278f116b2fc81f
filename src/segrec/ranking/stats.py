"""What the ranker knows about customers and items as of a cutoff, as flat arrays.

Everything is computed once per history with polars group-bys (no loop over customers) and
kept as numpy arrays indexed like the history's matrices: customer row (0 = unknown),
item column (0 = unknown). Ranking then only gathers from these arrays, for one customer
(the service) or a block of them (batch scoring) alike.

Ages are in days before ``as_of``; absent values use ``FAR`` (a long time ago / never),
not NaN, so that a feature means the same wherever it is computed.

The lookup helpers call ndarray methods (``a.repeat``) rather than numpy's functions, or
are compiled (``position_in``, which ``features._fill`` calls per pair): on one
customer's few hundred entries each numpy call's overhead costs about as much as its work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

from segrec.recommender import History

FAR = np.float32(10_000.0)  # days: "never" for ages and intervals
DAY_US = 86_400_000_000

# (customer, item) columns of PairTable.values.
PAIR_COLUMNS = (
    "lines",  # purchase lines of the item
    "days",  # distinct days the item was bought
    "last_age",  # days since the last purchase of the item
    "first_age",  # days since the first purchase of the item
    "decay_short",  # purchase lines, each weighted 0.5 ** (age / short half-life)
    "decay_long",  # the same with the long half-life
    "interval",  # mean days between purchase days (FAR if bought on one day only)
    "rank",  # rank of the item among the customer's by decay_long (1 = first)
)
ATTRIBUTE_COLUMNS = ("lines", "decay_long")  # per (customer, item attribute value)
CUSTOMER_COLUMNS = ("lines", "days", "first_age", "last_age", "decay_long", "items")
ITEM_COLUMNS = ("lines", "recent_lines", "buyers", "recent_buyers", "repeat_buyers", "first_age")


@dataclass(frozen=True)
class PairTable:
    """Per (customer row, item) statistics in CSR order: row r's pairs are
    ``indptr[r]:indptr[r+1]``, sorted by item. ``values`` float32 (nnz, ``columns``).
    The same layout holds (customer, item attribute value) pairs, with other columns."""

    indptr: np.ndarray
    items: np.ndarray
    values: np.ndarray
    n_columns: int
    columns: tuple[str, ...] = PAIR_COLUMNS

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    @property
    def rows(self) -> np.ndarray:
        """The customer row of every pair, int64 (nnz,)."""
        return np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))

    def rows_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every pair of ``rows``: (index into ``rows``, position in the table), int64."""
        return csr_slices(self.indptr, rows)


def csr_slices(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of CSR ``rows``, row after row: (index into ``rows``, position in the
    CSR arrays), int64. For one row this is ``(0..., indptr[r]:indptr[r+1])``; a block
    concatenates its rows' slices the same way."""
    if len(rows) == 1:  # one customer (the service): one slice, in 3 numpy calls, not 11
        pos = np.arange(indptr[rows[0]], indptr[rows[0] + 1], dtype=np.int64)
        return np.zeros(len(pos), np.int64), pos
    start, stop = indptr[rows], indptr[rows + 1]
    lengths = stop - start
    at = np.arange(len(rows), dtype=np.int64).repeat(lengths)
    # Position = the row's start + the offset within the row's slice.
    shift = (start - lengths.cumsum() + lengths).repeat(lengths)
    return at, np.arange(len(at), dtype=np.int64) + shift


def run_starts(sorted_ids: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in non-empty ``sorted_ids``, int64."""
    return np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))


@njit(cache=True, nogil=True)
def position(keys: np.ndarray, key: int) -> int:
    """Position of ``key`` in ascending unique ``keys``, -1 where absent (compiled;
    called from compiled loops)."""
    return position_in(keys, key, 0, keys.shape[0])


@njit(cache=True, nogil=True)
def position_in(keys: np.ndarray, key: int, lo: int, hi: int) -> int:
    """Position of ``key`` in ascending unique ``keys[lo:hi]``, -1 where absent: a
    binary search."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < end and keys[lo] == key else -1


def purchase_frame(history: History) -> pl.DataFrame:
    """The history's catalog purchases as ``r`` (customer row), ``c`` (item column),
    ``age`` (days before as_of) and ``day`` (calendar day): the input of every table here."""
    inter = history.interactions
    return inter.select(
        pl.Series("r", history.customer_rows(inter["customer_id"])),
        pl.Series("c", history.item_map.encode(inter["item_id"])),
        ((pl.lit(history.as_of) - pl.col("timestamp")).dt.total_microseconds() / DAY_US).alias(
            "age"
        ),
        pl.col("timestamp").dt.date().alias("day"),
    ).filter(pl.col("c") > 0)


def pair_table(
    frame: pl.DataFrame, n_rows: int, n_columns: int, short_days: float, long_days: float
) -> PairTable:
    """Per (customer, item) counts, recency, decayed counts, repurchase interval, rank."""
    pairs = (
        frame.group_by("r", "c")
        .agg(
            pl.len().cast(pl.Float32).alias("lines"),
            pl.col("day").n_unique().cast(pl.Float32).alias("days"),
            pl.col("age").min().alias("last_age"),
            pl.col("age").max().alias("first_age"),
            (0.5 ** (pl.col("age") / short_days)).sum().alias("decay_short"),
            (0.5 ** (pl.col("age") / long_days)).sum().alias("decay_long"),
        )
        .sort("r", "c")
        .with_columns(
            pl.when(pl.col("days") > 1)
            .then((pl.col("first_age") - pl.col("last_age")) / (pl.col("days") - 1))
            .otherwise(float(FAR))
            .alias("interval"),
            pl.col("decay_long").rank("ordinal", descending=True).over("r").alias("rank"),
        )
    )
    counts = np.bincount(pairs["r"].to_numpy(), minlength=n_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = pairs.select(PAIR_COLUMNS).to_numpy().astype(np.float32)
    items = pairs["c"].to_numpy().astype(np.int64)
    return PairTable(indptr, items, values, n_columns)


def attribute_codes(history: History, attribute: str) -> np.ndarray:
    """Code of each catalog column's value of item ``attribute`` (int64 (n_columns,));
    values are numbered 1.. in sorted order, 0 = missing or unknown item."""
    if attribute not in history.items.columns:
        known = [c for c in history.items.columns if c != "item_id"]
        raise ValueError(
            f"ranking.features.item_attributes: no item attribute {attribute!r}; "
            f"the items have {known}"
        )
    values = history.items.select(
        pl.col("item_id").cast(pl.Utf8), pl.col(attribute).cast(pl.Utf8).alias("v")
    )
    values = values.with_columns(pl.col("v").rank("dense").cast(pl.Int64).fill_null(0))
    frame = pl.DataFrame({"item_id": history.item_map.ids})
    codes = frame.join(values, on="item_id", how="left", maintain_order="left")["v"]
    return np.concatenate([[0], codes.fill_null(0).to_numpy()]).astype(np.int64)


def attribute_table(
    frame: pl.DataFrame, codes: np.ndarray, n_rows: int, long_days: float
) -> PairTable:
    """Per (customer, attribute value): purchase lines and decayed lines (``long_days``)."""
    pairs = (
        frame.with_columns(pl.Series("c", codes[frame["c"].to_numpy()]))
        .filter(pl.col("c") > 0)
        .group_by("r", "c")
        .agg(
            pl.len().cast(pl.Float32).alias("lines"),
            (0.5 ** (pl.col("age") / long_days)).sum().alias("decay_long"),
        )
        .sort("r", "c")
    )
    counts = np.bincount(pairs["r"].to_numpy(), minlength=n_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = pairs.select(ATTRIBUTE_COLUMNS).to_numpy().astype(np.float32)
    n_values = int(codes.max()) + 1 if codes.size else 1
    return PairTable(
        indptr, pairs["c"].to_numpy().astype(np.int64), values, n_values, ATTRIBUTE_COLUMNS
    )


def customer_table(frame: pl.DataFrame, n_rows: int, long_days: float) -> np.ndarray:
    """float32 (n_rows, CUSTOMER_COLUMNS); row 0 (unknown) is zeros, ages FAR."""
    per = frame.group_by("r").agg(
        pl.len().alias("lines"),
        pl.col("day").n_unique().alias("days"),
        pl.col("age").max().alias("first_age"),
        pl.col("age").min().alias("last_age"),
        (0.5 ** (pl.col("age") / long_days)).sum().alias("decay_long"),
        pl.col("c").n_unique().alias("items"),
    )
    out = np.zeros((n_rows, len(CUSTOMER_COLUMNS)), np.float32)
    out[:, CUSTOMER_COLUMNS.index("first_age")] = FAR
    out[:, CUSTOMER_COLUMNS.index("last_age")] = FAR
    out[per["r"].to_numpy()] = per.select(CUSTOMER_COLUMNS).to_numpy()
    return out


def item_table(frame: pl.DataFrame, n_columns: int, recent_days: int) -> np.ndarray:
    """float32 (n_columns, ITEM_COLUMNS): sales, buyers and repeat buyers per item."""
    recent = pl.col("age") < recent_days
    per = frame.group_by("c").agg(
        pl.len().alias("lines"),
        recent.sum().alias("recent_lines"),
        pl.col("r").n_unique().alias("buyers"),
        pl.col("r").filter(recent).n_unique().alias("recent_buyers"),
        pl.col("age").max().alias("first_age"),
    )
    repeat = (
        frame.group_by("c", "r")
        .agg(pl.col("day").n_unique().alias("d"))
        .group_by("c")
        .agg((pl.col("d") > 1).sum().alias("repeat_buyers"))
    )
    per = per.join(repeat, on="c", how="left").fill_null(0)
    out = np.zeros((n_columns, len(ITEM_COLUMNS)), np.float32)
    out[:, ITEM_COLUMNS.index("first_age")] = FAR
    out[per["c"].to_numpy()] = per.select(ITEM_COLUMNS).to_numpy()
    return out


def recent_customers(frame: pl.DataFrame, recent_days: int) -> int:
    """Customers who bought anything in the last ``recent_days`` (the buyer-share base)."""
    return frame.filter(pl.col("age") < recent_days)["r"].n_unique()
