"""Render a ``SegmentReport`` as one self-contained HTML page and as Markdown.

The HTML embeds its plots as base64 PNGs and its style inline, so it can be mailed or
attached to a ticket as one file and opened anywhere, offline.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime

import polars as pl

from segrec.report.build import SegmentReport
from segrec.report.plots import growth_bars, migration_heatmap, rfm_heatmap, share_bars

COLUMNS = (
    "label",
    "customers",
    "% customers",
    "revenue",
    "% revenue",
    "orders / customer",
    "Δ customers",
    "Δ revenue",
    "top categories (lift)",
    "top items (lift)",
)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1280px;margin:auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid #4C72B0;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:1.4em}
nav a{margin-right:14px}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#eef2f8}td:first-child,td:nth-last-child(-n+2),th:first-child{text-align:left}
td:first-child{white-space:nowrap}
tr:nth-child(even) td{background:#f7f9fc}
.plots{display:flex;flex-wrap:wrap;gap:16px;margin-top:16px;align-items:flex-start}
.plots img{max-width:100%;background:#fff;border:1px solid #ddd;border-radius:4px}
.pos{color:#1a7f37}.neg{color:#c62828}.note{color:#8a6d3b}
"""


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _int(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _money(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _growth(value: float | None, now: float) -> str:
    if value is None:
        return "new" if now else "–"
    return f"{100 * value:+.1f}%"


def _tops(report: SegmentReport, kind: str) -> dict[tuple[str, str], str]:
    """(family, label) -> ``value (2.1×), ...``."""
    rows = (
        report.top.filter(pl.col("kind") == kind)
        .group_by("family", "label")
        .agg(pl.format("{} ({}×)", "value", pl.col("lift").round(1)).sort_by("rank").str.join(", "))
    )
    return {(f, label): text for f, label, text in rows.iter_rows()}


def _rows(report: SegmentReport, family: str) -> list[list[str]]:
    """The cells of one family's table, formatted."""
    cats, items = _tops(report, "category"), _tops(report, "item_id")
    table = report.summary.filter(pl.col("family") == family)
    return [
        [
            r["label"],
            _int(r["customers"]),
            _pct(r["customer_share"]),
            _money(r["revenue"]),
            _pct(r["revenue_share"]),
            f"{r['orders_per_customer'] or 0:.2f}",
            _growth(r["customer_growth"], r["customers"]),
            _growth(r["revenue_growth"], r["revenue"]),
            cats.get((family, r["label"]), ""),
            items.get((family, r["label"]), ""),
        ]
        for r in table.iter_rows(named=True)
    ]


def _moves(report: SegmentReport, family: str, n: int = 5) -> list[tuple[str, str, int]]:
    """The biggest flows between different labels."""
    moves = report.migration.filter(
        (pl.col("family") == family) & (pl.col("from_label") != pl.col("to_label"))
    ).head(n)
    return list(moves.select("from_label", "to_label", "customers").iter_rows())


def _header(report: SegmentReport) -> tuple[str, list[tuple[str, str]]]:
    t = report.totals
    change = t["revenue"] / t["revenue_prev"] - 1 if t["revenue_prev"] else None
    period = (
        f"{_day(report.period_start)} .. {_day(report.as_of)} (exclusive), compared with "
        f"{_day(report.previous_start)} .. {_day(report.period_start)}"
    )
    cards = [
        ("customers", _int(t["customers"])),
        ("active this period", _int(t["active_customers"])),
        ("orders this period", _int(t["orders"])),
        ("revenue this period", _money(t["revenue"])),
        ("revenue vs previous", _growth(change, t["revenue"])),
        ("segment families", str(len(report.families))),
    ]
    return period, cards


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _plots(report: SegmentReport, family: str, max_labels: int) -> list[str]:
    """Size vs revenue, growth, migration (where anyone moved) and, for RFM, the grid."""
    table = report.summary.filter(pl.col("family") == family).head(max_labels)
    moves = report.migration.filter(pl.col("family") == family)
    images = [
        _img(share_bars(table, family), f"{family} size vs revenue share"),
        _img(growth_bars(table, family), f"{family} growth"),
    ]
    if (moves["from_label"] != moves["to_label"]).any():  # static families: nothing to show
        order = table["label"].to_list()
        images.append(_img(migration_heatmap(moves, order, family), f"{family} migration"))
    if family in report.rfm_grids:
        grid = report.rfm_grids[family]
        named = family in report.named_rfm
        bands = report.rfm_bands[family]
        images.insert(0, _img(rfm_heatmap(grid, bands, family, named), f"{family} RFM grid"))
    return images


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(i, v)}</td>" for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(i: int, value: str) -> str:
    text = html.escape(value)
    if COLUMNS[i].startswith("Δ") and value.startswith(("+", "-")) and value != "+0.0%":
        return f'<span class="{"pos" if value.startswith("+") else "neg"}">{text}</span>'
    return text


def render_html(report: SegmentReport) -> str:
    """One self-contained page: totals, then per family a table, its moves and its plots."""
    max_plot_labels = report.max_plot_labels
    period, cards = _header(report)
    nav = "".join(f'<a href="#{html.escape(f)}">{html.escape(f)}</a>' for f in report.families)
    parts = [
        f"<h1>Segment report, as of {_day(report.as_of)}</h1>",
        f'<p class="sub">This period: {html.escape(period)}.</p>',
        '<div class="cards">'
        + "".join(
            f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards
        )
        + "</div>",
        *[f'<p class="note">Note: {html.escape(n)}</p>' for n in report.notes],
        f"<nav>Families: {nav}</nav>",
    ]
    for family, kind in report.families.items():
        rows = _rows(report, family)
        moves = _moves(report, family)
        moved = ", ".join(f"{html.escape(a)} → {html.escape(b)} ({n:,})" for a, b, n in moves)
        more = len(rows) - max_plot_labels
        parts += [
            f'<h2 id="{html.escape(family)}">{html.escape(family)} '
            f"<small>({html.escape(kind)}, {len(rows)} labels)</small></h2>",
            _html_table(rows),
            f"<p><b>Biggest moves since the previous period:</b> {moved or 'none'}.</p>",
            f'<p class="note">Plots show the {max_plot_labels} largest labels; {more} more are '
            f"in the table.</p>"
            if more > 0
            else "",
            '<div class="plots">' + "".join(_plots(report, family, max_plot_labels)) + "</div>",
        ]
    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Segment report {_day(report.as_of)}</title><style>{STYLE}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )


def _md_escape(value: str) -> str:
    return value.replace("|", "\\|")


def render_markdown(report: SegmentReport) -> str:
    """The same tables as Markdown (no plots)."""
    period, cards = _header(report)
    lines = [f"# Segment report, as of {_day(report.as_of)}", "", f"This period: {period}.", ""]
    lines += [" · ".join(f"{k}: **{v}**" for k, v in cards), ""]
    lines += [f"> Note: {n}" for n in report.notes]
    for family, kind in report.families.items():
        lines += ["", f"## {family} ({kind})", ""]
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in _rows(report, family)]
        moves = _moves(report, family)
        moved = ", ".join(f"{a} → {b} ({n:,})" for a, b, n in moves)
        lines += ["", f"Biggest moves since the previous period: {moved or 'none'}."]
    return "\n".join(lines) + "\n"
