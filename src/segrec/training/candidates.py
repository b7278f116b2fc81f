"""The two-tower model as an evaluation candidate (``segrec.evaluation.candidates``).

Registered in ``SOURCES`` as ``"two_tower": "segrec.training.candidates:two_tower_candidates"``
so that ``evaluation.models=[baselines,two_tower]`` and ``bench/quality.py --models
baselines two_tower`` train and judge it like any baseline: ``fit(history)`` trains with
early stopping on the last ``trainer.holdout_days`` of the history, then refits on all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from segrec.evaluation.candidates import Candidate
from segrec.recommender import History, Recommender

if TYPE_CHECKING:
    from segrec.config import Config
    from segrec.training.loop import TrainingLength
    from segrec.training.recommender import TwoTowerRecommender


def two_tower_candidates(cfg: Config, families: Sequence[str]) -> list[Candidate]:
    """One candidate, configured by ``cfg.model`` and ``cfg.trainer`` (no grid: the model
    selects its own number of epochs)."""
    from segrec.training.trainable import TrainableTwoTower

    segments = getattr(cfg, "segments", None)

    def build() -> TrainableTwoTower:
        return TrainableTwoTower(cfg.model, cfg.trainer, segments, cfg.seed)

    return [Candidate(cfg.model.name, build)]


class TwoTowerSource:
    """The trained two-tower model as the ranker's retrieval source, without leakage.

    The ranker calls this factory for every training window and for the whole history,
    and fits what it returns on the history before each. Reusing the trained weights for
    a window would leak: they were trained on purchases the window labels. So a history
    as of ``trained_before`` or later binds the trained weights (no training), and every
    earlier history binds one *early* model, trained once (no early stopping) on the
    purchases before ``early_before``, the start of the ranker's earliest window, for as
    long as the refit trains (``trainer.refit_length``: the selection run's best epochs or
    steps). The windows see a source a little older than their cutoff, as serving sees a
    model between two trainings: one training instead of one per window.
    """

    def __init__(
        self,
        trained: TwoTowerRecommender,
        length: TrainingLength,
        trained_before: datetime,
        early_before: datetime,
        cfg: Config,
    ) -> None:
        self.trained, self.length, self.cfg = trained, length, cfg
        self.trained_before, self.early_before = trained_before, early_before
        self._early: TwoTowerRecommender | None = None

    def __call__(self) -> Recommender:
        return _Bound(self)

    def weights_for(self, history: History) -> TwoTowerRecommender:
        """An unbound recommender whose weights saw nothing at or after ``history.as_of``."""
        if history.as_of >= self.trained_before:
            return self.trained
        if history.as_of < self.early_before:
            raise ValueError(
                f"{self.trained.name}: no weights trained before {history.as_of} "
                f"(the earliest are from before {self.early_before})"
            )
        if self._early is None:
            self._early = self._train_early(history)
        return self._early

    def _train_early(self, history: History) -> TwoTowerRecommender:
        from segrec.ranking.state import history_before
        from segrec.training.loop import train_two_tower
        from segrec.training.recommender import TwoTowerRecommender
        from segrec.training.trainable import history_segments_at

        segments_at = history_segments_at(getattr(self.cfg, "segments", None), history)
        labels = segments_at(self.early_before) if segments_at else history.segments
        early = history_before(history, self.early_before, labels)
        trainer = replace(self.cfg.trainer, progress_bar=False)
        limits = self.length.limits(trainer.refit_length)
        trained = self.trained.model  # its validated tower weight and head, as a refit's
        weight = float(trained.tower_weight) if trained.cfg.tower_weights is not None else None
        run = train_two_tower(
            self.cfg.model,
            trainer,
            early,
            None,
            segments_at,
            self.cfg.seed,
            tower_weight=weight,
            prior_head=trained.head_length,
            **limits,
        )
        return TwoTowerRecommender(run.model, run.features, self.trained.name)


class _Bound:
    """What ``TwoTowerSource()`` returns: ``fit`` binds the right weights to the history."""

    cold_start = "native"

    def __init__(self, source: TwoTowerSource) -> None:
        self.source, self.name = source, source.trained.name
        self._fitted: TwoTowerRecommender | None = None

    def fit(self, history: History) -> _Bound:
        from segrec.training.recommender import TwoTowerRecommender

        weights = self.source.weights_for(history)
        self._fitted = TwoTowerRecommender(weights.model, weights.features, self.name).fit(history)
        return self

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        return self._fitted.score(customer_ids)
