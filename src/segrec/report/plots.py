"""The report's plots, each a PNG (bytes) that the HTML page embeds.

Matplotlib's object API (``Figure``), never pyplot: no global state, no display needed, and
figures are freed as soon as they are written.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl
from matplotlib.figure import Figure

BLUE, ORANGE, GREY = "#4C72B0", "#DD8452", "#8c8c8c"
OTHER = "(other)"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _short(label: str, width: int = 36) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _height(n: int) -> float:
    return 1.2 + 0.32 * n


def share_bars(summary: pl.DataFrame, family: str) -> bytes:
    """Share of customers next to share of revenue, per label: who is worth more than their size."""
    labels = [_short(x) for x in summary["label"]][::-1]
    y = np.arange(len(labels))
    fig = Figure(figsize=(6.4, _height(len(labels))), layout="constrained")
    ax = fig.subplots()
    ax.barh(
        y + 0.2,
        summary["customer_share"].to_numpy()[::-1] * 100,
        0.4,
        label="customers",
        color=BLUE,
    )
    revenue = summary["revenue_share"].fill_null(0).to_numpy()[::-1] * 100
    ax.barh(y - 0.2, revenue, 0.4, label="revenue (this period)", color=ORANGE)
    ax.set_yticks(y, labels)
    ax.set_xlabel("% of all")
    ax.set_title(f"{family}: size vs revenue share")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def growth_bars(summary: pl.DataFrame, family: str) -> bytes:
    """Growth of customers and revenue against the previous period, per label, in percent."""
    labels = [_short(x) for x in summary["label"]][::-1]
    y = np.arange(len(labels))
    fig = Figure(figsize=(6.4, _height(len(labels))), layout="constrained")
    ax = fig.subplots()
    for offset, column, color, name in (
        (0.2, "customer_growth", BLUE, "customers"),
        (-0.2, "revenue_growth", ORANGE, "revenue"),
    ):
        values = summary[column].to_numpy()[::-1].astype(float) * 100
        ax.barh(y + offset, np.nan_to_num(values), 0.4, label=name, color=color)
    ax.axvline(0, color=GREY, lw=0.8)
    ax.set_yticks(y, labels)
    ax.set_xlabel("% change vs previous period (0 where the label was empty)")
    ax.set_title(f"{family}: growth against the previous period")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _pool(migration: pl.DataFrame, keep: list[str]) -> pl.DataFrame:
    """Labels outside ``keep`` become ``(other)``, so the matrix stays readable."""
    pooled = [
        pl.when(pl.col(c).is_in(keep)).then(pl.col(c)).otherwise(pl.lit(OTHER)).alias(c)
        for c in ("from_label", "to_label")
    ]
    return (
        migration.with_columns(pooled)
        .group_by("from_label", "to_label")
        .agg(pl.col("customers").sum())
    )


def migration_heatmap(migration: pl.DataFrame, order: list[str], family: str) -> bytes:
    """Previous label (rows) → current label (columns). Colour: share of the row's customers;
    text: customers. ``order`` lists the labels to show; the rest are pooled."""
    moves = _pool(migration, order)
    labels = (
        [*order, OTHER]
        if moves["from_label"].is_in([OTHER]).any() or (moves["to_label"] == OTHER).any()
        else list(order)
    )
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)))
    rows = [index[x] for x in moves["from_label"]]  # cells of a k × k matrix, not customers
    cols = [index[x] for x in moves["to_label"]]
    counts[rows, cols] = moves["customers"].to_numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(labels)
    fig = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = [_short(x, 24) for x in labels]
    ax.set_xticks(range(len(labels)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), ticks)
    ax.set_xlabel("label now")
    ax.set_ylabel("label one period earlier")
    ax.set_title(f"{family}: migration (share of each earlier label)")
    if len(labels) <= 15:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                color = "white" if shares[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(n):,}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def rfm_heatmap(grid: pl.DataFrame, bands: tuple[int, int], family: str, named: bool) -> bytes:
    """Customers per recency × frequency cell (best: top right), named groups written in.

    ``bands``: the family's (recency, frequency) band counts, so empty cells still show."""
    n_r, n_f = bands
    counts = np.zeros((n_r, n_f))
    counts[grid["r"].to_numpy() - 1, grid["f"].to_numpy() - 1] = grid["customers"].to_numpy()
    fig = Figure(figsize=(1.2 + 1.1 * n_f, 1.0 + 0.9 * n_r), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="YlOrRd", origin="lower")
    ax.set_xticks(range(n_f), [f"F{f}" for f in range(1, n_f + 1)])
    ax.set_yticks(range(n_r), [f"R{r}" for r in range(1, n_r + 1)])
    ax.set_xlabel("frequency score (orders)")
    ax.set_ylabel("recency score (higher = more recent)")
    ax.set_title(f"{family}: RFM grid (customers)")
    top = counts.max() or 1
    for r, f, n, label in grid.select("r", "f", "customers", "label").iter_rows():
        text = f"{n:,}\n{_short(label, 14)}" if named else f"{n:,}"
        color = "white" if n > 0.6 * top else "black"
        ax.text(f - 1, r - 1, text, ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)
