"""The known customers' plain features stored in a bundle (Parquet, torch-free).

Serving shows them (a customer's segments and counts) and the ranker reads the purchase
table (how often and how recently the customer bought each item) for its history features,
so they are computed once here, as of the history's cutoff, rather than in every replica.
"""

from __future__ import annotations

import polars as pl

from segrec.recommender import History


def purchase_table(history: History) -> pl.DataFrame:
    """One row per (customer_id, item_id): purchase lines, quantity, first and last time."""
    h = history.interactions
    quantity = pl.col("quantity").sum() if "quantity" in h.columns else pl.len()
    return (
        h.group_by("customer_id", "item_id")
        .agg(
            pl.len().cast(pl.Int32).alias("count"),
            quantity.cast(pl.Float64).alias("quantity"),
            pl.col("timestamp").min().alias("first_purchase"),
            pl.col("timestamp").max().alias("last_purchase"),
        )
        .sort("customer_id", "item_id")
    )


def customer_summary(history: History, customer_ids: pl.Series) -> pl.DataFrame:
    """customer_id, segment labels, n_lines, n_baskets, first/last purchase, revenue.

    Customers without a purchase get zero counts and null times; labels come from
    ``history.segments`` (``unknown`` where absent).
    """
    h = history.interactions
    basket = pl.col("basket_id") if "basket_id" in h.columns else pl.col("timestamp")
    aggs = [
        pl.len().cast(pl.Int64).alias("n_lines"),
        basket.n_unique().cast(pl.Int64).alias("n_baskets"),
        pl.col("timestamp").min().alias("first_purchase"),
        pl.col("timestamp").max().alias("last_purchase"),
    ]
    if "revenue" in h.columns:
        aggs.append(pl.col("revenue").sum().cast(pl.Float64).alias("revenue"))
    counts = h.group_by("customer_id").agg(aggs)
    out = pl.DataFrame({"customer_id": customer_ids.cast(pl.Utf8)})
    if history.segments is not None:
        labels = history.segments.with_columns(pl.col("customer_id").cast(pl.Utf8))
        out = out.join(labels, on="customer_id", how="left", maintain_order="left")
        families = [c for c in labels.columns if c != "customer_id"]
        out = out.with_columns(pl.col(families).fill_null("unknown"))
    out = out.join(
        counts.with_columns(pl.col("customer_id").cast(pl.Utf8)),
        on="customer_id",
        how="left",
        maintain_order="left",
    )
    return out.with_columns(pl.col("n_lines", "n_baskets").fill_null(0))
