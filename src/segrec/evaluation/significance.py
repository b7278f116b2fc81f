"""Is a column's best model ahead of its runner-up by more than noise?

Close models differ by a few thousandths of Recall@K, and a seed or another month moves
them as much, so a bold number alone does not say who wins. Both models rank the same
customers, so they are compared customer by customer: the mean of the paired differences
has a standard error (std / √n) well below either mean's, because what makes a customer
easy or hard is shared by both models and cancels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import polars as pl

from segrec.evaluation.breakdown import OVERALL

PAIRED_SCHEMA = {
    "customers": pl.Utf8,
    "items": pl.Utf8,
    "metric": pl.Utf8,
    "k": pl.Int64,
    "n_customers": pl.Int64,
    "best": pl.Utf8,
    "best_value": pl.Float64,
    "runner_up": pl.Utf8,
    "runner_up_value": pl.Float64,
    "difference": pl.Float64,
    "se": pl.Float64,
    "z": pl.Float64,
}


class Gap(NamedTuple):
    """A mean paired difference and its standard error (NaN under two customers)."""

    difference: float
    se: float
    n_customers: int

    @property
    def z(self) -> float:
        """The difference in standard errors (NaN without one): |z| under 2 is noise."""
        return self.difference / self.se if self.se > 0 else math.nan


def paired_gap(per_customer: pl.DataFrame, a: str, b: str, items: str, metric: str) -> Gap:
    """Mean over customers of model ``a``'s ``metric`` (e.g. ``recall@20``) minus ``b``'s
    on the ``items`` set, with its standard error, from ``per_customer`` (as in
    ``paired_differences``)."""
    chosen = per_customer.filter(pl.col("items") == items)
    return _gap(chosen.pivot(on="model", index="customer_id", values=metric), a, b)


def _gap(wide: pl.DataFrame, a: str, b: str) -> Gap:
    """``wide``: one row per customer, one column per model."""
    if a not in wide.columns or b not in wide.columns or wide.height == 0:
        return Gap(math.nan, math.nan, 0)
    gap = (wide[a] - wide[b]).to_numpy()
    se = float(gap.std(ddof=1)) / math.sqrt(gap.size) if gap.size > 1 else math.nan
    return Gap(float(gap.mean()), se, gap.size)


def paired_differences(
    per_customer: pl.DataFrame,
    labels: pl.DataFrame,
    k: int,
    columns: Sequence[tuple[str, str]],
    metrics: Sequence[str] = ("recall", "ndcg"),
) -> pl.DataFrame:
    """Per (customers, items) of ``columns`` and per metric at ``k``: the best model and
    the runner-up by their mean over the column's customers, the mean paired difference
    its standard error and their ratio z (``PAIRED_SCHEMA``; se and z are NaN under two
    customers).

    ``per_customer``: one row per (model, customer_id, items) with ``{metric}@{k}``
    columns, every model over the same customers; ``labels``: customer_id and
    customer_status (``customers`` is ``overall`` or a status). Ties keep the model that
    comes first in ``per_customer``. Columns with fewer than two models are left out.
    """
    if per_customer.is_empty():
        return pl.DataFrame(schema=PAIRED_SCHEMA)
    order = per_customer["model"].unique(maintain_order=True).to_list()
    frame = per_customer.join(labels.select("customer_id", "customer_status"), on="customer_id")
    rows = []
    for customers, items in columns:
        chosen = frame.filter(pl.col("items") == items)
        if customers != OVERALL:
            chosen = chosen.filter(pl.col("customer_status") == customers)
        for metric in metrics:
            wide = chosen.pivot(on="model", index="customer_id", values=f"{metric}@{k}")
            models = [m for m in order if m in wide.columns]
            if len(models) < 2 or wide.height == 0:
                continue
            means = {m: float(wide[m].mean()) for m in models}
            best, runner_up = sorted(models, key=lambda m: -means[m])[:2]  # stable: ties
            gap = _gap(wide, best, runner_up)
            rows.append(
                {
                    "customers": customers,
                    "items": items,
                    "metric": metric,
                    "k": k,
                    "n_customers": gap.n_customers,
                    "best": best,
                    "best_value": means[best],
                    "runner_up": runner_up,
                    "runner_up_value": means[runner_up],
                    "difference": gap.difference,
                    "se": gap.se,
                    "z": gap.z,
                }
            )
    return pl.DataFrame(rows, schema=PAIRED_SCHEMA)
