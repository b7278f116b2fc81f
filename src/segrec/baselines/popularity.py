"""Global popularity: every customer gets the same ranking, the catalog's best sellers.

The floor every model must clear; on grocery data it is harder to beat than it looks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from segrec.baselines.base import item_popularity
from segrec.recommender import NEVER, History


class Popularity:
    """Items ranked by purchase lines in the history, optionally time-decayed.

    A half-life favours what sells *now* (seasonal and new items) over all-time sellers.
    """

    cold_start = "native"

    def __init__(self, half_life_days: float | None = None) -> None:
        self.half_life_days = half_life_days
        self.name = "popularity"
        self._scores: np.ndarray | None = None

    def fit(self, history: History) -> Popularity:
        scores = item_popularity(history, self.half_life_days).astype(np.float32)
        scores[0] = NEVER
        self._scores = scores
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        if self._scores is None:
            raise RuntimeError("popularity: call fit(history) before score()")
        return np.broadcast_to(self._scores, (customer_ids.len(), self._scores.size)).copy()
