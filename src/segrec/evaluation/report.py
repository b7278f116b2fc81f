"""The Markdown summary of an evaluation: headline table, segment tables, model notes.

The best value of each metric column is in bold, so "which model wins where" reads at a
glance; the tidy table (Parquet/JSON) holds every number for anything finer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from segrec.data import COLD, NEW, WARM
from segrec.evaluation.breakdown import CUSTOMERS, OVERALL

if TYPE_CHECKING:
    from segrec.evaluation.protocol import Period
    from segrec.evaluation.run import ModelRun

# (customers group label, item set) of the headline columns.
HEADLINE = [(OVERALL, "all"), (OVERALL, NEW), (WARM, "all"), (WARM, NEW), (COLD, "all")]
MAX_LABELS = 20  # per family in the Markdown; the tidy table has them all

PROTOCOL = """\
Protocol: hyper-parameters are chosen on the validation period (fitted on train), then each
model is refitted on train + validation and judged on the test period. Full ranking over
the whole catalog, never sampled negatives. Recall@K is normalised by min(K, number of test
items). *new*: truth = the customer's test items never bought before the test period;
ranking = the model's ranking with every previously bought item removed. *warm*: bought
something before the test period; *cold*: first purchase in it."""


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], bold: Sequence[int]
) -> str:
    """A Markdown table; in each column index of ``bold`` the largest number is bolded."""
    best = {}
    for j in bold:
        values = [r[j] for r in rows if isinstance(r[j], float) and r[j] == r[j]]
        best[j] = max(values) if values else None
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = []
        for j, value in enumerate(row):
            text = _fmt(value)
            cells.append(f"**{text}**" if j in best and value == best[j] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4f}"
    return str(value)


def _value(table: pl.DataFrame, model: str, label: str, items: str, metric: str, k: int) -> float:
    group = OVERALL if label == OVERALL else CUSTOMERS
    row = table.filter(
        (pl.col("model") == model)
        & (pl.col("group") == group)
        & (pl.col("label") == label)
        & (pl.col("items") == items)
        & (pl.col("metric") == metric)
        & (pl.col("k") == k)
    )
    return float(row["value"][0]) if row.height else float("nan")


def headline(
    table: pl.DataFrame, runs: Sequence[ModelRun], k: int, ratio_to: str | None = None
) -> str:
    """Models × (customers, items) Recall/NDCG@k, overall coverage@k and fit time; with
    ``ratio_to``, also overall NDCG@k on all items relative to that model."""
    header = ["model"]
    for label, items in HEADLINE:
        header += [f"{label} · {items} R@{k}", f"{label} · {items} N@{k}"]
    header += [f"cov@{k}"]
    base = _value(table, ratio_to, OVERALL, "all", "ndcg", k) if ratio_to else float("nan")
    rows = []
    for run in runs:
        row: list[Any] = [run.name]
        for label, items in HEADLINE:
            row += [_value(table, run.name, label, items, m, k) for m in ("recall", "ndcg")]
        row.append(_value(table, run.name, OVERALL, "all", "coverage", k))
        if ratio_to:
            row.append(f"{_value(table, run.name, OVERALL, 'all', 'ndcg', k) / base:.2f}")
        row.append(f"{run.fit_seconds:.1f}")
        rows.append(row)
    if ratio_to:
        header.append(f"N@{k} ÷ {ratio_to}")
    header.append("fit s")
    return markdown_table(header, rows, bold=range(1, len(HEADLINE) * 2 + 2))


def segment_tables(table: pl.DataFrame, runs: Sequence[ModelRun], k: int) -> str:
    """Per segment family: labels × models, NDCG@k on all items (best per row in bold)."""
    families = [g for g in table["group"].unique(maintain_order=True) if g not in (OVERALL,)]
    models = [r.name for r in runs]
    parts = []
    for family in families:
        part = table.filter(
            (pl.col("group") == family)
            & (pl.col("items") == "all")
            & (pl.col("metric") == "ndcg")
            & (pl.col("k") == k)
        )
        wide = part.pivot(on="model", index=["label", "n_customers"], values="value").sort(
            "n_customers", descending=True
        )
        shown = (
            f"the {MAX_LABELS} largest of {wide.height} labels" if wide.height > MAX_LABELS else ""
        )
        wide = wide.head(MAX_LABELS)
        lines = [f"### {family}: NDCG@{k}, all items{' (' + shown + ')' if shown else ''}\n"]
        rows = [
            [r["label"], r["n_customers"], *[float(r.get(m) or float("nan")) for m in models]]
            for r in wide.iter_rows(named=True)
        ]
        lines.append(_bold_rows(["label", "customers", *models], rows, first=2))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _bold_rows(header: Sequence[str], rows: Sequence[Sequence[Any]], first: int) -> str:
    """Like ``markdown_table`` but bolds the best value of each row from column ``first``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = [v for v in row[first:] if v == v]
        top = max(values) if values else None
        cells = [
            f"**{_fmt(v)}**" if j >= first and v == top else _fmt(v) for j, v in enumerate(row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(runs: Sequence[ModelRun], fallback: str) -> str:
    """Per model: chosen hyper-parameters, grid size, fit/score time, cold-start handling."""
    rows = [
        [
            r.name,
            json.dumps(r.params, default=str),
            str(len(r.trials) or 1),
            f"{r.fit_seconds:.1f}",
            f"{r.score_seconds:.1f}",
            r.cold_start,
        ]
        for r in runs
    ]
    header = ["model", "parameters (chosen on validation)", "grid", "fit s", "score s", "cold"]
    text = markdown_table(header, rows, bold=[])
    return (
        f"{text}\n\nCold customers: personalised baselines cannot score customers absent "
        f"from their training history; those are scored by **{fallback}** (chosen on the "
        "validation period's cold customers unless configured), marked in the *cold* column."
    )


def paired_table(paired: pl.DataFrame) -> str:
    """Each headline column's best model against its runner-up (``paired_differences``):
    the difference of their means, its paired standard error and their ratio z (|z| under
    2: within noise)."""
    header = ["column", "best", "runner-up", "difference", "SE", "z", "customers"]
    rows = []
    for r in paired.iter_rows(named=True):
        rows.append(
            [
                f"{r['customers']} · {r['items']} {r['metric'][0].upper()}@{r['k']}",
                f"{r['best']} {r['best_value']:.4f}",
                f"{r['runner_up']} {r['runner_up_value']:.4f}",
                f"{r['difference']:+.4f}",
                f"{r['se']:.4f}",
                "–" if r["z"] != r["z"] else f"{r['z']:.1f}",
                str(r["n_customers"]),
            ]
        )
    return markdown_table(header, rows, bold=[])


def markdown_report(
    table: pl.DataFrame,
    runs: Sequence[ModelRun],
    ks: Sequence[int],
    fallback: str,
    title: str,
    test: Period,
    paired: pl.DataFrame,
) -> str:
    """The whole report, largest K first, with how far each column's best model is ahead
    of its runner-up, customer by customer (``paired``, when it has rows)."""
    labels = test.labels["customer_status"].value_counts()
    counts = {r[0]: r[1] for r in labels.iter_rows()}
    sizes = (
        f"Test period from {test.history.as_of:%Y-%m-%d}: {test.truth.customer_ids.len()} "
        f"customers with purchases ({counts.get(WARM, 0)} warm, {counts.get(COLD, 0)} cold); "
        f"catalog of {len(test.history.item_map)} items."
    )
    sections = [f"# {title}", PROTOCOL, sizes]
    for k in sorted(ks, reverse=True):
        sections += [f"## Recall / NDCG @{k}", headline(table, runs, k)]
    if paired.height:
        k = int(paired["k"][0])
        sections += [f"## Best against runner-up @{k}, customer by customer", paired_table(paired)]
    top_k = max(ks)
    sections += [
        "## Segments",
        segment_tables(table, runs, top_k),
        "## Models",
        notes(runs, fallback),
    ]
    return "\n\n".join(sections) + "\n"
