"""Paired comparisons: the best model of a column against its runner-up, per customer."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from segrec.evaluation.significance import paired_differences

COLUMNS = [("overall", "all"), ("cold", "all")]


def frame(values: dict[str, list[float]]) -> pl.DataFrame:
    """Per-customer recall@20 and ndcg@20 (the same numbers) of each model, customers c0..."""
    parts = []
    for model, v in values.items():
        ids = [f"c{i}" for i in range(len(v))]
        parts.append(
            pl.DataFrame(
                {"model": model, "customer_id": ids, "items": "all", "recall@20": v, "ndcg@20": v}
            )
        )
    return pl.concat(parts)


LABELS = pl.DataFrame(
    {"customer_id": ["c0", "c1", "c2", "c3"], "customer_status": ["warm", "warm", "cold", "cold"]}
)


def test_the_best_and_the_runner_up_are_compared_customer_by_customer() -> None:
    values = {
        "a": [0.1, 0.5, 0.2, 0.0],
        "b": [0.3, 0.6, 0.2, 0.1],  # best overall
        "c": [0.2, 0.6, 0.0, 0.0],
    }
    out = paired_differences(frame(values), LABELS, 20, COLUMNS)
    assert out.height == 4  # two columns x two metrics
    overall = out.filter((pl.col("customers") == "overall") & (pl.col("metric") == "recall")).row(
        0, named=True
    )
    assert (overall["best"], overall["runner_up"]) == ("b", "a")  # a and c tie: a came first
    gap = np.array(values["b"]) - np.array(values["a"])
    assert overall["difference"] == pytest.approx(gap.mean())
    assert overall["se"] == pytest.approx(gap.std(ddof=1) / math.sqrt(4))
    assert overall["n_customers"] == 4
    assert overall["z"] == pytest.approx(overall["difference"] / overall["se"])
    cold = out.filter((pl.col("customers") == "cold") & (pl.col("metric") == "ndcg")).row(
        0, named=True
    )
    assert (cold["best"], cold["runner_up"], cold["n_customers"]) == ("b", "a", 2)
    assert cold["best_value"] == pytest.approx(0.15)
    assert cold["difference"] == pytest.approx(0.05)


def test_one_model_or_one_customer_gives_no_standard_error() -> None:
    assert paired_differences(frame({"a": [0.1, 0.2]}), LABELS, 20, COLUMNS).height == 0
    one = LABELS.head(1)
    out = paired_differences(frame({"a": [0.1], "b": [0.2]}), one, 20, [("overall", "all")])
    assert out["best"].to_list() == ["b", "b"] and all(
        math.isnan(s) for s in [*out["se"], *out["z"]]
    )
    assert paired_differences(pl.DataFrame(), LABELS, 20, COLUMNS).height == 0
