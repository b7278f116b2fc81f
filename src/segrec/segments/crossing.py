"""Crossed segment families: ``age_group × region`` labels a customer by both at once.

Segment popularity (a baseline) and the ranker's segment features both use crossings; one
module says how a crossing is named and labelled, so that the two mean the same thing by
the same name. A crossed label is missing when any of its parts is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

CROSS = " × "


def crossing(families: Sequence[str]) -> str:
    """The name of the crossing of ``families`` (one family: its own name)."""
    return CROSS.join(families)


def parts(family: str, columns: Sequence[str] = ()) -> list[str]:
    """The families a (possibly crossed) family is made of; a column of that very name
    among ``columns`` is the family itself."""
    return [family] if family in columns else family.split(CROSS)


def family_labels(frame: pl.DataFrame, family: str) -> pl.Series:
    """Utf8 labels of ``family`` for every row of ``frame`` (one column per plain family)."""
    members = parts(family, frame.columns)
    missing = [f for f in members if f not in frame.columns]
    if missing:
        known = [c for c in frame.columns if c != "customer_id"]
        raise ValueError(f"segments: unknown segment families {missing}; known: {known}")
    labels = pl.concat_str([pl.col(f).cast(pl.Utf8) for f in members], separator=CROSS)
    return frame.select(labels.alias(family)).to_series()


def label_of(labels: Mapping[str, str | None], family: str) -> str | None:
    """One customer's label in ``family`` from its plain families' ``labels``."""
    values = [labels.get(f) for f in parts(family, list(labels))]
    return None if any(v is None for v in values) else CROSS.join(values)  # type: ignore[arg-type]
