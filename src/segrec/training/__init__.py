"""Training the two-tower model: examples, the Lightning task, callbacks, ``fit_model``.

The configs (``TrainerConfig``, ``LoggerConfig``) import without torch; everything else
loads on first use, so ``segrec.config`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from segrec.training.config import LoggerConfig, TrainerConfig

if TYPE_CHECKING:
    from segrec.training.features import FeatureSpace
    from segrec.training.fit import FitResult, fit_model
    from segrec.training.loop import TrainingRun, train_two_tower
    from segrec.training.recommender import TwoTowerRecommender
    from segrec.training.summary import print_summary
    from segrec.training.trainable import TrainableTwoTower

_LAZY = {
    "FeatureSpace": "segrec.training.features",
    "FitResult": "segrec.training.fit",
    "fit_model": "segrec.training.fit",
    "TrainingRun": "segrec.training.loop",
    "train_two_tower": "segrec.training.loop",
    "TrainableTwoTower": "segrec.training.trainable",
    "TwoTowerRecommender": "segrec.training.recommender",
    "print_summary": "segrec.training.summary",
}

__all__ = [
    "FeatureSpace",
    "FitResult",
    "LoggerConfig",
    "TrainableTwoTower",
    "TrainerConfig",
    "TrainingRun",
    "TwoTowerRecommender",
    "fit_model",
    "print_summary",
    "train_two_tower",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segrec.training' has no attribute {name!r}")
