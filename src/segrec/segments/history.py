"""The purchase history a family may see: strictly before ``as_of``, optionally a window.

Every behavioural family reads its inputs through ``window``, so that no family can peek
past the date it is assigned at.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

DAY_US = 86_400_000_000


def window(history: pl.LazyFrame, as_of: datetime, days: int | None = None) -> pl.LazyFrame:
    """Rows with ``as_of - days <= timestamp < as_of`` (all rows before as_of if days is None).

    Lazy, so that each family's query reads only the columns it needs and no filtered copy
    of the whole history is ever held in memory.
    """
    ts = pl.col("timestamp")
    keep = ts < as_of
    if days is not None:
        keep = keep & (ts >= as_of - timedelta(days=days))
    return history.filter(keep)


def days_before(as_of: datetime, column: str = "timestamp") -> pl.Expr:
    """Fractional days from ``column`` to ``as_of`` (positive for the past)."""
    return (pl.lit(as_of) - pl.col(column)).dt.total_microseconds() / DAY_US


def data_span(*frames: pl.DataFrame) -> tuple[datetime, datetime]:
    """First and last purchase over the given interaction frames."""
    stats = pl.concat([f.select("timestamp") for f in frames]).select(
        pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")
    )
    first, last = stats.row(0)
    if first is None:
        raise ValueError("segments: there are no interactions to segment")
    return first, last


def check_as_of(as_of: datetime, first: datetime, last: datetime) -> list[str]:
    """as_of must leave some history before it and lie no later than the day after the data."""
    end = datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1)
    if not first < as_of <= end:
        return [
            f"segments.as_of: {as_of} is outside the data, which spans {first} .. {last}; "
            f"choose a date after the first purchase and no later than {end.date()}"
        ]
    return []


def resolve_as_of(value: str | None, last: datetime, default: datetime) -> datetime:
    """``segments.as_of`` as a datetime: an ISO date, ``end`` (day after the data), or default."""
    if value is None:
        return default
    if value == "end":
        return datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1)
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"segments.as_of: {value!r} is not an ISO date (YYYY-MM-DD), 'end' or null"
        ) from exc
