"""Experiment loggers of a run: CSV and TensorBoard by default, MLflow when asked for."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from segrec.training.config import LoggerConfig


def make_loggers(cfg: LoggerConfig, log_dir: Path, run_name: str) -> list[Logger]:
    """Loggers writing under ``log_dir`` (``csv/``, ``tensorboard/``); MLflow needs
    ``pip install mlflow`` and says so when it is missing."""
    loggers: list[Logger] = []
    if cfg.csv:
        loggers.append(CSVLogger(save_dir=str(log_dir), name="csv", version=run_name))
    if cfg.tensorboard:
        loggers.append(
            TensorBoardLogger(
                save_dir=str(log_dir), name="tensorboard", version=run_name, default_hp_metric=False
            )
        )
    if cfg.mlflow:
        try:
            from lightning.pytorch.loggers import MLFlowLogger

            loggers.append(
                MLFlowLogger(
                    experiment_name=cfg.experiment_name,
                    run_name=run_name,
                    tracking_uri=cfg.mlflow_tracking_uri,
                )
            )
        except ModuleNotFoundError as exc:
            raise ValueError("logger.mlflow=true needs MLflow: pip install mlflow") from exc
    return loggers
