"""Training speed: the two-tower model to its early-stopping point vs implicit's ALS.

    python bench/train_speed.py [--dataset tafeng] [--threads 2] [--rounds 3]
                                [-o model.dim=64 ...] [--out bench/results/train_speed.md]

Both fit the validation period's history (the train period) in the same process, on the
same machine, with the same threads: ALS with the baselines' settings (``conf/baselines``),
the two-tower model with ``conf/model`` + ``conf/trainer`` (early stopping on validation
Recall@20 over the whole catalog, checked after every epoch; no refit). Reported: wall
time to the best epoch and to the stop (setup and validation included, as ALS's time is
its whole fit), the ratio to ALS (with ``--rounds``: both again, one after the other, each
model's fastest round in the table and every round below it: on a shared 2-core machine
ALS's fit alone moves between 1.2 and 2.2 s from one minute to the next), training throughput
in purchase lines per second (training batches only), and the validation Recall@20 /
NDCG@20 of both at that point.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lightning as L
import torch
from common import dataset_periods, machine, markdown

from segrec.baselines import ImplicitALS, Popularity
from segrec.training.callbacks import validation_metrics
from segrec.training.loop import TrainingRun, train_two_tower


class TrainStart(L.Callback):
    """When training proper starts: what came before (features, examples, the prior) is
    the two-tower's setup, counted in its time as ALS's whole fit is in ALS's."""

    at = math.nan

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.at = time.perf_counter()


@dataclass
class Round:
    """One round of the comparison: ALS's fit, then the two-tower's run to its stop."""

    als_seconds: float
    als_metrics: dict[str, float]
    setup: float
    run: TrainingRun

    @property
    def best(self) -> dict[str, float]:
        return next(r for r in self.run.epoch_metrics if r["epoch"] == self.run.best_epoch)

    @property
    def to_best(self) -> float:
        return self.setup + self.best["elapsed_seconds"]

    @property
    def to_stop(self) -> float:
        return self.setup + self.run.epoch_metrics[-1]["elapsed_seconds"]

    @property
    def ratio(self) -> float:
        return self.to_best / self.als_seconds


def one_round(cfg: Any, threads: int, segments_at: Any, validation: Any) -> Round:
    """ALS, then the two-tower model, on the same history and threads."""
    history = validation.history
    als_cfg = {k: v for k, v in asdict(cfg.baselines.als).items() if k not in ("enabled", "grid")}
    started = time.perf_counter()
    als = ImplicitALS(**als_cfg, seed=cfg.seed, fallback=Popularity()).fit(history)
    als_seconds = time.perf_counter() - started
    als_metrics = validation_metrics(als, validation, 20)
    trainer = replace(cfg.trainer, num_threads=threads, progress_bar=False)
    start = TrainStart()
    started = time.perf_counter()
    run = train_two_tower(
        cfg.model, trainer, history, validation, segments_at, cfg.seed, callbacks=[start]
    )
    return Round(als_seconds, als_metrics, start.at - started, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tafeng")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="ALS and the two-tower, one after the other, this many times (each one's fastest)",
    )
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_train_speed"))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least 1")
    torch.set_num_threads(args.threads)
    cfg, segments_at, validation, _ = dataset_periods(args.dataset, args.override, args.workdir)
    history = validation.history
    rounds = []
    for i in range(args.rounds):
        rounds.append(one_round(cfg, args.threads, segments_at, validation))
        last = rounds[-1]
        print(
            f"round {i + 1}/{args.rounds}: ALS {last.als_seconds:.1f} s, two-tower "
            f"{last.to_best:.1f} s to its best epoch ({last.ratio:.1f}x)",
            file=sys.stderr,
        )
    # Each model's fastest round: noise on a shared machine only ever adds time. The
    # metrics are the same in every round (seeded).
    fast_als = min(rounds, key=lambda r: r.als_seconds)
    fast = min(rounds, key=lambda r: r.to_best)
    best, run, als_metrics = fast.best, fast.run, fast_als.als_metrics
    monitored = f"validation Recall@20 on {cfg.trainer.validation_items} items"
    rows = [
        [
            "implicit ALS",
            "-",
            f"{fast_als.als_seconds:.1f}",
            f"{fast_als.als_seconds:.1f}",
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
            f"{fast.setup:.1f}",
            f"{fast.to_best:.1f}",
            f"{fast.to_stop:.1f}",
            f"{fast.to_best / fast_als.als_seconds:.1f}x",
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
                f"{r['epoch']}: {fast.setup + r['elapsed_seconds']:.0f} s, "
                f"R@20 {r['val/recall@20']:.4f} (new {r['val/new_recall@20']:.4f})"
                for r in run.epoch_metrics
            ),
        ]
    )
    if len(rounds) > 1:
        text += (
            "\n\nRounds, ALS then the two-tower each time (the table above: each model's "
            f"fastest, ALS round {rounds.index(fast_als) + 1}, two-tower round "
            f"{rounds.index(fast) + 1}):\n\n"
            + markdown(
                ["round", "ALS s", "two_tower s to best epoch (setup)", "ratio", "lines/s"],
                [
                    [
                        i + 1,
                        f"{r.als_seconds:.1f}",
                        f"{r.to_best:.1f} ({r.setup:.1f})",
                        f"{r.ratio:.1f}x",
                        f"{r.run.samples_per_second:,.0f}",
                    ]
                    for i, r in enumerate(rounds)
                ],
            )
        )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
