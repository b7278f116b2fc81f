"""Hyper-parameter choice on the validation period, and the choice of cold-start fallback.

Both fit on the train period and score the validation period, so the test period is
touched once per model, by the final refit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from segrec.data import COLD
from segrec.evaluation.candidates import Candidate
from segrec.evaluation.protocol import Period, customer_metrics
from segrec.recommender import Recommender

FallbackFactory = Callable[[], "Recommender | None"]
MIN_COLD = 50


@dataclass(frozen=True)
class Objective:
    """Mean ``metric``@``k`` over the period's customers with ``items`` (all|new|repeat)."""

    metric: str = "ndcg"
    k: int = 20
    items: str = "all"
    chunk_size: int | None = None

    @property
    def column(self) -> str:
        return f"{self.metric}@{self.k}"

    def value(self, model: Recommender, period: Period, only_cold: bool = False) -> float:
        """Mean of the objective; NaN when no customer qualifies."""
        frame = customer_metrics(model, period, [self.k], [self.items], self.chunk_size)
        if only_cold:
            cold = period.labels.filter(period.labels["customer_status"] == COLD)
            frame = frame.join(cold.select("customer_id"), on="customer_id")
        mean = frame[self.column].mean() if frame.height else None
        return float(mean) if mean is not None else math.nan  # type: ignore[arg-type]


def tune(
    candidate: Candidate,
    validation: Period,
    objective: Objective,
    fallback: FallbackFactory,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The best grid point of ``candidate`` on ``validation`` and every trial's result.

    A grid of one point is returned as is, unfitted (nothing to choose). Ties keep the
    first point, so listing the default first makes it win ties.
    """
    points = candidate.points()
    if len(points) == 1:
        return points[0], []
    trials: list[dict[str, Any]] = []
    for params in points:
        model = candidate.make(params, fallback()).fit(validation.history)
        trials.append({"params": params, objective.column: objective.value(model, validation)})
    best = max(trials, key=lambda t: _rankable(t[objective.column]))
    return best["params"], trials


def choose_fallback(
    options: Sequence[tuple[str, Recommender]],
    validation: Period,
    objective: Objective,
) -> tuple[str, list[dict[str, Any]]]:
    """The option (name, unfitted model) that best serves the validation period's cold
    customers, or all its customers when it has fewer than ``MIN_COLD`` cold ones (a
    choice made on a handful of customers is noise). Returns its name and the trials."""
    has_cold = (validation.labels["customer_status"] == COLD).sum() >= MIN_COLD
    trials: list[dict[str, Any]] = []
    for name, model in options:
        value = objective.value(model.fit(validation.history), validation, only_cold=has_cold)
        trials.append({"fallback": name, objective.column: value, "cold_only": has_cold})
    best = max(trials, key=lambda t: _rankable(t[objective.column]))
    return best["fallback"], trials


def _rankable(value: float) -> float:
    return -math.inf if math.isnan(value) else value
