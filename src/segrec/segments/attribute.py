"""Attribute families: a customer column as is, or a numeric one cut into bands.

Attributes are taken as static (known whenever the customer is), so they ignore as_of; a
customer with no value, or a value listed as unknown, gets the ``unknown`` label.
"""

from __future__ import annotations

from itertools import pairwise

import polars as pl

from segrec.segments.config import AttributeFamilyConfig
from segrec.segments.errors import UNKNOWN_LABEL, check_edges, where


def _as_text(column: str, cfg: AttributeFamilyConfig) -> pl.Expr:
    """The column as text, null where it is missing or one of the configured unknown values."""
    text = pl.col(column).cast(pl.Utf8)
    if cfg.unknown_values:
        text = pl.when(text.is_in(list(cfg.unknown_values))).then(None).otherwise(text)
    return text


def _as_number(column: str, cfg: AttributeFamilyConfig) -> pl.Expr:
    return _as_text(column, cfg).cast(pl.Float64, strict=False)


def _is_integral(customers: pl.DataFrame, column: str, cfg: AttributeFamilyConfig) -> bool:
    """Whether band labels may read ``25-34``: integer values and integer edges."""
    edges = cfg.edges or []
    if any(float(e) != int(e) for e in edges):
        return False
    if customers.schema[column].is_integer():
        return True
    values = customers.select(_as_number(column, cfg)).to_series().drop_nulls()
    return bool((values == values.floor()).all())


def band_labels(edges: list[float], integral: bool) -> list[str]:
    """Readable names of the ``len(edges) + 1`` left-closed bands."""
    fmt = [f"{e:g}" for e in edges]
    if integral:
        inner = [f"{a:g}" if b - a == 1 else f"{a:g}-{b - 1:g}" for a, b in pairwise(edges)]
        return [f"<{fmt[0]}", *inner, f"{fmt[-1]}+"]
    inner = [f"[{a}, {b})" for a, b in pairwise(fmt)]
    return [f"<{fmt[0]}", *inner, f">={fmt[-1]}"]


def check_attribute(name: str, cfg: AttributeFamilyConfig, customers: pl.DataFrame) -> list[str]:
    """Problems with this family's config against the customers table (empty: fine)."""
    problems = check_edges(cfg.edges, where("attribute", name, "edges"))
    if cfg.column not in customers.columns or cfg.column == "customer_id":
        attrs = [c for c in customers.columns if c != "customer_id"]
        return [
            *problems,
            f"{where('attribute', name, 'column')}: no customer attribute {cfg.column!r}; "
            f"the customers table has {attrs}",
        ]
    if cfg.labels is not None:
        if cfg.edges is None:
            problems.append(f"{where('attribute', name, 'labels')}: labels need edges")
        elif len(cfg.labels) != len(cfg.edges) + 1:
            problems.append(
                f"{where('attribute', name, 'labels')}: {len(cfg.edges)} edges make "
                f"{len(cfg.edges) + 1} bands, but {len(cfg.labels)} labels are given"
            )
        elif UNKNOWN_LABEL in cfg.labels:
            problems.append(f"{where('attribute', name, 'labels')}: {UNKNOWN_LABEL!r} is reserved")
    if cfg.edges is not None and not customers.schema[cfg.column].is_numeric():
        text = customers.select(_as_text(cfg.column, cfg)).to_series()
        bad = text.filter(text.is_not_null() & text.cast(pl.Float64, strict=False).is_null())
        if bad.len():
            problems.append(
                f"{where('attribute', name, 'edges')}: column {cfg.column!r} is not numeric "
                f"(e.g. {bad[0]!r}); drop edges to use its values as labels, or list such "
                f"values in unknown_values"
            )
    return problems


def assign_attribute(name: str, cfg: AttributeFamilyConfig, customers: pl.DataFrame) -> pl.Series:
    """Each customer's value or band, ``unknown`` where missing, in ``customers``' row order."""
    if cfg.edges is None:
        label = _as_text(cfg.column, cfg)
    else:
        edges = [float(e) for e in cfg.edges]
        labels = list(cfg.labels or band_labels(edges, _is_integral(customers, cfg.column, cfg)))
        value = _as_number(cfg.column, cfg)
        band = pl.sum_horizontal([(value >= e).cast(pl.Int64) for e in edges])  # [e_i, e_i+1)
        label = (
            pl.when(value.is_not_null())
            .then(band)
            .replace_strict(list(range(len(labels))), labels, return_dtype=pl.Utf8)
        )
    return customers.select(label.cast(pl.Utf8).fill_null(UNKNOWN_LABEL).alias(name)).to_series()
