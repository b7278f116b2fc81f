"""Evaluation: full-catalog ranking metrics, breakdowns, tuning and the report.

Entry point: ``evaluate(cfg, data, split)`` (see ``segrec.evaluation.run``). Names are
imported lazily so that ``segrec.config`` (which needs only ``EvaluationConfig``) stays
light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "breakdown": "segrec.evaluation.breakdown",
    "Candidate": "segrec.evaluation.candidates",
    "SOURCES": "segrec.evaluation.candidates",
    "load_candidates": "segrec.evaluation.candidates",
    "EvaluationConfig": "segrec.evaluation.config",
    "Truth": "segrec.evaluation.metrics",
    "build_truth": "segrec.evaluation.metrics",
    "hits": "segrec.evaluation.metrics",
    "rank_metrics": "segrec.evaluation.metrics",
    "Period": "segrec.evaluation.protocol",
    "attribute_segments": "segrec.evaluation.protocol",
    "customer_metrics": "segrec.evaluation.protocol",
    "make_period": "segrec.evaluation.protocol",
    "make_periods": "segrec.evaluation.protocol",
    "rank": "segrec.evaluation.protocol",
    "EvaluationResult": "segrec.evaluation.run",
    "ModelRun": "segrec.evaluation.run",
    "evaluate": "segrec.evaluation.run",
    "evaluate_candidates": "segrec.evaluation.run",
    "write_result": "segrec.evaluation.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'segrec.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
