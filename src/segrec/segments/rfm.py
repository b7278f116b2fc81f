"""RFM families: recency, frequency and monetary scores, as codes or named groups.

Scores run from 1 (worst: longest since the last order, fewest orders, least spend) to the
number of bands (best). Bands are right-closed, ``(e[i-1], e[i]]``: a customer exactly at
an edge stays in the lower band, so ``frequency_edges: [1, 3]`` reads 1 order / 2-3 / 4+.
Quantile edges are fitted once (``fit_rfm``) and can be reused at another date, so that a
customer's move between labels reflects their own behaviour, not the population's drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from segrec.segments.config import RFMFamilyConfig
from segrec.segments.errors import UNKNOWN_LABEL, check_edges, where
from segrec.segments.history import days_before, window

DIMENSIONS = ("recency", "frequency", "monetary")


@dataclass(frozen=True)
class RFMEdges:
    """Fitted band edges per dimension (recency in days, frequency in orders, monetary)."""

    recency: list[float]
    frequency: list[float]
    monetary: list[float] | None

    def n_bands(self, dimension: str) -> int:
        edges = getattr(self, dimension)
        return 0 if edges is None else len(edges) + 1


def _given_edges(cfg: RFMFamilyConfig, dimension: str) -> list[float] | None:
    edges = getattr(cfg, f"{dimension}_edges")
    return None if edges is None else [float(e) for e in edges]


def _n_bands(cfg: RFMFamilyConfig, dimension: str) -> int:
    edges = _given_edges(cfg, dimension)
    return cfg.bins if edges is None else len(edges) + 1


def check_rfm(name: str, cfg: RFMFamilyConfig, has_revenue: bool) -> list[str]:
    """Problems with this family's config (empty: fine)."""
    problems = []
    if cfg.bins < 2:
        problems.append(f"{where('rfm', name, 'bins')}: need at least 2 bands, got {cfg.bins}")
    if cfg.window_days is not None and cfg.window_days < 1:
        problems.append(f"{where('rfm', name, 'window_days')}: must be >= 1 or null")
    for dim in DIMENSIONS:
        problems += check_edges(getattr(cfg, f"{dim}_edges"), where("rfm", name, f"{dim}_edges"))
    if cfg.monetary and not cfg.named and not has_revenue:
        problems.append(
            f"{where('rfm', name, 'monetary')}: the data has no revenue; set monetary: false"
        )
    if cfg.named:
        problems += _check_groups(name, cfg)
    return problems


def _check_groups(name: str, cfg: RFMFamilyConfig) -> list[str]:
    """Named groups must lie inside the grid and cover each cell, so no customer is lost."""
    n_r, n_f = _n_bands(cfg, "recency"), _n_bands(cfg, "frequency")
    path = where("rfm", name, "groups")
    problems, covered = [], set()
    for g in cfg.groups:
        ok = len(g.r) == 2 and len(g.f) == 2 and 1 <= g.r[0] <= g.r[1] <= n_r
        if not (ok and 1 <= g.f[0] <= g.f[1] <= n_f):
            problems.append(
                f"{path}: group {g.label!r} has r={list(g.r)}, f={list(g.f)}; ranges must be "
                f"[lo, hi] within 1..{n_r} (recency) and 1..{n_f} (frequency)"
            )
            continue
        covered |= {(r, f) for r in range(g.r[0], g.r[1] + 1) for f in range(g.f[0], g.f[1] + 1)}
    missing = [
        f"R{r}F{f}" for r in range(1, n_r + 1) for f in range(1, n_f + 1) if (r, f) not in covered
    ]
    if missing and not problems:
        problems.append(f"{path}: no group covers {', '.join(missing)}")
    return problems


def rfm_measures(history: pl.LazyFrame, as_of: datetime, window_days: int | None) -> pl.DataFrame:
    """``customer_id, recency, frequency, monetary`` for customers active in the window.

    recency: days from the last purchase to as_of; frequency: distinct orders (baskets);
    monetary: revenue, null where none of the customer's rows has a revenue.
    """
    per_customer = (
        window(history, as_of, window_days)
        .group_by("customer_id")
        .agg(
            pl.col("timestamp").max().alias("last"),
            pl.col("basket_id").n_unique().alias("frequency"),
            pl.col("revenue").sum().alias("monetary"),
            pl.col("revenue").count().alias("_priced"),
        )
    )
    return per_customer.select(
        "customer_id",
        days_before(as_of, "last").alias("recency"),
        pl.col("frequency").cast(pl.Float64),
        pl.when(pl.col("_priced") > 0).then(pl.col("monetary")).alias("monetary"),
    ).collect()


def fit_rfm(cfg: RFMFamilyConfig, measures: pl.DataFrame) -> RFMEdges:
    """Band edges: configured ones, or quantiles of ``rfm_measures`` (the active customers)."""
    use_m = cfg.monetary or cfg.named
    dims = [d for d in DIMENSIONS if d != "monetary" or use_m]
    fitted = [d for d in dims if _given_edges(cfg, d) is None]
    quantiles = [i / cfg.bins for i in range(1, cfg.bins)]
    row = (
        measures.select(  # every quantile in one parallel pass
            pl.col(d).quantile(q, "linear").alias(f"{d}{i}")
            for d in fitted
            for i, q in enumerate(quantiles)
        ).row(0, named=True)
        if fitted
        else {}
    )

    def edges(dim: str) -> list[float]:
        given = _given_edges(cfg, dim)
        if given is not None:
            return given
        return [float(row[f"{dim}{i}"] or 0.0) for i in range(len(quantiles))]

    return RFMEdges(edges("recency"), edges("frequency"), edges("monetary") if use_m else None)


def _band(column: str, edges: list[float]) -> pl.Expr:
    """0-based band: how many edges the value exceeds; null (no purchase) stays null."""
    value = pl.col(column)
    exceeded = pl.sum_horizontal([(value > e).cast(pl.Int32) for e in edges]) if edges else 0
    return pl.when(value.is_not_null()).then(exceeded).cast(pl.Int32)


def rfm_scores(edges: RFMEdges, measures: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, r, f, m`` (1 = worst) from ``rfm_measures``; null where unmeasured."""
    n_r = edges.n_bands("recency")
    score_m = (
        _band("monetary", edges.monetary) + 1
        if edges.monetary is not None
        else pl.lit(None, dtype=pl.Int32)
    )
    return measures.select(
        "customer_id",
        (n_r - _band("recency", edges.recency)).alias("r"),
        (_band("frequency", edges.frequency) + 1).alias("f"),
        score_m.alias("m"),
    )


def group_label(cfg: RFMFamilyConfig) -> pl.Expr:
    """The named group of each (r, f) cell; the first group listed wins an overlap."""
    expr = pl.lit(UNKNOWN_LABEL)
    for g in reversed(cfg.groups):
        cell = pl.col("r").is_between(g.r[0], g.r[1]) & pl.col("f").is_between(g.f[0], g.f[1])
        expr = pl.when(cell).then(pl.lit(g.label)).otherwise(expr)
    return expr


def rfm_labels(name: str, cfg: RFMFamilyConfig, scores: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, <name>``: ``R4-F2-M3`` codes (``R4-F2`` without M) or group names."""
    if cfg.named:
        label = group_label(cfg)
    elif cfg.monetary:
        label = pl.format("R{}-F{}-M{}", "r", "f", "m")  # null m gives a null label: unknown
    else:
        label = pl.format("R{}-F{}", "r", "f")
    return scores.select("customer_id", label.alias(name))
