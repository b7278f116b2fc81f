"""The baselines segrec must beat, all behind the ``segrec.recommender`` contract.

Names are imported lazily so that ``segrec.config`` (which needs only ``BaselinesConfig``)
does not import scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BaselinesConfig": "segrec.baselines.config",
    "EASE": "segrec.baselines.ease",
    "ImplicitALS": "segrec.baselines.implicit_models",
    "ImplicitBPR": "segrec.baselines.implicit_models",
    "PersonalFrequency": "segrec.baselines.personal",
    "Popularity": "segrec.baselines.popularity",
    "SegmentPopularity": "segrec.baselines.segment_popularity",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'segrec.baselines' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
