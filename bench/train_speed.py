"""Training speed: the two-tower model to its early-stopping point vs implicit's ALS.

    python bench/train_speed.py [--dataset tafeng] [--threads 2] [-o model.dim=64 ...]
                                [--out bench/results/train_speed.md]

Both fit the validation period's history (the train period) in the same process, on the
same machine, with the same threads: ALS with the baselines' settings (``conf/baselines``),
the two-tower model with ``conf/model`` + ``conf/trainer`` (early stopping on validation
Recall@20 over the whole catalog, checked after every epoch; no refit). Reported: wall
time to the best epoch and to the stop (setup and validation included, as ALS's time is
its whole fit), the ratio to ALS, training throughput in purchase lines per second
(training batches only), and the validation Recall@20 / NDCG@20 of both at that point.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lightning as L
import torch
from common import dataset_periods, machine, markdown

from segrec.baselines import ImplicitALS, Popularity
from segrec.training.callbacks import validation_metrics
from segrec.training.loop import train_two_tower


class TrainStart(L.Callback):
    """When training proper starts: what came before (features, examples, the prior) is
    the two-tower's setup, counted in its time as ALS's whole fit is in ALS's."""

    at = math.nan

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.at = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tafeng")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_train_speed"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg, segments_at, validation, _ = dataset_periods(args.dataset, args.override, args.workdir)
    history = validation.history

    als_cfg = {k: v for k, v in asdict(cfg.baselines.als).items() if k not in ("enabled", "grid")}
    started = time.perf_counter()
    als = ImplicitALS(**als_cfg, seed=cfg.seed, fallback=Popularity()).fit(history)
    als_seconds = time.perf_counter() - started
    als_metrics = validation_metrics(als, validation, 20)

    trainer = replace(cfg.trainer, num_threads=args.threads, progress_bar=False)
    start = TrainStart()
    started = time.perf_counter()
    run = train_two_tower(
        cfg.model, trainer, history, validation, segments_at, cfg.seed, callbacks=[start]
    )
    setup = start.at - started
    best = next(r for r in run.epoch_metrics if r["epoch"] == run.best_epoch)
    monitored = f"validation Recall@20 on {cfg.trainer.validation_items} items"
    to_best = setup + best["elapsed_seconds"]
    stop = setup + run.epoch_metrics[-1]["elapsed_seconds"]
    rows = [
        [
            "implicit ALS",
            "-",
            f"{als_seconds:.1f}",
            f"{als_seconds:.1f}",
            "1.0x",
            "-",
            "-",
            f"{als_metrics['val/recall@20']:.4f}",
            f"{als_metrics['val/ndcg@20']:.4f}",
            f"{als_metrics['val/new_recall@20']:.4f}",
            f"{als_metrics['val/new_ndcg@20']:.4f}",
        ],
        [
            cfg.model.name,
            f"{setup:.1f}",
            f"{to_best:.1f}",
            f"{stop:.1f}",
            f"{to_best / als_seconds:.1f}x",
            f"{run.best_epoch}/{run.epochs}",
            f"{run.samples_per_second:,.0f}",
            f"{best['val/recall@20']:.4f}",
            f"{best['val/ndcg@20']:.4f}",
            f"{best['val/new_recall@20']:.4f}",
            f"{best['val/new_ndcg@20']:.4f}",
        ],
    ]
    n_lines = history.interactions.height
    prior = " and the co-purchase prior" if cfg.model.copurchase_rank else ""
    loss = cfg.model.loss_for(len(history.item_map))
    text = "\n\n".join(
        [
            "# Training speed (bench/train_speed.py)",
            f"Machine: {machine()}; torch threads: {args.threads}.",
            f"Data: {args.dataset} train period, {n_lines:,} purchase lines, "
            f"{history.interactions['customer_id'].n_unique():,} customers, "
            f"{len(history.item_map):,} items; validation: {validation.truth.customer_ids.len():,} "
            f"customers. Model: dim={cfg.model.dim}, L={cfg.model.history_len}, "
            f"batch={cfg.model.batch_size} baskets, loss={loss}; early stopping on {monitored}.",
            markdown(
                [
                    "model",
                    "setup s",
                    "s to best epoch",
                    "s to stop",
                    "best / ALS",
                    "best/epochs",
                    "lines/s",
                    "val R@20",
                    "val N@20",
                    "val new R@20",
                    "val new N@20",
                ],
                rows,
            ),
            f"Setup: features, training examples{prior} (counted in the times). "
            "Per epoch, since the start: "
            + ", ".join(
                f"{r['epoch']}: {setup + r['elapsed_seconds']:.0f} s, R@20 {r['val/recall@20']:.4f}"
                f" (new {r['val/new_recall@20']:.4f})"
                for r in run.epoch_metrics
            ),
        ]
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
