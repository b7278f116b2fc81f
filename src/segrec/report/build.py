"""Build the segment report: who is in each segment, what they are worth, where they moved.

The current period is the ``period_days`` before ``as_of``; the previous period is the same
length just before it. Families are fitted once, as of ``as_of``, and applied at both
dates, so a move from ``champions`` to ``at_risk`` is the customer's own change, not a
shift of quantile edges or a renumbering of clusters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from segrec.data import RetailData
from segrec.report.tables import (
    long_labels,
    migration_table,
    period_activity,
    rfm_grid,
    summary_table,
    top_by_lift,
)
from segrec.segments import SegmentConfigError, Segmenter, SegmentsConfig
from segrec.segments.errors import raise_if
from segrec.segments.history import check_as_of, data_span


@dataclass
class SegmentReport:
    """Every table of the report; ``write_segment_report`` renders them."""

    as_of: datetime
    period_start: datetime
    previous_start: datetime
    families: dict[str, str]  # family -> kind (attribute, rfm, rules, learned)
    totals: dict[str, float]
    summary: pl.DataFrame
    top: pl.DataFrame
    migration: pl.DataFrame
    rfm_grids: dict[str, pl.DataFrame]
    rfm_bands: dict[str, tuple[int, int]]  # family -> (recency bands, frequency bands)
    named_rfm: set[str]
    assignments: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    max_plot_labels: int = 20


def _kinds(cfg: SegmentsConfig) -> dict[str, str]:
    return {f: k for k in ("attribute", "rfm", "rules", "learned") for f in getattr(cfg, k)}


def _period_lines(
    rows: pl.DataFrame, items: pl.DataFrame, category: str | None, start: datetime, end: datetime
) -> pl.DataFrame:
    """``customer_id, item_id[, category]`` of the period's purchases."""
    lines = rows.lazy().filter(pl.col("timestamp").is_between(start, end, closed="left"))
    lines = lines.select("customer_id", "item_id").unique()
    if category is not None:
        cats = items.select("item_id", pl.col(category).cast(pl.Utf8).alias("category"))
        lines = lines.join(cats.lazy(), on="item_id", how="left")
    return lines.collect()


def build_segment_report(
    cfg: SegmentsConfig,
    data: RetailData,
    as_of: datetime,
    interactions: pl.DataFrame | None = None,
) -> SegmentReport:
    """Assign every family at ``as_of`` and one period earlier, and tabulate both periods."""
    rows = data.interactions if interactions is None else interactions
    period = timedelta(days=cfg.period_days)
    first, last = data_span(rows)
    raise_if(check_as_of(as_of, first, last))
    if as_of - period <= first:
        raise SegmentConfigError(
            [
                f"segments.period_days: the previous period's end ({as_of - period}) must fall "
                f"after the first purchase ({first}); lower period_days or move as_of later"
            ]
        )
    segmenter, current = Segmenter.fit_assign(cfg, data, as_of, interactions)
    previous = segmenter.assign(data, as_of - period, interactions)
    families = cfg.families
    history = rows.lazy()
    activity = period_activity(history, as_of - period, as_of)
    previous_activity = period_activity(history, as_of - 2 * period, as_of - period)
    notes = []
    if as_of - 2 * period < first:
        notes.append(
            f"the previous period starts before the data ({first.date()}): its "
            f"revenue and growth cover only part of it"
        )
    category: str | None = cfg.report.category_attribute
    if category not in data.items.columns:
        notes.append(
            f"items have no {category!r} attribute: top categories are not shown "
            f"(segments.report.category_attribute)"
        )
        category = None
    lines = _period_lines(rows, data.items, category, as_of - period, as_of)
    labels = long_labels(current, families)
    top = [top_by_lift(labels, lines, "item_id", cfg.report.top_n, cfg.report.min_buyers)]
    if category is not None:
        top.insert(
            0, top_by_lift(labels, lines, "category", cfg.report.top_n, cfg.report.min_buyers)
        )
    if rows["revenue"].is_not_null().sum() == 0:
        notes.append("the data has no revenue: revenue columns are zero and shares empty")
    grids = {
        name: rfm_grid(segmenter.rfm_scores(name, data, as_of, interactions), current[name])
        for name in cfg.rfm
    }
    return SegmentReport(
        as_of=as_of,
        period_start=as_of - period,
        previous_start=as_of - 2 * period,
        families=_kinds(cfg),
        totals={
            "customers": current.height,
            "active_customers": activity.height,
            "revenue": float(activity["revenue"].sum() or 0.0),
            "revenue_prev": float(previous_activity["revenue"].sum() or 0.0),
            "orders": int(activity["orders"].sum() or 0),
        },
        summary=summary_table(current, previous, activity, previous_activity, families),
        top=pl.concat(top),
        migration=migration_table(previous, current, families),
        rfm_grids=grids,
        rfm_bands={
            n: (e.n_bands("recency"), e.n_bands("frequency"))
            for n, e in segmenter.rfm_edges.items()
        },
        named_rfm={n for n, r in cfg.rfm.items() if r.named},
        assignments=current,
        notes=notes,
        max_plot_labels=cfg.report.max_plot_labels,
    )


def write_segment_report(report: SegmentReport, directory: str | Path) -> dict[str, Path]:
    """Write ``segments.html`` (self-contained), ``segments.md`` and the Parquet tables."""
    from segrec.report.render import render_html, render_markdown

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": directory / "segments.html",
        "markdown": directory / "segments.md",
        "summary": directory / "segment_summary.parquet",
        "top": directory / "segment_top.parquet",
        "migration": directory / "segment_migration.parquet",
        "rfm_grid": directory / "segment_rfm_grid.parquet",
    }
    report.summary.write_parquet(paths["summary"])
    report.top.write_parquet(paths["top"])
    report.migration.write_parquet(paths["migration"])
    grids = [g.with_columns(pl.lit(f).alias("family")) for f, g in report.rfm_grids.items()]
    if grids:
        pl.concat(grids).select("family", pl.exclude("family")).write_parquet(paths["rfm_grid"])
    else:
        del paths["rfm_grid"]
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths
