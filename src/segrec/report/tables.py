"""The segment report's tables, every one a few joins and group_bys over all families at once.

Assignments are reshaped long (customer, family, label) so that one query answers every
family; nothing loops over customers or labels.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from segrec.segments.history import window

SUMMARY_SCHEMA = {
    "family": pl.Utf8,
    "label": pl.Utf8,
    "customers": pl.Int64,
    "customer_share": pl.Float64,
    "revenue": pl.Float64,
    "revenue_share": pl.Float64,
    "orders": pl.Int64,
    "orders_per_customer": pl.Float64,
    "customers_prev": pl.Int64,
    "revenue_prev": pl.Float64,
    "customer_growth": pl.Float64,
    "revenue_growth": pl.Float64,
}


def long_labels(assignments: pl.DataFrame, families: list[str]) -> pl.DataFrame:
    """``customer_id, family, label``: one row per customer and family."""
    return assignments.unpivot(
        index="customer_id", on=families, variable_name="family", value_name="label"
    )


def period_activity(history: pl.LazyFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """``customer_id, revenue, orders`` of the customers who bought in [start, end)."""
    days = (end - start).days
    return (
        window(history, end, days)
        .filter(pl.col("timestamp") >= start)
        .group_by("customer_id")
        .agg(
            pl.col("revenue").sum().alias("revenue"),
            pl.col("basket_id").n_unique().cast(pl.Int64).alias("orders"),
        )
        .collect()
    )


def _by_label(labels: pl.DataFrame, activity: pl.DataFrame, suffix: str) -> pl.DataFrame:
    joined = labels.join(activity, on="customer_id", how="left")
    return joined.group_by("family", "label").agg(
        pl.len().cast(pl.Int64).alias(f"customers{suffix}"),
        pl.col("revenue").fill_null(0.0).sum().alias(f"revenue{suffix}"),
        pl.col("orders").fill_null(0).sum().cast(pl.Int64).alias(f"orders{suffix}"),
    )


def _growth(now: str, before: str) -> pl.Expr:
    return pl.when(pl.col(before) > 0).then(pl.col(now) / pl.col(before) - 1.0)


def summary_table(
    current: pl.DataFrame,
    previous: pl.DataFrame,
    activity: pl.DataFrame,
    previous_activity: pl.DataFrame,
    families: list[str],
) -> pl.DataFrame:
    """Per family and label: size, revenue, orders, and growth against the previous period.

    ``current``/``previous``: assignments at the end of this period and of the previous one;
    ``activity``/``previous_activity``: each customer's revenue and orders in each period.
    Growth compares this period's label members with the previous period's members of the
    same label (null where the label was empty).
    """
    now = _by_label(long_labels(current, families), activity, "")
    before = _by_label(long_labels(previous, families), previous_activity, "_prev")
    table = now.join(before, on=["family", "label"], how="full", coalesce=True).with_columns(
        pl.col("customers", "customers_prev", "orders").fill_null(0),
        pl.col("revenue", "revenue_prev").fill_null(0.0),
    )
    total = pl.col("revenue").sum().over("family")
    return (
        table.with_columns(
            (pl.col("customers") / pl.col("customers").sum().over("family")).alias(
                "customer_share"
            ),
            pl.when(total > 0).then(pl.col("revenue") / total).alias("revenue_share"),
            pl.when(pl.col("customers") > 0)
            .then(pl.col("orders") / pl.col("customers"))
            .alias("orders_per_customer"),
            _growth("customers", "customers_prev").alias("customer_growth"),
            _growth("revenue", "revenue_prev").alias("revenue_growth"),
        )
        .with_columns(pl.col("family").cast(pl.Enum(families)))
        .sort(["family", "customers", "label"], descending=[False, True, False])
        .with_columns(pl.col("family").cast(pl.Utf8))
        .select(list(SUMMARY_SCHEMA))
        .cast(SUMMARY_SCHEMA)  # type: ignore[arg-type]
    )


def top_by_lift(
    labels: pl.DataFrame, lines: pl.DataFrame, key: str, top_n: int, min_buyers: int
) -> pl.DataFrame:
    """Per family and label, the ``top_n`` values of ``key`` (item or category) by lift.

    Among the customers who shopped in the period: lift = (share of the label's shoppers
    who bought it) / (share of all shoppers who did); 3 means three times as likely as the
    average shopper. Counting shoppers, not all members, keeps a quiet label (lapsed,
    hibernating) from having every lift below 1 just for buying little. Raw counts would
    list the same bestsellers for every label. Values with fewer than ``min_buyers``
    buyers in the label are left out: their lift is mostly noise.
    """
    buyers = lines.select("customer_id", key).drop_nulls().unique()
    shoppers = labels.join(lines.select("customer_id").unique(), on="customer_id")
    n_all = shoppers.select(pl.col("customer_id").n_unique()).item()
    overall = buyers.group_by(key).agg(pl.len().alias("all_buyers"))
    sizes = shoppers.group_by("family", "label").agg(pl.len().alias("size"))
    return (
        buyers.join(labels, on="customer_id")
        .group_by("family", "label", key)
        .agg(pl.len().alias("buyers"))
        .filter(pl.col("buyers") >= min_buyers)
        .join(overall, on=key)
        .join(sizes, on=["family", "label"])
        .with_columns(
            ((pl.col("buyers") / pl.col("size")) / (pl.col("all_buyers") / n_all)).alias("lift")
        )
        .sort(["family", "label", "lift", key], descending=[False, False, True, False])
        .group_by("family", "label", maintain_order=True)
        .head(top_n)
        .with_columns(
            pl.lit(key).alias("kind"),
            pl.col(key).cast(pl.Utf8).alias("value"),
            pl.int_range(1, pl.len() + 1).over("family", "label").alias("rank"),
        )
        .select("family", "label", "kind", "rank", "value", "lift", "buyers")
    )


def migration_table(
    previous: pl.DataFrame, current: pl.DataFrame, families: list[str]
) -> pl.DataFrame:
    """``family, from_label, to_label, customers``: who moved where between the two dates."""
    before = long_labels(previous, families).rename({"label": "from_label"})
    after = long_labels(current, families).rename({"label": "to_label"})
    return (
        before.join(after, on=["customer_id", "family"])
        .group_by("family", "from_label", "to_label")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .sort(
            ["family", "customers", "from_label", "to_label"],
            descending=[False, True, False, False],
        )
    )


def rfm_grid(scores: pl.DataFrame, labels: pl.Series) -> pl.DataFrame:
    """``r, f, customers, monetary, label`` per recency × frequency cell of active customers.

    ``scores``: ``customer_id, r, f, m`` from the RFM family; ``labels``: its labels, aligned.
    ``label`` is the cell's most common label (the group name for named families).
    """
    cells = scores.with_columns(labels.alias("label")).drop_nulls("r")
    return (
        cells.group_by("r", "f")
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col("m").mean().alias("monetary"),
            pl.col("label").mode().sort().first().alias("label"),
        )
        .sort("r", "f")
    )
