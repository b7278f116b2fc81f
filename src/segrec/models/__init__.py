"""The two-tower retrieval model (torch).

``ModelConfig`` imports without torch (the top-level config reads it); the torch classes
load on first use, so ``import segrec.models.config`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from segrec.models.config import ModelConfig

if TYPE_CHECKING:
    from segrec.models.loss import SampledSoftmax, full_softmax_loss
    from segrec.models.towers import CustomerTower, HistoryPooling, ItemTower, TowerSizes
    from segrec.models.two_tower import TwoTower

_LAZY = {
    "CustomerTower": "segrec.models.towers",
    "HistoryPooling": "segrec.models.towers",
    "ItemTower": "segrec.models.towers",
    "TowerSizes": "segrec.models.towers",
    "TwoTower": "segrec.models.two_tower",
    "SampledSoftmax": "segrec.models.loss",
    "full_softmax_loss": "segrec.models.loss",
}

__all__ = [
    "CustomerTower",
    "HistoryPooling",
    "ItemTower",
    "ModelConfig",
    "SampledSoftmax",
    "TowerSizes",
    "TwoTower",
    "full_softmax_loss",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segrec.models' has no attribute {name!r}")
