"""The global time split, with the labels every breakdown of the evaluation needs.

One cutoff for everyone (not per-customer leave-last-out) so that no model sees a
purchase made after a purchase it is asked to predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from segrec.data.config import SplitConfig

WARM, COLD = "warm", "cold"
REPEAT, NEW = "repeat", "new"


@dataclass(frozen=True)
class TimeSplit:
    """train < validation_start <= validation < test_start <= test < test_end.

    ``validation`` rows are labelled against ``train``; ``test`` rows against everything
    before ``test_start`` (train + validation), which is also the history a model fitted
    for the test period may use.

    Labels: ``customer_status`` is ``warm`` if the customer bought anything before the
    period, else ``cold``; ``item_status`` is ``repeat`` if the customer bought that item
    before the period, else ``new``.
    """

    validation_start: datetime
    test_start: datetime
    test_end: datetime
    train: pl.DataFrame
    validation: pl.DataFrame
    test: pl.DataFrame

    @property
    def before_test(self) -> pl.DataFrame:
        """Every interaction before the test cutoff, unlabelled."""
        return pl.concat([self.train, self.validation.drop("customer_status", "item_status")])


def _date(value: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"data.split.{field}: {value!r} is not an ISO date (YYYY-MM-DD)") from exc


def cutoffs(
    cfg: SplitConfig, first: datetime, last: datetime
) -> tuple[datetime, datetime, datetime]:
    """Resolve (validation_start, test_start, test_end) and check they cut the data."""
    test_start = (
        _date(cfg.test_start, "test_start")
        if cfg.test_start
        else datetime.combine((last - timedelta(days=cfg.test_days)).date(), datetime.min.time())
    )
    test_end = _date(cfg.test_end, "test_end") if cfg.test_end else last + timedelta(microseconds=1)
    validation_start = (
        _date(cfg.validation_start, "validation_start")
        if cfg.validation_start
        else test_start - timedelta(days=cfg.validation_days)
    )
    if not first < validation_start < test_start < test_end:
        raise ValueError(
            f"data.split: need first purchase ({first}) < validation_start ({validation_start}) "
            f"< test_start ({test_start}) < test_end ({test_end}); the data spans {first} .. {last}"
        )
    return validation_start, test_start, test_end


def label_period(history: pl.DataFrame, period: pl.DataFrame) -> pl.DataFrame:
    """Add ``customer_status`` (warm/cold) and ``item_status`` (repeat/new) to ``period``."""
    known = history.select("customer_id").unique().with_columns(pl.lit(True).alias("_warm"))
    bought = (
        history.select("customer_id", "item_id").unique().with_columns(pl.lit(True).alias("_rep"))
    )
    return (
        period.join(known, on="customer_id", how="left", maintain_order="left")
        .join(bought, on=["customer_id", "item_id"], how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_warm"))
            .then(pl.lit(WARM))
            .otherwise(pl.lit(COLD))
            .alias("customer_status"),
            pl.when(pl.col("_rep"))
            .then(pl.lit(REPEAT))
            .otherwise(pl.lit(NEW))
            .alias("item_status"),
        )
        .drop("_warm", "_rep")
    )


def split_by_time(interactions: pl.DataFrame, cfg: SplitConfig) -> TimeSplit:
    """Cut ``interactions`` at the configured dates and label the two evaluation periods."""
    if interactions.is_empty():
        raise ValueError("data.split: there are no interactions to split")
    ts = pl.col("timestamp")
    first, last = interactions["timestamp"].min(), interactions["timestamp"].max()
    validation_start, test_start, test_end = cutoffs(cfg, first, last)  # type: ignore[arg-type]
    train = interactions.filter(ts < validation_start)
    validation = interactions.filter((ts >= validation_start) & (ts < test_start))
    test = interactions.filter((ts >= test_start) & (ts < test_end))
    return TimeSplit(
        validation_start=validation_start,
        test_start=test_start,
        test_end=test_end,
        train=train,
        validation=label_period(train, validation),
        test=label_period(pl.concat([train, validation]), test),
    )
