"""Per-customer metrics → the tidy table of every breakdown.

Groupings: ``overall``; ``customers`` (warm | cold); one per segment family (its labels).
Each is crossed with the item set (all | new | repeat). The table is long ("tidy"): one row
per (model, items, group, label, metric, k), so that any pivot is one call away.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from segrec.evaluation.metrics import METRICS, coverage

OVERALL = "overall"
CUSTOMERS = "customers"
TIDY_SCHEMA = {
    "model": pl.Utf8,
    "items": pl.Utf8,
    "group": pl.Utf8,
    "label": pl.Utf8,
    "n_customers": pl.Int64,
    "metric": pl.Utf8,
    "k": pl.Int64,
    "value": pl.Float64,
}


def _grouped(
    frame: pl.DataFrame, by: str | None, ks: Sequence[int], catalog_size: int
) -> pl.DataFrame:
    label = pl.lit(OVERALL) if by is None else pl.col(by)
    names = [f"{m}@{k}" for k in ks for m in METRICS]
    return (
        frame.with_columns(label.alias("label"))
        .group_by("items", "label")
        .agg(
            pl.len().alias("n_customers"),
            *[pl.col(n).mean() for n in names],
            *[coverage("top", k, catalog_size) for k in ks],
        )
        .with_columns(pl.lit(by or OVERALL).alias("group"))
    )


def breakdown(
    model: str,
    per_customer: pl.DataFrame,
    labels: pl.DataFrame,
    ks: Sequence[int],
    catalog_size: int,
    families: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Tidy table of one model: means over customers per group, and coverage per group.

    ``labels`` has customer_id, customer_status and segment family columns; ``families``
    limits the segment breakdowns (default: every family column in ``labels``).
    """
    frame = per_customer.join(labels, on="customer_id", how="left")
    frame = frame.rename({"customer_status": CUSTOMERS})
    families = (
        families
        if families is not None
        else [c for c in labels.columns if c not in ("customer_id", "customer_status")]
    )
    parts = [_grouped(frame, by, ks, catalog_size) for by in [None, CUSTOMERS, *families]]
    wide = pl.concat(parts, how="diagonal_relaxed")
    value_columns = [c for c in wide.columns if "@" in c]
    return (
        wide.unpivot(
            index=["items", "group", "label", "n_customers"],
            on=value_columns,
            variable_name="metric",
        )
        .with_columns(
            pl.col("metric").str.split("@").list.get(1).cast(pl.Int64).alias("k"),
            pl.col("metric").str.split("@").list.get(0),
            pl.lit(model).alias("model"),
        )
        .select(list(TIDY_SCHEMA))
        .cast(TIDY_SCHEMA)  # type: ignore[arg-type]
        .sort("items", "group", "label", "metric", "k")
    )
