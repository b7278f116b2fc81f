"""Shared set-up of the training tests: the small synthetic data and tiny configs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L

from segrec.config import Config
from segrec.data import RetailData, TimeSplit
from segrec.evaluation.protocol import Period, attribute_segments, make_periods
from segrec.models import ModelConfig
from segrec.pipeline import prepare_data
from segrec.training.config import LoggerConfig, TrainerConfig
from segrec.training.loop import TrainingRun, train_two_tower
from tests.helpers import SMALL, compose_config

TINY_MODEL = ModelConfig(
    dim=16, hidden=32, segment_dim=4, history_len=5, batch_size=64, segment_snapshot_days=30
)
TINY_TRAINER = TrainerConfig(max_epochs=2, patience=5, progress_bar=False, num_threads=1)
NO_LOGGER = LoggerConfig(csv=True, tensorboard=False)


def small_data(work: Path) -> tuple[Config, RetailData, TimeSplit]:
    cfg = compose_config(work, SMALL)
    data, split = prepare_data(cfg.data, work / "out")
    return cfg, data, split


def periods(data: RetailData, split: TimeSplit) -> tuple[Period, Period]:
    return make_periods(data, split, segments_at(data))


def segments_at(data: RetailData):
    return lambda as_of: attribute_segments(data.customers)


def run_training(
    work: Path,
    max_epochs: int,
    resume: bool = False,
    callbacks: Sequence[L.Callback] = (),
    trainer: TrainerConfig = TINY_TRAINER,
) -> TrainingRun:
    """Train on the small set's train period with checkpoints in ``work/ckpt``."""
    _, data, split = small_data(work)
    validation, _ = periods(data, split)
    return train_two_tower(
        TINY_MODEL,
        trainer,
        validation.history,
        validation,
        segments_at(data),
        seed=7,
        checkpoint_dir=work / "ckpt",
        resume=resume,
        max_epochs=max_epochs,
        callbacks=callbacks,
    )
