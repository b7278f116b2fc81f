"""``TrainableTwoTower``: the two-tower model for registries whose ``fit`` must train.

``fit(history)`` follows the evaluation's protocol inside the history it is given: the
last ``trainer.holdout_days`` are held out to early-stop on Recall@K, then (with
``trainer.refit``) the model is trained again on the whole history for the selection
run's length (``trainer.refit_length``). Quiet: no loggers, no checkpoints, no progress bar.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl

from segrec.data import RetailData, label_period
from segrec.evaluation.metrics import build_truth
from segrec.evaluation.protocol import Period, SegmentsAt, customer_labels
from segrec.models.config import ModelConfig
from segrec.recommender import History
from segrec.segments import SegmentsConfig, assign_segments
from segrec.training.config import TrainerConfig
from segrec.training.loop import train_two_tower
from segrec.training.recommender import TwoTowerRecommender

try:  # Python 3.11+
    from typing import Self
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import Self


def history_segments_at(cfg: SegmentsConfig | None, history: History) -> SegmentsAt | None:
    """Labels of ``cfg``'s families at any date before ``history.as_of``, read from the
    history alone (its interactions, customers and items)."""
    if cfg is None or not cfg.families:
        return None
    data = RetailData(history.interactions, history.customers, history.items, [], [])
    return lambda as_of: assign_segments(cfg, data, as_of)


def holdout(history: History, days: int, segments_at: SegmentsAt | None) -> tuple[History, Period]:
    """(training history, validation period) of the last ``days`` of ``history``."""
    start = history.as_of - timedelta(days=days)
    ts = pl.col("timestamp")
    before = history.interactions.filter(ts < start)
    after = label_period(before, history.interactions.filter(ts >= start))
    if before.is_empty() or after.is_empty():
        raise ValueError(
            f"trainer.holdout_days: holding out the last {days} days of the history "
            f"(as of {history.as_of:%Y-%m-%d}) leaves {before.height} training and "
            f"{after.height} validation rows; both must be non-empty"
        )
    segments = segments_at(start) if segments_at is not None else history.segments
    train = replace(history, interactions=before, as_of=start, segments=segments)
    truth = build_truth(after, history.item_map)
    return train, Period(
        "holdout", train, truth, customer_labels(truth.customer_ids, train, segments)
    )


class TrainableTwoTower:
    """``fit`` trains (early stopping on a holdout, then refit), ``score`` scores."""

    cold_start = "native"

    def __init__(
        self,
        model: ModelConfig,
        trainer: TrainerConfig,
        segments: SegmentsConfig | None = None,
        seed: int = 42,
    ):
        self.model_cfg, self.seed, self.segments = model, seed, segments
        self.trainer_cfg = replace(trainer, progress_bar=False)
        self.name = model.name
        self._fitted: TwoTowerRecommender | None = None

    def fit(self, history: History) -> Self:
        segments_at = history_segments_at(self.segments, history)
        train, validation = holdout(history, self.trainer_cfg.holdout_days, segments_at)
        run = train_two_tower(
            self.model_cfg, self.trainer_cfg, train, validation, segments_at, self.seed
        )
        if self.trainer_cfg.refit:
            run = train_two_tower(
                self.model_cfg,
                self.trainer_cfg,
                history,
                None,
                segments_at,
                self.seed,
                tower_weight=run.tower_weight,
                prior_head=run.prior_head,
                **run.length.limits(self.trainer_cfg.refit_length),
            )
        self._fitted = TwoTowerRecommender(run.model, run.features, self.name).fit(history)
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        return self._fitted.score(customer_ids)
