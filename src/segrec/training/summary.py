"""Closing tables of a training run: what training did, and the model against the best
baseline on the test period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from segrec.evaluation.significance import paired_gap

COLUMNS = (("all", "recall"), ("all", "ndcg"), ("new", "recall"), ("new", "ndcg"))


def print_training(
    metrics: dict[str, Any], paths: dict[str, Path], console: Console, k: int = 20
) -> None:
    """Epochs, best validation metrics at ``k`` (``trainer.validation_k``), times and
    throughput of each stage; output paths."""
    table = Table(title="Two-tower training")
    # Short headers: the table must stay legible in an 80-column terminal.
    for name in (
        "stage",
        "epochs",
        "best epoch",
        "weight / head",  # the cosine's weight and the prior's head, chosen on validation
        f"val R@{k}",
        f"val new R@{k}",
        "s",
        "lines/s",
    ):
        label = name == "stage"
        table.add_column(name, justify="left" if label else "right", no_wrap=label)
    for stage in ("selection", "refit"):
        m = metrics.get(stage)
        if not m:
            continue
        val = m.get("validation", {})
        table.add_row(
            stage,
            str(m["epochs"]),
            str(m["best_epoch"]),
            f"{m.get('tower_weight', 1.0):g} / {m.get('prior_head', 0)}",
            _fmt(val.get(f"val/recall@{k}")),
            _fmt(val.get(f"val/new_recall@{k}")),
            f"{m['seconds']:.1f}",
            f"{m['samples_per_second']:,.0f}",
        )
    console.print(table)
    for name, path in paths.items():
        console.print(f"  {name}: {path}")


def best_baseline(
    table: pl.DataFrame, model: str, items: str, metric: str, k: int
) -> tuple[str, float]:
    """The best other model on the overall (items, metric@k) of a tidy evaluation table."""
    rows = table.filter(
        (pl.col("group") == "overall")
        & (pl.col("items") == items)
        & (pl.col("metric") == metric)
        & (pl.col("k") == k)
        & (pl.col("model") != model)
    ).sort("value", descending=True)
    return (rows["model"][0], float(rows["value"][0])) if rows.height else ("-", float("nan"))


def print_summary(
    model: str,
    table: pl.DataFrame,
    seconds: float,
    paths: dict[str, Path],
    console: Console,
    k: int = 20,
    per_customer: pl.DataFrame | None = None,
) -> None:
    """Test metrics of ``model`` beside the best baseline of each column, the run's time and
    where its outputs are (``table``: the evaluation's tidy table). With ``per_customer``
    (the evaluation's), also z: the difference over its paired standard error, customer
    by customer (|z| under 2: within noise)."""
    out = Table(title=escape(f"{model} on the test period vs the best baseline (@{k})"))
    names = ["items", "metric", model, "best baseline", "baseline value", "ratio"]
    for name in names + ["z"] * (per_customer is not None):
        out.add_column(
            escape(name),
            justify="left" if name in ("items", "metric", "best baseline") else "right",
        )
    for items, metric in COLUMNS:
        mine = table.filter(
            (pl.col("group") == "overall")
            & (pl.col("items") == items)
            & (pl.col("metric") == metric)
            & (pl.col("k") == k)
            & (pl.col("model") == model)
        )
        value = float(mine["value"][0]) if mine.height else float("nan")
        other, base = best_baseline(table, model, items, metric, k)
        cells = [
            items,
            metric,
            _fmt(value),
            escape(other),
            _fmt(base),
            f"{value / base:.2f}x" if base == base and base > 0 else "-",
        ]
        if per_customer is not None:
            z = paired_gap(per_customer, model, other, items, f"{metric}@{k}").z
            cells.append("-" if z != z else f"{z:+.1f}")
        out.add_row(*cells)
    console.print(out)
    console.print(f"Total time {seconds:.1f} s.")
    for name, path in paths.items():
        console.print(f"  {name}: {path}")


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"
