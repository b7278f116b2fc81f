"""One training run: history → examples → Lightning ``Trainer`` → the best model.

Used by ``fit_model`` (the main job: checkpoints, loggers, resume) and by
``TrainableTwoTower`` (the scoring contract: a quiet run without checkpoints or loggers).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import lightning as L
import polars as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader

from segrec.evaluation.protocol import Period
from segrec.models.config import ModelConfig
from segrec.models.two_tower import TwoTower
from segrec.recommender import History, compute_threads
from segrec.training.callbacks import RetrievalValidation, Throughput
from segrec.training.config import TrainerConfig, check_refit_length
from segrec.training.copurchase import fit_copurchase
from segrec.training.examples import (
    EpochBatches,
    ExampleBatches,
    Examples,
    SegmentsAt,
    build_examples,
    snapshot_dates,
)
from segrec.training.features import FeatureSpace
from segrec.training.module import TwoTowerTask, make_model
from segrec.training.recommender import Setting
from segrec.training.sequences import PurchaseSequences

LAST = "last"


class Limits(TypedDict, total=False):
    """``train_two_tower``'s length keywords."""

    max_epochs: int
    max_steps: int


@dataclass(frozen=True)
class TrainingLength:
    """How long a selection run trained to its best epoch: epochs and optimiser steps."""

    epochs: int
    steps: int

    @classmethod
    def of(cls, selected: dict[str, Any]) -> TrainingLength:
        """From a selection run's metrics (``selection.json``)."""
        if "best_steps" not in selected:
            raise ValueError(
                "the selection run's metrics have no best_steps (written by an older "
                "segrec): train again without resume"
            )
        return cls(int(selected["best_epoch"]), int(selected["best_steps"]))

    def limits(self, refit_length: str) -> Limits:
        """``train_two_tower``'s ``max_epochs`` / ``max_steps`` that repeat this length on
        another history (``trainer.refit_length``): the same epochs, or the same steps
        whatever the history's size."""
        check_refit_length(refit_length)
        if refit_length == "epochs":
            return {"max_epochs": self.epochs}
        # Enough epochs for the steps on a history of any size; the steps stop it.
        return {"max_epochs": max(self.steps, 1), "max_steps": self.steps}


@dataclass
class TrainingRun:
    """The trained model and how the run went. ``best_epoch`` counts from 1, and
    ``best_steps`` counts the optimiser steps to its end; ``train_seconds`` and
    ``samples_per_second`` count training batches only (this process's epochs, validation
    excluded)."""

    model: TwoTower
    features: FeatureSpace
    epochs: int
    best_epoch: int
    best_steps: int
    best_score: float
    seconds: float
    train_seconds: float
    samples_per_second: float
    n_examples: int
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    tower_weight: float = 1.0
    tower_weight_metrics: list[dict[str, float]] = field(default_factory=list)
    prior_head: int = 0
    prior_head_metrics: list[dict[str, float]] = field(default_factory=list)

    @property
    def length(self) -> TrainingLength:
        """Its length to the best epoch, for a refit that repeats it."""
        return TrainingLength(self.best_epoch, self.best_steps)


def prepare(
    cfg: ModelConfig, history: History, segments_at: SegmentsAt | None
) -> tuple[FeatureSpace, PurchaseSequences, Examples]:
    """Vocabularies, sorted purchase lines and training examples of ``history``."""
    snapshots: list[tuple[Any, pl.DataFrame | None]] = []
    if segments_at is not None and cfg.use_segments:
        first = history.interactions["timestamp"].min()
        dates = snapshot_dates(first, history.as_of, cfg.segment_snapshot_days)  # type: ignore[arg-type]
        # Independent, and mostly polars and FAISS work, which release the GIL: a thread
        # per core (Ta-Feng's five snapshots, 2 cores: 1.6 -> 0.9 s).
        with ThreadPoolExecutor(max_workers=compute_threads()) as pool:
            snapshots = list(zip(dates, pool.map(segments_at, dates), strict=True))
    frames = [f for _, f in snapshots if f is not None]
    if history.segments is not None:
        frames.append(history.segments)
    labels = pl.concat(frames, how="vertical_relaxed") if frames and cfg.use_segments else None
    features = FeatureSpace.fit(cfg, history.item_map, history.items, history.interactions, labels)
    sequences = PurchaseSequences.build(history.interactions, features.item_map)
    examples = build_examples(
        sequences, features, history.segments, snapshots or None, cfg.repeat_weight
    )
    return features, sequences, examples


def _loader(examples: Examples, batch_size: int, seed: int) -> DataLoader:
    sampler = EpochBatches(len(examples), batch_size, seed)
    return DataLoader(ExampleBatches(examples), batch_size=None, sampler=sampler, num_workers=0)


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*Total length of .* across ranks is zero.*")
    # Lightning's own use of torch's pytree API, deprecated in torch 2.13: nothing a user of
    # segrec can act on, printed on every fit.
    warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\).*")


def train_two_tower(
    cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    history: History,
    validation: Period | None,
    segments_at: SegmentsAt | None = None,
    seed: int = 0,
    checkpoint_dir: Path | None = None,
    loggers: list[Logger] | None = None,
    resume: bool = False,
    max_epochs: int | None = None,
    callbacks: Sequence[L.Callback] = (),
    tower_weight: float | None = None,
    max_steps: int | None = None,
    prior_head: int | None = None,
) -> TrainingRun:
    """Train on ``history``; with ``validation`` (a sample of at most
    ``trainer.validation_customers`` of its customers), early-stop on its Recall@K and return the
    best epoch's weights, choose the towers' weight among ``model.tower_weights`` on it
    (the smallest within one standard error of the best: the cosine, fitted to the
    training period, must earn its weight beyond the validation month's noise), then the
    prior's head among ``model.prior_heads`` on its NDCG@K. Without
    ``validation``, ``tower_weight`` and ``prior_head`` are set (a refit's, from its
    selection run).
    ``resume`` continues from ``checkpoint_dir/last.ckpt`` if any; ``callbacks`` are added
    to the trainer's."""
    started = time.perf_counter()
    cfg.check()  # before the features and examples, not when the model is built
    trainer_cfg.check()  # the refit's settings too: before training, not at the refit
    _quiet_lightning()
    if trainer_cfg.num_threads:
        torch.set_num_threads(trainer_cfg.num_threads)
    L.seed_everything(seed, workers=True, verbose=False)
    features, sequences, examples = prepare(cfg, history, segments_at)
    counts = examples.target_counts(len(history.item_map) + 1)
    copurchase = fit_copurchase(cfg, history, features) if cfg.copurchase_rank else None
    model = make_model(cfg, features, copurchase, examples)
    task = TwoTowerTask(
        model,
        counts,
        examples.n_lines / len(examples),
        seed,
        examples,
        sparse_ids=trainer_cfg.sparse_customer_ids,
    )
    throughput = Throughput()
    callbacks = [throughput, *callbacks]
    validator = None
    if validation is not None:
        if trainer_cfg.validation_customers is not None:
            validation = validation.sample(trainer_cfg.validation_customers, seed)
        validator = RetrievalValidation(
            features,
            validation,
            trainer_cfg.validation_k,
            trainer_cfg.validation_items,
            chunk_memory_mb=trainer_cfg.validation_chunk_mb,
            sequences=sequences if validation.history is history else None,
            inputs_memory_mb=trainer_cfg.validation_inputs_mb,
        )
        callbacks.append(validator)
        callbacks.append(
            EarlyStopping(
                validator.monitor,
                patience=trainer_cfg.patience,
                mode="max",
                check_on_train_epoch_end=True,
            )
        )
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = ModelCheckpoint(
            dirpath=checkpoint_dir,
            filename="epoch{epoch:03d}",
            auto_insert_metric_name=False,
            monitor=validator.monitor if validator else None,
            mode="max",
            save_top_k=1,
            save_last=True,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
        )
        callbacks.append(checkpoint)
    if trainer_cfg.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=20))
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        strategy=trainer_cfg.strategy,
        precision=trainer_cfg.precision,  # type: ignore[arg-type]
        max_epochs=max_epochs or trainer_cfg.max_epochs,
        max_steps=max_steps or -1,
        min_epochs=trainer_cfg.min_epochs,
        logger=loggers or False,
        callbacks=callbacks,
        enable_checkpointing=checkpoint is not None,
        enable_progress_bar=trainer_cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,
        log_every_n_steps=trainer_cfg.log_every_n_steps,
        default_root_dir=checkpoint_dir,
    )
    last = checkpoint_dir / f"{LAST}.ckpt" if checkpoint_dir is not None else None
    resuming = resume and last is not None and last.exists()
    loader = _loader(examples, cfg.batch_size, seed)
    trainer.fit(task, train_dataloaders=loader, ckpt_path=LAST if resuming else None)
    best_epoch, best_score = trainer.current_epoch, float("nan")
    if validator is not None:
        if validator.best is not None and validator.best_state is not None and not resuming:
            task.load_state_dict(validator.best_state)
            best_epoch, best_score = int(validator.best["epoch"]), validator.best[validator.monitor]
        elif checkpoint is not None and checkpoint.best_model_path:
            # Resumed: the best epoch may predate this process, so read it back.
            state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
            task.load_state_dict(state["state_dict"])
            best_epoch, best_score = (
                int(state["epoch"]) + 1,
                float(cast(torch.Tensor, checkpoint.best_model_score)),
            )
    # Without validation the run ends where it stopped, perhaps mid-epoch (max_steps).
    best_steps = best_epoch * len(loader) if validator is not None else trainer.global_step
    weight_metrics: list[dict[str, float]] = []
    model = task.model
    if cfg.tower_weights is not None and validator is not None:
        # The best epoch was validated at weight 1 (the buffer's value in training); a
        # resumed run's best may predate this process, so it is scored again.
        scored = {} if resuming or validator.best is None else {1.0: validator.best}
        tower_weight, weight_metrics = choose_setting(
            task,
            validator,
            "tower_weight",
            sorted(cfg.tower_weights),
            lambda weight: Setting(weight, 0),
            validator.monitor,
            scored,
            within_error=True,
        )
    tower_weight = 1.0 if tower_weight is None else tower_weight
    if cfg.tower_weights is not None:
        model.set_tower_weight(tower_weight)
    head_metrics: list[dict[str, float]] = []
    if cfg.prior_heads is not None and validator is not None:
        # Head 0 is the model as it stands: measured with the chosen weight, if any.
        at_weight = [r for r in weight_metrics if r["tower_weight"] == tower_weight]
        prior_head, head_metrics = choose_setting(
            task,
            validator,
            "prior_head",
            cfg.prior_heads,
            lambda head: Setting(tower_weight, head),
            validator.ranking_monitor,
            {0: at_weight[0]} if at_weight else {},
        )
    prior_head = int(prior_head or 0)
    if cfg.prior_heads is not None:
        model.set_prior_head(prior_head)
    return TrainingRun(
        model=task.model.cpu().eval(),
        features=features,
        epochs=trainer.current_epoch,
        best_epoch=best_epoch,
        best_steps=best_steps,
        best_score=best_score,
        seconds=time.perf_counter() - started,
        train_seconds=throughput.seconds,
        samples_per_second=throughput.samples_per_second,
        n_examples=examples.n_lines,
        epoch_metrics=validator.results if validator else [],
        tower_weight=tower_weight,
        tower_weight_metrics=weight_metrics,
        prior_head=prior_head,
        prior_head_metrics=head_metrics,
    )


def choose_setting(
    task: TwoTowerTask,
    validator: RetrievalValidation,
    name: str,
    values: Sequence[float],
    setting: Callable[[Any], Setting],
    metric: str,
    measured: Mapping[float, dict[str, float]],
    within_error: bool = False,
) -> tuple[Any, list[dict[str, float]]]:
    """The value of ``values`` under which (``setting``: the model's setting with it) the
    model scores best on the validator's ``metric`` (the first of equals), and every
    value's validation metrics as rows keyed ``name``; ``measured``: metrics already known
    for some values. The others are scored in one pass for all. The model is left as it
    was: the caller sets it to the value it keeps.

    ``within_error``: the first value instead whose ``metric`` is within one standard
    error (``metric + '_se'``) of the best (the one-standard-error rule), ``values`` being
    ordered from the setting to prefer, within noise, to the least preferred.
    """
    missing = [value for value in values if value not in measured]
    scored = dict(
        zip(missing, validator.evaluate_settings(task, [setting(v) for v in missing]), strict=True)
        if missing
        else ()
    )
    rows = []
    for value in values:
        metrics = measured[value] if value in measured else scored[value]
        scores = {k: v for k, v in metrics.items() if k.startswith("val/")}
        rows.append({name: float(value), **scores})
    best = max(range(len(rows)), key=lambda i: rows[i][metric])  # the first of equals
    if within_error:
        error = rows[best].get(f"{metric}_se", math.nan)
        floor = rows[best][metric] - (error if math.isfinite(error) else 0.0)
        best = next((i for i, row in enumerate(rows) if row[metric] >= floor), best)
    return values[best], rows
