"""Personal top-frequency: "what this customer bought most", filled with popularity.

In grocery most of a basket is bought again, so this simple baseline is the one a learned
model most often fails to beat on all items (it cannot, by construction, recommend
anything new: its "new items" ranking is popularity).
"""

from __future__ import annotations

import numpy as np

from segrec.baselines.base import FallbackRecommender, item_popularity, unit_scale
from segrec.recommender import History, Recommender

# Scores of bought items live around OFFSET (in log space), popularity fill in [0, 1):
# every bought item ranks above every other one, and float32 keeps their order.
OFFSET = np.float32(1000.0)


class PersonalFrequency(FallbackRecommender):
    """Items ranked by the customer's own (time-decayed) purchase lines, then by popularity.

    With a half-life, a habit that stopped ranks below a current one. Customers absent from
    the history are scored by ``fallback``.
    """

    def __init__(
        self,
        half_life_days: float | None = None,
        popularity_half_life_days: float | None = None,
        fallback: Recommender | None = None,
    ) -> None:
        super().__init__(fallback)
        self.half_life_days = half_life_days
        self.popularity_half_life_days = popularity_half_life_days
        self.name = "personal_frequency"

    def _fit(self, history: History) -> None:
        self._matrix = history.matrix(self.half_life_days)
        self._fill = unit_scale(item_popularity(history, self.popularity_half_life_days))

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(self._fill, (len(rows), self._fill.size)).copy()
        own = self._matrix[rows].tocoo()
        tiny = np.float32(1e-30)  # decayed weights can underflow; log needs a positive value
        out[own.row, own.col] = OFFSET + np.log(np.maximum(own.data, tiny))
        return out
