"""The segment job (``train/segment.py``): assign every family as of a date, save, report.

Writes under ``<output_dir>/segments/``: ``segments.parquet`` (customer_id + one column per
family), ``vocabularies/`` (``SegmentVocabularies``, the model's input encoding), the
report (``report/segments.html``, ``.md`` and Parquet tables) and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console
from rich.table import Table

from segrec.data import RetailData, TimeSplit
from segrec.report.build import SegmentReport, build_segment_report, write_segment_report
from segrec.segments import UNKNOWN_LABEL, SegmentVocabularies, resolve_as_of
from segrec.segments.history import data_span

if TYPE_CHECKING:
    from segrec.config import Config


def family_overview(report: SegmentReport) -> list[dict[str, Any]]:
    """Per family: its kind, number of labels, unknown share and largest label."""
    rows = []
    for family, kind in report.families.items():
        table = report.summary.filter(pl.col("family") == family)
        known = table.filter(pl.col("label") != UNKNOWN_LABEL)
        unknown = table.filter(pl.col("label") == UNKNOWN_LABEL)["customer_share"].sum()
        rows.append(
            {
                "family": family,
                "kind": kind,
                "labels": known.height,
                "unknown_share": round(float(unknown), 4),
                "largest": known["label"][0] if known.height else None,
            }
        )
    return rows


def _print(overview: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Segment families")
    for column in ("family", "kind", "labels", "unknown", "largest label"):
        table.add_column(column, justify="right" if column in ("labels", "unknown") else "left")
    for row in overview:
        table.add_row(
            row["family"],
            row["kind"],
            str(row["labels"]),
            f"{100 * row['unknown_share']:.1f}%",
            str(row["largest"]),
        )
    console.print(table)


def segment_stage(
    cfg: Config, data: RetailData, split: TimeSplit, console: Console | None = None
) -> tuple[SegmentReport, dict[str, Any]]:
    """Assign, save and report the configured families on loaded data: the segment step of
    both the segment job and the main job. Returns the report and its summary."""
    console = console or Console()
    started = time.perf_counter()
    out = Path(cfg.paths.output_dir) / "segments"
    out.mkdir(parents=True, exist_ok=True)
    as_of = resolve_as_of(cfg.segments.as_of, data_span(data.interactions)[1], split.test_start)
    with console.status(
        f"Assigning {len(cfg.segments.families)} segment families as of "
        f"{as_of:%Y-%m-%d} and one period earlier ..."
    ):
        report = build_segment_report(cfg.segments, data, as_of)
    report.assignments.write_parquet(out / "segments.parquet")
    SegmentVocabularies.fit(report.assignments).save(out / "vocabularies")
    with console.status("Writing the report ..."):
        files = write_segment_report(report, out / "report")
    overview = family_overview(report)
    _print(overview, console)
    summary = {
        "as_of": as_of.isoformat(),
        "period_days": cfg.segments.period_days,
        "customers": report.assignments.height,
        "families": overview,
        "files": {k: str(v) for k, v in files.items()}
        | {"segments": str(out / "segments.parquet"), "vocabularies": str(out / "vocabularies")},
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"Segment report: {files['html']}")
    return report, summary


def top_items(report: SegmentReport) -> pl.DataFrame:
    """family, label, rank, item_id, lift, buyers: each label's most distinctive items
    (by lift), what the bundle serves as a segment's top items."""
    return (
        report.top.filter(pl.col("kind") == "item_id")
        .rename({"value": "item_id"})
        .select("family", "label", "rank", "item_id", "lift", "buyers")
    )


def segment_job(cfg: Config, console: Console | None = None) -> dict[str, Any]:
    """Run the job and return its summary (also written to ``segments/summary.json``)."""
    from segrec.pipeline import prepare_data  # the pipeline may import this package

    console = console or Console()
    started = time.perf_counter()
    data, split = prepare_data(cfg.data, Path(cfg.paths.output_dir), console)
    _, summary = segment_stage(cfg, data, split, console)
    console.print(f"[bold green]Done[/] in {time.perf_counter() - started:.2f} s.")
    return summary
