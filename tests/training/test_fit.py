"""Training end to end on the small synthetic set: the contract, saving, resuming."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import polars as pl
import pytest
import torch
from rich.console import Console

from segrec.pipeline import fit
from segrec.recommender import check_scores
from segrec.training.callbacks import RetrievalValidation, validation_metrics
from segrec.training.examples import EpochBatches
from segrec.training.fit import fit_model
from segrec.training.loop import TrainingLength, prepare, train_two_tower
from segrec.training.recommender import TwoTowerRecommender
from tests.helpers import SMALL, compose_config
from tests.training.common import (
    NO_LOGGER,
    TINY_MODEL,
    TINY_TRAINER,
    periods,
    run_training,
    segments_at,
    small_data,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("fit")
    _, data, split = small_data(work)
    result = fit_model(
        TINY_MODEL, TINY_TRAINER, NO_LOGGER, data, split, work / "run", segments_at(data), seed=3
    )
    return work, data, split, result


def test_fit_model_scores_every_customer_by_the_contract(fitted) -> None:
    work, data, split, result = fitted
    model = result.recommender
    _, test = periods(data, split)
    labels = test.labels.filter(pl.col("customer_status") == "cold")
    cold = labels.unique("age_band", keep="first").sort("customer_id")["customer_id"].head(3)
    ids = pl.concat([test.truth.customer_ids.head(5), cold, pl.Series(["nobody"])])
    scores = model.score(ids)
    check_scores(scores, ids.len(), test.history.n_columns, model.name)
    assert np.isneginf(scores[:, 0]).all() and np.isfinite(scores[:, 1:]).all()
    assert model.cold_start == "native"
    # Cold customers get their own vectors (their segments differ), not one fallback row.
    cold_vectors = model.customer_vectors(cold)
    assert len(cold) == 3 and not np.allclose(cold_vectors[0], cold_vectors[1])
    sel, refit = result.metrics["selection"], result.metrics["refit"]
    assert refit["epochs"] == sel["best_epoch"] >= 1
    assert sel["validation"]["val/recall@20"] > 0.1  # well above random on planted data
    assert (work / "run" / "logs" / "csv" / "select" / "metrics.csv").exists()
    assert (result.paths["checkpoints"] / "select" / "last.ckpt").exists()


def test_saved_model_reloads_and_scores_the_same(fitted) -> None:
    _, data, split, result = fitted
    _, test = periods(data, split)
    again = TwoTowerRecommender.load(result.paths["model"]).fit(test.history)
    ids = test.truth.customer_ids.head(20)
    assert np.array_equal(again.score(ids), result.recommender.score(ids))


def test_remembered_inputs_score_new_weights_as_fresh_ones_do(fitted) -> None:
    """Validation keeps the customers' tower inputs between passes: the scores after a
    weight change are those of a recommender built afresh, and another history's
    customers get their own inputs."""
    _, data, split, result = fitted
    validation, test = periods(data, split)
    model = result.recommender.model
    ids = validation.truth.customer_ids.head(30)
    kept = TwoTowerRecommender(model, result.recommender.features, remember_inputs_mb=1.0)
    kept.fit(validation.history)
    first = kept.score(ids)
    assert kept.inputs(ids) is kept.inputs(ids)
    at_validation = kept.inputs(ids)["numeric"]
    tiny = TwoTowerRecommender(model, result.recommender.features, remember_inputs_mb=1e-6)
    tiny.fit(validation.history)
    assert tiny.inputs(ids) is not tiny.inputs(ids)  # over its budget: built every time
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            model.item_tower.ids.weight.mul_(-1.0)
            model.customer_tower.mlp[0].weight.mul_(0.5)
        kept.refresh()
        fresh = TwoTowerRecommender(model, result.recommender.features).fit(validation.history)
        assert not np.allclose(kept.score(ids), first)
        assert np.array_equal(kept.score(ids), fresh.score(ids))
        kept.fit(test.history)  # another cutoff: the same ids, other inputs
        fresh.fit(test.history)
        assert not torch.equal(kept.inputs(ids)["numeric"], at_validation)
        assert np.array_equal(kept.score(ids), fresh.score(ids))
    finally:
        model.load_state_dict(saved)


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    straight = run_training(tmp_path / "a", max_epochs=3)
    run_training(tmp_path / "b", max_epochs=2)
    resumed = run_training(tmp_path / "b", max_epochs=3, resume=True)
    # Epochs 1-2 come back from the checkpoint; only epoch 3 ran again, and all match.
    assert [r["epoch"] for r in resumed.epoch_metrics] == [1, 2, 3]
    assert resumed.epochs == 3
    for again, first in zip(resumed.epoch_metrics, straight.epoch_metrics, strict=True):
        for key in ("val/recall@20", "val/ndcg@20", "val/new_recall@20"):
            assert again[key] == pytest.approx(first[key], abs=1e-6)
    assert resumed.best_epoch == straight.best_epoch


def test_resume_after_early_stopping_ends_where_the_run_ended(tmp_path: Path) -> None:
    """A run killed after it stopped early (before its results were saved) resumes from
    its last checkpoint and stops at the same epoch with the same best one."""
    trainer = replace(TINY_TRAINER, max_epochs=30, patience=1)
    first = run_training(tmp_path, max_epochs=30, trainer=trainer)
    assert first.epochs < 30  # early stopping fired
    resumed = run_training(tmp_path, max_epochs=30, resume=True, trainer=trainer)
    assert (resumed.epochs, resumed.best_epoch) == (first.epochs, first.best_epoch)
    assert [r["epoch"] for r in resumed.epoch_metrics] == list(range(1, first.epochs + 1))


@pytest.mark.slow
def test_killed_run_resumes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(REPO / "tests/training/killable_run.py"), str(tmp_path)],
        cwd=REPO,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "mid_epoch").exists():
            assert child.poll() is None, "the training child exited before epoch 2"
            assert time.monotonic() < deadline, "the training child never reached epoch 2"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert (tmp_path / "ckpt" / "last.ckpt").exists()  # written at the end of epoch 1
    resumed = run_training(tmp_path, max_epochs=3, resume=True)
    assert [r["epoch"] for r in resumed.epoch_metrics] == [1, 2, 3]  # 1 from the checkpoint
    assert resumed.epochs == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_preset_trains(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    validation, _ = periods(data, split)
    from segrec.training.loop import train_two_tower

    gpu = replace(TINY_TRAINER, accelerator="gpu", precision="bf16-mixed", max_epochs=1)
    run = train_two_tower(TINY_MODEL, gpu, validation.history, validation, segments_at(data))
    assert run.epochs == 1 and run.best_score > 0


def test_tower_weight_is_chosen_on_validation_and_carried_to_a_refit(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    validation, test = periods(data, split)
    cfg = replace(TINY_MODEL, item_bias=True, tower_weights=[0.0, 1.0])
    run = train_two_tower(cfg, TINY_TRAINER, validation.history, validation, segments_at(data), 7)
    rows = run.tower_weight_metrics
    assert [r["tower_weight"] for r in rows] == [0.0, 1.0]
    best = max(rows, key=lambda r: r["val/new_recall@20"])
    floor = best["val/new_recall@20"] - best["val/new_recall@20_se"]
    chosen = next(r for r in rows if r["val/new_recall@20"] >= floor)  # the smallest in 1 SE
    assert run.tower_weight == chosen["tower_weight"] == float(run.model.tower_weight)
    # Weight 1's row is the best epoch's validation, not a pass of its own: scored again,
    # the chosen model at weight 1 gives the same metrics.
    run.model.set_tower_weight(1.0)
    again = validation_metrics(
        TwoTowerRecommender(run.model, run.features).fit(validation.history), validation, 20
    )
    assert again == pytest.approx({k: v for k, v in rows[1].items() if k in again})
    refit = train_two_tower(
        cfg, TINY_TRAINER, test.history, None, segments_at(data), 7, max_epochs=1, tower_weight=0.0
    )
    assert float(refit.model.tower_weight) == 0.0 and refit.tower_weight == 0.0


@pytest.mark.parametrize("ablation", ["ids_only", "with_segments"])
def test_ablations_compose_on_top_of_another_experiment(tmp_path: Path, ablation: str) -> None:
    """``experiment=[new_items,ids_only]`` (bench/quality.py --ablation with -o
    experiment=new_items): the ablation's inputs, the other experiment's objective, and
    no co-purchase prior without a purchase history."""
    from tests.helpers import compose_config

    model = compose_config(tmp_path, [f"experiment=[new_items,{ablation}]"]).model
    model.check()
    assert not model.use_history and model.copurchase_rank == 0
    assert model.use_segments == (ablation == "with_segments")
    assert not model.known_negatives and model.tower_weights == [0.0, 0.25, 0.5, 1.0]


def test_a_refit_repeats_the_selection_runs_epochs_or_its_steps(tmp_path: Path) -> None:
    """``trainer.refit_length``: the best epoch's optimiser steps are counted, and a run
    without validation given them as its length stops after exactly that many steps, on a
    history longer than the selection run's."""
    _, data, split = small_data(tmp_path)
    validation, test = periods(data, split)
    run = train_two_tower(
        TINY_MODEL, TINY_TRAINER, validation.history, validation, segments_at(data), 7
    )
    baskets = len(prepare(TINY_MODEL, validation.history, segments_at(data))[2])
    per_epoch = len(EpochBatches(baskets, TINY_MODEL.batch_size, 7))
    assert run.best_steps == run.best_epoch * per_epoch
    length = run.length
    assert length.limits("epochs") == {"max_epochs": run.best_epoch}
    steps = train_two_tower(
        TINY_MODEL, TINY_TRAINER, test.history, None, segments_at(data), 7, **length.limits("steps")
    )
    assert steps.best_steps == run.best_steps
    epochs = train_two_tower(
        TINY_MODEL,
        TINY_TRAINER,
        test.history,
        None,
        segments_at(data),
        7,
        **length.limits("epochs"),
    )
    assert epochs.epochs == run.best_epoch and epochs.best_steps > run.best_steps
    with pytest.raises(ValueError, match=r"trainer\.refit_length: 'baskets'"):
        length.limits("baskets")
    with pytest.raises(ValueError, match=r"trainer\.refit_length: 'baskets'"):  # before training
        train_two_tower(
            TINY_MODEL, replace(TINY_TRAINER, refit_length="baskets"), test.history, None
        )
    with pytest.raises(ValueError, match="no best_steps"):
        TrainingLength.of({"best_epoch": 2})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("refit_length", "baskets", r"trainer\.refit_length: 'baskets'"),
        ("validation_items", "repeat", r"trainer\.validation_items: 'repeat'"),
        ("max_epochs", 0, r"trainer\.max_epochs must be >= 1"),
        ("min_epochs", 3, r"trainer\.min_epochs must be in \[0, max_epochs = 2\]"),
        ("patience", -1, r"trainer\.patience must be >= 0"),
        ("holdout_days", 0, r"trainer\.holdout_days must be >= 1"),
        ("validation_chunk_mb", 0.0, r"trainer\.validation_chunk_mb must be > 0"),
        ("validation_customers", 0, r"trainer\.validation_customers must be null or >= 1"),
        ("strategy", "ddp", r"trainer\.sparse_customer_ids: true with trainer\.strategy 'ddp'"),
        ("precision", "16-mixed", r"sparse_customer_ids: true with trainer\.precision '16-mixed'"),
    ],
)
def test_bad_trainer_settings_are_refused_by_name(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(TINY_TRAINER, **{key: value}).check()


def test_the_ddp_preset_trains_the_customer_ids_dense(tmp_path: Path) -> None:
    ddp = compose_config(tmp_path, ["trainer=ddp"]).trainer
    assert not ddp.sparse_customer_ids and ddp.strategy == "ddp"
    ddp.check()
    assert compose_config(tmp_path, ["trainer=gpu"]).trainer.sparse_customer_ids


def test_the_main_job_refuses_a_bad_model_setting_before_reading_data(tmp_path: Path) -> None:
    cfg = compose_config(tmp_path, [*SMALL, "model.segment_snapshot_days=0"])
    with pytest.raises(ValueError, match=r"model\.segment_snapshot_days"):
        fit(cfg, Console(quiet=True))
    assert not (tmp_path / "generated").exists()  # the synthetic data was never made


@pytest.mark.parametrize("every_days", [None, 30])
def test_training_examples_see_segment_labels(tmp_path: Path, every_days: int | None) -> None:
    # Without snapshots (null) every example reads the labels as of the cutoff.
    _, data, split = small_data(tmp_path)
    validation, _ = periods(data, split)
    cfg = replace(TINY_MODEL, segment_snapshot_days=every_days)
    examples = prepare(cfg, validation.history, segments_at(data))[2]
    labels = examples.segment_table[examples.snapshot, examples.rows]
    assert (labels > 0).float().mean() > 0.5


def test_validation_ranks_a_seeded_sample_of_its_customers(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    validation, _ = periods(data, split)
    total = validation.truth.customer_ids.len()
    sample = validation.sample(30, seed=7)
    assert sample.truth.customer_ids.len() == 30 and sample.history is validation.history
    rows = validation.truth.customer_ids.index_of  # each sampled customer's own truth row
    for i, customer in enumerate(sample.truth.customer_ids.to_list()[:5]):
        row = rows(customer)
        assert (sample.truth.all[i] != validation.truth.all[row]).nnz == 0
        assert sample.labels.row(i) == validation.labels.row(row)
    assert sample.truth.customer_ids.is_sorted()  # kept in the period's order
    assert validation.sample(30, seed=7).truth.customer_ids.equals(sample.truth.customer_ids)
    assert validation.sample(total, seed=7) is validation

    class Seen(L.Callback):
        customers = 0

        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            (validator,) = [c for c in trainer.callbacks if isinstance(c, RetrievalValidation)]
            Seen.customers = validator.period.truth.customer_ids.len()

    trainer = replace(TINY_TRAINER, validation_customers=30)
    run_training(tmp_path / "run", max_epochs=1, callbacks=[Seen()], trainer=trainer)
    assert Seen.customers == 30
