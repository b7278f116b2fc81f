"""Tiny hand-made data sets whose right answers can be worked out on paper."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from segrec.data import IdMap, label_period
from segrec.recommender import History

AS_OF = datetime(2024, 3, 1)


def interactions(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """(customer, item, days before AS_OF) → canonical interaction rows."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [AS_OF - timedelta(days=r[2]) for r in rows],
            "quantity": [1.0] * len(rows),
            "revenue": [1.0] * len(rows),
            "basket_id": [f"{r[0]}-{r[2]}" for r in rows],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )


def history(
    rows: list[tuple[str, str, int]],
    items: list[str],
    segments: dict[str, dict[str, str]] | None = None,
) -> History:
    """A History over catalog ``items``; ``segments``: family → {customer: label}."""
    frame = interactions(rows)
    seg = None
    if segments:
        customers = sorted({c for labels in segments.values() for c in labels})
        seg = pl.DataFrame(
            {"customer_id": customers}
            | {f: [labels.get(c, "unknown") for c in customers] for f, labels in segments.items()}
        )
    customers = pl.DataFrame({"customer_id": sorted(set(frame["customer_id"]))})
    return History(
        interactions=frame,
        as_of=AS_OF,
        customers=customers,
        items=pl.DataFrame({"item_id": items}),
        item_map=IdMap(pl.Series(items)),
        segments=seg,
    )


def period(hist: History, rows: list[tuple[str, str]]) -> pl.DataFrame:
    """Labelled evaluation rows (customer, item) just after the history."""
    frame = interactions([(c, i, -1) for c, i in rows])
    return label_period(hist.interactions, frame)


class Fixed:
    """A recommender whose scores are given: {customer: scores over the catalog columns};
    other customers get zeros. Column 0 is set to -inf as the contract requires."""

    name, cold_start = "fixed", "native"

    def __init__(self, rows: dict[str, list[float]], n_columns: int) -> None:
        self.rows, self.n_columns = rows, n_columns

    def fit(self, history: History) -> Fixed:
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        out = np.zeros((customer_ids.len(), self.n_columns), np.float32)
        for i, c in enumerate(customer_ids.to_list()):  # tests only: a handful of rows
            if c in self.rows:
                out[i, 1:] = self.rows[c]
        out[:, 0] = -np.inf
        return out
