"""``fit_model``: the training stage of the main job (select on validation, refit, save).

Protocol (the evaluation's): the model is trained on the train period and early-stopped on
the validation period's Recall@K over the whole catalog (``trainer.validation_*``: new
items by default). With ``trainer.refit`` it is then trained again, from scratch and for
the selection run's length (its best epochs or optimiser steps: ``trainer.refit_length``),
on train + validation, the history the baselines are fitted on for the test period. The
returned recommender scores customers as of the test cutoff: its features (recent items,
counts, segment labels) come from train + validation.

Both stages checkpoint every epoch under ``<output_dir>/checkpoints/{select,refit}``;
``resume=True`` continues from ``last.ckpt`` (or skips a finished stage).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from segrec.data import RetailData, TimeSplit
from segrec.evaluation.candidates import Candidate
from segrec.evaluation.protocol import SegmentsAt, make_periods
from segrec.models.config import ModelConfig
from segrec.training.config import LoggerConfig, TrainerConfig
from segrec.training.loggers import make_loggers
from segrec.training.loop import TrainingLength, TrainingRun, train_two_tower
from segrec.training.recommender import TwoTowerRecommender
from segrec.training.summary import print_training

SELECTION = "selection.json"


@dataclass
class FitResult:
    """The trained recommender (bound to the test period's history), what training
    measured (validation metrics, epochs, times, throughput) and where it wrote."""

    recommender: TwoTowerRecommender
    metrics: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    def candidate(self) -> Candidate:
        """The trained model as an evaluation candidate: ``evaluate`` calls ``fit(test
        history)``, which binds the history and does not retrain."""
        return Candidate(self.recommender.name, build=lambda: self.recommender)


def fit_model(
    model_cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    logger_cfg: LoggerConfig,
    data: RetailData,
    split: TimeSplit,
    output_dir: Path,
    segments_at: SegmentsAt | None = None,
    seed: int = 42,
    resume: bool = False,
    console: Console | None = None,
) -> FitResult:
    """Train the two-tower model on ``split`` and save it under ``output_dir/model``.

    ``segments_at(as_of)`` gives the segment labels as of a date (the evaluation's
    ``SegmentsAt``; pass the same one to ``segrec.evaluation.evaluate``); None trains
    without segments.
    """
    console = console or Console()
    name = model_cfg.name
    started = time.perf_counter()
    output_dir = Path(output_dir)
    checkpoints, log_dir = output_dir / "checkpoints", output_dir / "logs"
    with console.status("Preparing the validation and test periods ..."):
        validation, test = make_periods(data, split, segments_at or (lambda _: None))
    marker = output_dir / SELECTION
    if resume and marker.exists():
        selected = json.loads(marker.read_text())
        console.print(f"Resuming: model selection done (best epoch {selected['best_epoch']})")
        selection_model = TwoTowerRecommender.load(output_dir / "selection_model", name)
    else:
        console.print(
            f"Training {model_cfg.name} on the train period, early stopping on validation "
            f"Recall@{trainer_cfg.validation_k} ({trainer_cfg.validation_items} items) ..."
        )
        run = train_two_tower(
            model_cfg,
            trainer_cfg,
            validation.history,
            validation,
            segments_at,
            seed,
            checkpoints / "select",
            make_loggers(logger_cfg, log_dir, "select"),
            resume,
        )
        selected = _run_metrics(run)
        TwoTowerRecommender(run.model, run.features, name).save(output_dir / "selection_model")
        marker.write_text(json.dumps(selected, indent=2))
        selection_model = TwoTowerRecommender(run.model, run.features, name)
    final = selection_model
    refit: dict[str, Any] | None = None
    if trainer_cfg.refit:
        length = TrainingLength.of(selected)
        steps = trainer_cfg.refit_length == "steps"
        span = f"{length.steps} step(s)" if steps else f"{length.epochs} epoch(s)"
        console.print(f"Refitting on train + validation for {span} ...")
        run = train_two_tower(
            model_cfg,
            trainer_cfg,
            test.history,
            None,
            segments_at,
            seed,
            checkpoints / "refit",
            make_loggers(logger_cfg, log_dir, "refit"),
            resume,
            tower_weight=selected.get("tower_weight"),
            prior_head=selected.get("prior_head"),
            **length.limits(trainer_cfg.refit_length),
        )
        refit = _run_metrics(run)
        final = TwoTowerRecommender(run.model, run.features, name)
    final.fit(test.history)
    final.save(output_dir / "model")
    metrics = {
        "selection": selected,
        "refit": refit,
        "seconds": round(time.perf_counter() - started, 2),
    }
    paths = {"model": output_dir / "model", "checkpoints": checkpoints, "logs": log_dir}
    (output_dir / "training.json").write_text(json.dumps(metrics, indent=2))
    print_training(metrics, paths, console, trainer_cfg.validation_k)
    return FitResult(final, metrics, paths)


def _run_metrics(run: TrainingRun) -> dict[str, Any]:
    best = next((r for r in run.epoch_metrics if r["epoch"] == run.best_epoch), {})
    return {
        "epochs": run.epochs,
        "best_epoch": run.best_epoch,
        "best_steps": run.best_steps,
        "tower_weight": run.tower_weight,
        "tower_weight_metrics": run.tower_weight_metrics,
        "prior_head": run.prior_head,
        "prior_head_metrics": run.prior_head_metrics,
        "validation": {k: round(v, 5) for k, v in best.items() if k.startswith("val/")},
        "seconds": round(run.seconds, 2),
        "train_seconds": round(run.train_seconds, 2),
        "samples_per_second": round(run.samples_per_second, 1),
        "n_examples": run.n_examples,
        "epoch_metrics": run.epoch_metrics,
    }
