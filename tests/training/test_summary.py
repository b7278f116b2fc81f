"""The closing summary: the model beside the best baseline of each column, with z."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console

from segrec.training.summary import print_summary


def tidy(values: dict[str, float]) -> pl.DataFrame:
    """Overall means, the same for every (items, metric) column at K = 20."""
    return pl.DataFrame(
        [
            {"model": m, "group": "overall", "label": "overall", "items": items,
             "metric": metric, "k": 20, "value": v}
            for m, v in values.items()
            for items in ("all", "new")
            for metric in ("recall", "ndcg")
        ]
    )  # fmt: skip


def per_customer(values: dict[str, list[float]]) -> pl.DataFrame:
    return pl.concat(
        pl.DataFrame(
            {
                "model": m,
                "customer_id": [f"c{i}" for i in range(len(v))],
                "items": items,
                "recall@20": v,
                "ndcg@20": v,
            }
        )
        for m, v in values.items()
        for items in ("all", "new")
    )


def test_the_summary_gives_each_columns_paired_z_against_the_best_baseline() -> None:
    scores = {"model": [0.3, 0.5, 0.4, 0.6], "base": [0.1, 0.4, 0.3, 0.5], "weak": [0.0] * 4}
    means = {m: sum(v) / len(v) for m, v in scores.items()}
    console = Console(record=True, width=200)
    print_summary(
        "model",
        tidy(means),
        1.0,
        {"outputs": Path("x")},
        console,
        per_customer=per_customer(scores),
    )
    text = console.export_text()
    # Differences 0.2, 0.1, 0.1, 0.1: mean 0.125, std 0.05, SE 0.025, z = 5.0.
    rows = [line for line in text.splitlines() if "base" in line and "0.4500" in line]
    assert len(rows) == 4 and all("+5.0" in line for line in rows)
    without = Console(record=True, width=200)
    print_summary("model", tidy(means), 1.0, {"outputs": Path("x")}, without)
    assert "+5.0" not in without.export_text()
