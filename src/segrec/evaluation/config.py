"""Typed configuration of the evaluation (``conf/evaluation/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvaluationConfig:
    """How models are compared.

    ``models`` names entries of ``segrec.evaluation.registry.SOURCES`` (each gives one or
    more candidates). Tuning picks, per candidate, the grid point with the best mean
    ``tune_metric``@``tune_k`` (null: the largest K) on the validation period's
    ``tune_items``; the winner is refitted on train + validation and judged on test.
    """

    models: list[str] = field(default_factory=lambda: ["baselines"])
    ks: list[int] = field(default_factory=lambda: [10, 20])
    tune: bool = True
    tune_metric: str = "ndcg"
    tune_k: int | None = None
    tune_items: str = "all"
    # Segment families broken down in the report (null: every family of the segments).
    families: list[str] | None = None
    # Memory of one float32 score chunk (customers × catalog); bounds peak memory.
    chunk_memory_mb: float = 256.0
    # Written under paths.output_dir.
    output_subdir: str = "evaluation"
