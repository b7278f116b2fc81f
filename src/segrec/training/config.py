"""Typed configuration of training runs (``conf/trainer/*.yaml``, ``conf/logger/*.yaml``).

Plain dataclasses, no torch or Lightning import, so that ``segrec.config`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

REFIT_LENGTHS = ("epochs", "steps")
# "new" is segrec.data.NEW, not imported: this module stays free of polars.
VALIDATION_ITEMS = ("all", "new")


def check_refit_length(refit_length: str) -> None:
    """Refuse an unknown ``trainer.refit_length``, naming the key."""
    if refit_length not in REFIT_LENGTHS:
        raise ValueError(f"trainer.refit_length: {refit_length!r}, expected one of {REFIT_LENGTHS}")


def check_validation_items(items: str) -> None:
    """Refuse an unknown ``trainer.validation_items``, naming the key."""
    if items not in VALIDATION_ITEMS:
        raise ValueError(f"trainer.validation_items: {items!r}, expected one of {VALIDATION_ITEMS}")


@dataclass
class TrainerConfig:
    """Where and how long to train: a Lightning ``Trainer`` preset plus the protocol.

    ``precision``: ``32-true`` on CPU, ``bf16-mixed`` on GPU. ``refit``: after early
    stopping on the validation period, train again on train + validation for the selection
    run's length (``refit_length``: its best epochs or its optimiser steps), so the final
    model has seen the most recent month (the baselines are fitted on it too).
    """

    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_epochs: int = 15
    min_epochs: int = 1
    patience: int = 2  # epochs without a better validation Recall@K before stopping
    refit: bool = True
    # How long a refit (and the ranker's earlier copy) trains: the best number of epochs,
    # or (steps) the selection run's optimiser steps to its best epoch. The refit's history
    # is longer, so the same epochs are more steps: on Ta-Feng, selected on the train
    # period's last 28 days and scored on January, new_items refitted for its steps scores
    # new R@20 0.0413 against 0.0356 for its epochs; the default model prefers epochs
    # (0.0343 against 0.0327). conf/experiment/new_items.yaml sets steps.
    refit_length: str = "epochs"
    num_threads: int | None = None  # torch.set_num_threads; null: torch's default
    # The customer id table trained with sparse gradients and lazy Adam (torch's
    # SparseAdam: a row's moments move only when the row is in the batch). Why: a dense
    # Adam step reads and writes the whole table, 1M customers x 64 dims in 1 GB of
    # traffic: ~100 ms a step on 2 CPU cores, against ~1 ms sparse (bench/results/
    # train_speed_tafeng.md). false under DDP: NCCL cannot all-reduce sparse tensors.
    sparse_customer_ids: bool = True
    progress_bar: bool = True
    log_every_n_steps: int = 50
    validation_k: int = 20
    # Which Recall@K early stopping watches: on all items, or on items new to the customer.
    # new (the default): what retrieval adds to a ranker that already knows the customer's
    # own items. On Ta-Feng new-item recall peaks at the first epoch and then falls as the
    # ids memorise each customer's staples (0.042 -> 0.033 by epoch 6, while all-item
    # recall climbs 0.048 -> 0.056); stopping there is also 7x less training.
    validation_items: str = "new"
    # At most this many of the validation period's customers (a seeded sample) rank the
    # epochs and settings; null: all. Ta-Feng and Complete Journey have fewer; the 1M
    # synthetic set's 823k took 117 s a pass, nearly its training epoch's 132 s.
    validation_customers: int | None = 100_000
    # Memory of one chunk of validation scores (customers x catalog, float32), and of the
    # validation customers' tower inputs kept from one epoch's pass to the next (built
    # once: they depend on the history, not the weights).
    validation_chunk_mb: float = 128.0
    validation_inputs_mb: float = 1024.0
    # For ``TrainableTwoTower.fit(history)`` (no split given): the last N days of the history
    # are held out for early stopping.
    holdout_days: int = 28

    def check(self) -> None:
        """Refuse settings that cannot work, naming the key: called before any data is
        read, so that a typo does not wait for the segments and the features."""
        check_refit_length(self.refit_length)
        check_validation_items(self.validation_items)
        for key in ("max_epochs", "validation_k", "holdout_days", "log_every_n_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"trainer.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.min_epochs <= self.max_epochs:
            raise ValueError(
                f"trainer.min_epochs must be in [0, max_epochs = {self.max_epochs}], got "
                f"{self.min_epochs}"
            )
        if self.sparse_customer_ids and "ddp" in self.strategy:
            raise ValueError(
                f"trainer.sparse_customer_ids: true with trainer.strategy {self.strategy!r}; "
                "DDP cannot all-reduce sparse gradients over NCCL: set it false (trainer=ddp does)"
            )
        if self.sparse_customer_ids and self.precision.startswith("16"):
            # fp16's gradient scaler unscales and skips only the optimiser Lightning holds.
            raise ValueError(
                f"trainer.sparse_customer_ids: true with trainer.precision {self.precision!r}; "
                "use bf16-mixed (no gradient scaler) or set it false"
            )
        if self.patience < 0:
            raise ValueError(f"trainer.patience must be >= 0, got {self.patience}")
        if self.validation_customers is not None and self.validation_customers < 1:
            raise ValueError(
                f"trainer.validation_customers must be null or >= 1, got "
                f"{self.validation_customers}"
            )
        if self.validation_chunk_mb <= 0 or self.validation_inputs_mb < 0:
            raise ValueError(
                f"trainer.validation_chunk_mb must be > 0 and trainer.validation_inputs_mb "
                f">= 0, got {self.validation_chunk_mb} and {self.validation_inputs_mb}"
            )


@dataclass
class LoggerConfig:
    """Which experiment loggers record the run (under ``<output_dir>/logs``)."""

    csv: bool = True
    tensorboard: bool = True
    mlflow: bool = False  # needs `pip install mlflow`
    mlflow_tracking_uri: str | None = None  # null: ./mlruns
    experiment_name: str = "segrec"
