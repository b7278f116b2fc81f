"""What a user needs to see after ingestion: what was read, kept, rejected, and the split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import polars as pl
from rich.console import Console
from rich.table import Table

from segrec.data.load import RetailData
from segrec.data.split import COLD, NEW, TimeSplit


def _period(frame: pl.DataFrame) -> dict[str, Any]:
    customers = frame.select("customer_id", "customer_status").unique()
    return {
        "rows": frame.height,
        "customers": customers.height,
        "cold_customers": customers.filter(pl.col("customer_status") == COLD).height,
        "items": frame["item_id"].n_unique(),
        "new_item_share": round(
            float(cast("float | None", (frame["item_status"] == NEW).mean()) or 0.0), 4
        ),
    }


def summarize(data: RetailData, split: TimeSplit) -> dict[str, Any]:
    """A JSON-ready account of the data and the split."""
    inter = data.interactions
    return {
        "tables": [vars(t) for t in data.tables],
        "notes": data.notes,
        "interactions": inter.height,
        "customers": data.customers.height,
        "purchasing_customers": inter["customer_id"].n_unique(),
        "items": data.items.height,
        "first": str(inter["timestamp"].min()),
        "last": str(inter["timestamp"].max()),
        "revenue": float(inter["revenue"].sum())
        if inter["revenue"].null_count() < inter.height
        else None,
        "split": {
            "validation_start": str(split.validation_start),
            "test_start": str(split.test_start),
            "test_end": str(split.test_end),
            "train": {
                "rows": split.train.height,
                "customers": split.train["customer_id"].n_unique(),
            },
            "validation": _period(split.validation),
            "test": _period(split.test),
        },
    }


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """Two small tables: ingestion per input table, then the split."""
    tables = Table(title="Input tables", title_justify="left")
    for col in ("table", "file", "read", "kept", "rejected", "merged repeats"):
        tables.add_column(
            col, justify="right" if col in ("read", "kept", "merged repeats") else "left"
        )
    for t in summary["tables"]:
        rejected = ", ".join(f"{k} x{v:,}" for k, v in t["rejected"].items()) or "-"
        tables.add_row(
            t["name"],
            Path(t["file"]).name,
            f"{t['rows_read']:,}",
            f"{t['rows_kept']:,}",
            rejected,
            f"{t['exact_duplicates_merged']:,}",
        )
    console.print(tables)
    for note in summary["notes"]:
        console.print(f"  note: {note}")
    s = summary["split"]
    split = Table(
        title=f"Time split (validation from {s['validation_start'][:10]}, "
        f"test {s['test_start'][:10]} .. {s['test_end'][:10]})",
        title_justify="left",
    )
    for col in ("period", "rows", "customers", "cold customers", "items", "new-item share"):
        split.add_column(col, justify="left" if col == "period" else "right")
    split.add_row("train", f"{s['train']['rows']:,}", f"{s['train']['customers']:,}", "-", "-", "-")
    for name in ("validation", "test"):
        p = s[name]
        split.add_row(
            name,
            f"{p['rows']:,}",
            f"{p['customers']:,}",
            f"{p['cold_customers']:,}",
            f"{p['items']:,}",
            f"{p['new_item_share']:.1%}",
        )
    console.print(split)
