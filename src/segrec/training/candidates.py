"""The two-tower model as an evaluation candidate (``segrec.evaluation.candidates``).

Registered in ``SOURCES`` as ``"two_tower": "segrec.training.candidates:two_tower_candidates"``
so that ``evaluation.models=[baselines,two_tower]`` and ``bench/quality.py --models
baselines two_tower`` train and judge it like any baseline: ``fit(history)`` trains with
early stopping on the last ``trainer.holdout_days`` of the history, then refits on all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from segrec.evaluation.candidates import Candidate

if TYPE_CHECKING:
    from segrec.config import Config


def two_tower_candidates(cfg: Config, families: Sequence[str]) -> list[Candidate]:
    """One candidate, configured by ``cfg.model`` and ``cfg.trainer`` (no grid: the model
    selects its own number of epochs)."""
    from segrec.training.trainable import TrainableTwoTower

    segments = getattr(cfg, "segments", None)

    def build() -> TrainableTwoTower:
        return TrainableTwoTower(cfg.model, cfg.trainer, segments, cfg.seed)

    return [Candidate(cfg.model.name, build)]
