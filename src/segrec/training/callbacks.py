"""Per-epoch validation on the whole catalog, with the evaluation stage's own metrics.

Sampled or in-batch metrics flatter a retrieval model; early stopping should watch what
the report will show. So after every training epoch the current towers score every
validation customer against every item, and ``segrec.evaluation`` computes Recall and NDCG
(all items and items new to the customer), logged as ``val/recall@20`` etc.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import lightning as L
import polars as pl
import torch

from segrec.data import NEW
from segrec.evaluation.protocol import Period, customer_metrics, metrics_from_rankings, rank_each
from segrec.recommender import Recommender, chunk_size_for
from segrec.training.config import check_validation_items
from segrec.training.features import FeatureSpace
from segrec.training.recommender import Setting, TwoTowerRecommender
from segrec.training.sequences import PurchaseSequences

if TYPE_CHECKING:
    from segrec.models.two_tower import TwoTower


def validation_metrics(
    model: Recommender, period: Period, k: int, chunk_size: int | None = None
) -> dict[str, float]:
    """``val/{recall,ndcg}@k`` and ``val/new_{recall,ndcg}@k`` of a fitted model: the
    customers' means, from one scoring pass over the period, each with its standard error
    (``..._se``: the customers' standard deviation / √customers)."""
    return summarise(customer_metrics(model, period, [k], ("all", NEW), chunk_size), k)


def summarise(frame: pl.DataFrame, k: int) -> dict[str, float]:
    """``validation_metrics`` from per-customer metrics (``customer_metrics``' frame)."""
    out: dict[str, float] = {}
    for item_set, prefix in (("all", ""), (NEW, "new_")):
        rows = frame.filter(pl.col("items") == item_set)
        for metric in ("recall", "ndcg"):
            values = rows[f"{metric}@{k}"]
            mean = values.mean() if rows.height else None
            spread = values.std() if rows.height > 1 else None
            name = f"val/{prefix}{metric}@{k}"
            out[name] = float(mean) if mean is not None else math.nan  # type: ignore[arg-type]
            out[f"{name}_se"] = (
                float(spread) / math.sqrt(rows.height)  # type: ignore[arg-type]
                if spread is not None
                else math.nan
            )
    return out


class RetrievalValidation(L.Callback):
    """Logs ``val/{recall,ndcg}@{k}`` and ``val/new_{recall,ndcg}@{k}`` each epoch (``monitor``:
    the Recall@k of ``items``, all or new, that early stopping watches), and
    keeps a CPU copy of the best weights so far (``best_state``), which the run restores
    at its end unless it was resumed (the best epoch may then predate the process, and is
    read back from its checkpoint). ``sequences``: the period's history sorted
    (``PurchaseSequences``), where the caller has it already. The customers' tower inputs
    are kept from one pass to the next, up to ``inputs_memory_mb`` (Ta-Feng with
    new_items: 15 MB)."""

    def __init__(
        self,
        features: FeatureSpace,
        period: Period,
        k: int = 20,
        items: str = "all",
        chunk_memory_mb: float = 128.0,
        sequences: PurchaseSequences | None = None,
        inputs_memory_mb: float = 1024.0,
    ):
        check_validation_items(items)
        self.features, self.period, self.k = features, period, k
        prefix = "new_" if items == NEW else ""
        self.monitor = f"val/{prefix}recall@{k}"
        self.ranking_monitor = f"val/{prefix}ndcg@{k}"  # what the order within the top k earns
        self.chunk_size = chunk_size_for(period.history.n_columns, chunk_memory_mb)
        # Given when training ran on this very history: half a second saved on Ta-Feng.
        self.sequences = sequences or PurchaseSequences.build(
            period.history.interactions, features.item_map
        )
        self.inputs_memory_mb = inputs_memory_mb
        self._scorer: TwoTowerRecommender | None = None
        self.results: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best: dict[str, float] | None = None
        self._started = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the epochs validated so far and the best of them, so
        that a resumed run reports every epoch, those before the interruption included."""
        return {"results": self.results, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.results, self.best = list(state_dict["results"]), state_dict["best"]

    def evaluate(self, pl_module: L.LightningModule) -> dict[str, float]:
        """Metrics of the module's current model on the validation period."""
        return self.evaluate_settings(pl_module)[0]

    def evaluate_settings(
        self, pl_module: L.LightningModule, settings: Sequence[Setting] | None = None
    ) -> list[dict[str, float]]:
        """``evaluate``'s metrics of the module's model under each setting (tower weight,
        prior head; None: the model's own), from one scoring pass for all
        (``TwoTowerRecommender.score_settings``); each row's ``val/seconds`` is its share
        of the pass."""
        started = time.perf_counter()
        scorer = self._bound(pl_module)
        settings = [scorer.setting] if settings is None else settings
        rankings = rank_each(
            lambda chunk: scorer.score_settings(chunk, settings),
            len(settings),
            scorer.name,
            self.period,
            self.k,
            chunk_size=self.chunk_size,
        )
        rows = [
            summarise(metrics_from_rankings(r, self.period.truth, [self.k], ("all", NEW)), self.k)
            for r in rankings
        ]
        share = (time.perf_counter() - started) / max(len(settings), 1)
        return [{**row, "val/seconds": share} for row in rows]

    def _bound(self, pl_module: L.LightningModule) -> TwoTowerRecommender:
        """The scorer of the module's model, bound to the validation history, its item
        vectors those of the weights of now."""
        model = cast("TwoTower", pl_module.model)
        if self._scorer is None or self._scorer.model is not model:
            self._scorer = TwoTowerRecommender(
                model, self.features, remember_inputs_mb=self.inputs_memory_mb
            )
            self._scorer.fit(self.period.history, self.sequences)
        else:
            self._scorer.refresh()  # the same customers' inputs, the weights of now
        return self._scorer

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = self.evaluate(pl_module)
        elapsed = time.perf_counter() - self._started  # since training started, validation in
        row = {"epoch": trainer.current_epoch + 1, **metrics, "elapsed_seconds": elapsed}
        self.results.append(row)
        if self.best is None or row[self.monitor] > self.best[self.monitor]:
            self.best = row
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()
            }
        for name, value in metrics.items():
            pl_module.log(name, value, prog_bar=name == self.monitor, sync_dist=False, batch_size=1)


class Throughput(L.Callback):
    """Training samples per second, counting only the training batches (not validation)."""

    def __init__(self) -> None:
        self.samples, self.seconds = 0, 0.0
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: dict,
        batch_idx: int,
    ) -> None:
        self.samples += int(batch["target"].shape[0])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self._started

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0
