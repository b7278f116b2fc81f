"""Plumbing shared by the baselines: the warm/cold split of a score call, and score helpers.

A personalised baseline (personal frequency, ALS, BPR, EASE) has nothing to say about a
customer who is absent from its history. Rather than returning zeros (a ranking by item
index), it hands those customers to a fallback, by default segment popularity, and says so
in ``cold_start`` so that reports can print how cold customers were scored.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from segrec.recommender import NEVER, History, Recommender


class FallbackRecommender:
    """Base of the baselines that score only customers their history knows.

    Subclasses implement ``_fit(history)``, ``_rows(customer_ids)`` (row in their own
    model, -1 where they cannot score) and ``_score_rows(rows)`` ((len(rows), n_columns)
    float32). ``score`` stitches their rows and the fallback's rows together.
    """

    name = "baseline"

    def __init__(self, fallback: Recommender | None = None) -> None:
        self.fallback = fallback
        self._history: History | None = None

    @property
    def cold_start(self) -> str:
        return self.fallback.name if self.fallback is not None else "none (zero scores)"

    @property
    def history(self) -> History:
        if self._history is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        return self._history

    def fit(self, history: History) -> FallbackRecommender:
        self._history = history
        self._fit(history)
        if self.fallback is not None:
            self.fallback.fit(history)
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        customer_ids = customer_ids.cast(pl.Utf8)
        rows = self._rows(customer_ids)
        known = rows >= 0
        if known.all() and len(rows):
            out = self._score_rows(rows)  # the usual chunk: no copy
            out[:, 0] = NEVER
            return out
        out = np.zeros((len(rows), self.history.n_columns), dtype=np.float32)
        if known.any():
            out[known] = self._score_rows(rows[known])
        if self.fallback is not None and not known.all():
            out[~known] = self.fallback.score(customer_ids.filter(pl.Series(~known)))
        out[:, 0] = NEVER
        return out

    def _fit(self, history: History) -> None:
        raise NotImplementedError

    def _rows(self, customer_ids: pl.Series) -> np.ndarray:
        """Default: the customer's row in ``history.matrix()``, -1 for customers not in it."""
        return warm_rows(self.history, customer_ids)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def warm_rows(history: History, customer_ids: pl.Series) -> np.ndarray:
    """Row of each customer in ``history.matrix()``, -1 for customers absent from it."""
    rows = history.customer_rows(customer_ids)
    return np.where(rows > 0, rows, -1)


def item_popularity(history: History, half_life_days: float | None = None) -> np.ndarray:
    """Purchase lines per catalog item (optionally time-decayed), float64 (n_columns,)."""
    return np.asarray(history.matrix(half_life_days).sum(axis=0), dtype=np.float64).ravel()


def unit_scale(values: np.ndarray) -> np.ndarray:
    """``values`` scaled into [0, 1) (float32), order kept: a filler that ranks below 1."""
    top = float(values.max()) if values.size else 0.0
    scaled = 0.999 * values / top if top > 0 else np.zeros_like(values)
    return scaled.astype(np.float32)
