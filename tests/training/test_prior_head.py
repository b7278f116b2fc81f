"""The prior's head (``model.prior_heads``): the ranking rule, its choice on validation and
its refit."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from segrec.evaluation.protocol import Period
from segrec.recommender import exclude, top_k
from segrec.training.callbacks import RetrievalValidation
from segrec.training.fit import fit_model
from segrec.training.loop import TrainingRun, choose_setting, train_two_tower
from segrec.training.module import TwoTowerTask
from segrec.training.recommender import (
    Setting,
    TwoTowerRecommender,
    just_above,
    prior_head_first,
)
from tests.training.common import (
    NO_LOGGER,
    TINY_MODEL,
    TINY_TRAINER,
    periods,
    segments_at,
    small_data,
)


def test_the_head_is_the_priors_best_new_items_then_the_whole_score() -> None:
    scores = np.array([[-np.inf, 5.0, 4.0, 3.0, 2.0, 1.0]] * 3, dtype=np.float32)
    prior = np.array([[-np.inf, 0.0, 1.0, 9.0, 9.0, 7.0]] * 3, dtype=np.float32)
    purchased = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0], [0] * 6, [0, 1, 1, 1, 1, 1]]))
    out = prior_head_first(scores.copy(), prior.copy(), purchased, 2)
    ranked = top_k(out, 5)[0]
    # Item 3 was bought: the head is 4 then 5 (prior 9, 7), then the rest by score.
    assert ranked[0].tolist() == [4, 5, 1, 2, 3]
    # Nothing bought: 3 and 4 tie on the prior and go in index order.
    assert ranked[1].tolist() == [3, 4, 1, 2, 5]
    # Everything bought: no new item, so no head and the scores stand.
    assert ranked[2].tolist() == [1, 2, 3, 4, 5]
    assert np.isfinite(out[:, 1:]).all() and np.isneginf(out[:, 0]).all()
    # A bought item keeps its place by its own score: item 2 (bought, 9) stays above the
    # head; the new items follow in prior order (1, then 3, though 3 scores higher).
    lifted = prior_head_first(
        np.array([[-np.inf, 1.0, 9.0, 2.0]], np.float32),
        np.array([[-np.inf, 5.0, 0.0, 1.0]], np.float32),
        sp.csr_matrix(np.array([[0, 0, 1, 0]])),
        9,  # longer than the catalog: every new item, in prior order
    )
    assert top_k(lifted, 3)[0].tolist() == [[2, 1, 3]]
    # So does one above the best new item by less than the head is long: item 2 (bought,
    # 5.5) against new items 4 and 5 (best 5) and a head of three.
    close = prior_head_first(
        np.array([[-np.inf, 1.0, 5.5, 2.0, 5.0, 4.0]], np.float32),
        np.array([[-np.inf, 3.0, 0.0, 2.0, 1.0, 0.5]], np.float32),
        sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 0]])),
        3,
    )
    assert top_k(close, 5)[0].tolist() == [[2, 1, 3, 4, 5]]
    assert np.isfinite(close[0, 1:]).all()


def test_just_above_gives_the_next_floats_largest_first() -> None:
    values = np.array([[1.0], [-0.0], [2.0 - 2**-23], [-np.inf]], np.float32)
    out = just_above(values, 3)
    assert out.dtype == np.float32
    assert (np.diff(out, axis=1) < 0).all()  # distinct, largest first
    assert (out[:, -1:] > values).all()
    # Across a power of two, one float apart still: from 2 - 2^-23 to 2, 2 + 2^-22, 2 + 2^-21.
    assert out[2].tolist() == [2.0 + 2**-21, 2.0 + 2**-22, 2.0]


def test_the_head_is_chosen_on_validation_ndcg_and_carried_to_a_refit(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    validation, test = periods(data, split)
    cfg = replace(TINY_MODEL, item_bias=True, tower_weights=[0.0, 1.0], prior_heads=[0, 3])
    run = train_two_tower(cfg, TINY_TRAINER, validation.history, validation, segments_at(data), 7)
    rows = run.prior_head_metrics
    assert [r["prior_head"] for r in rows] == [0.0, 3.0]
    prefix = "new_" if TINY_TRAINER.validation_items == "new" else ""
    best = max(rows, key=lambda r: r[f"val/{prefix}ndcg@20"])  # the first of equals
    assert run.prior_head == int(best["prior_head"]) == run.model.head_length
    # Head 0 is the chosen tower weight's row, not a pass of its own.
    at_weight = next(r for r in run.tower_weight_metrics if r["tower_weight"] == run.tower_weight)
    assert {k: v for k, v in rows[0].items() if k != "prior_head"} == {
        k: v for k, v in at_weight.items() if k != "tower_weight"
    }
    refit = train_two_tower(
        cfg, TINY_TRAINER, test.history, None, segments_at(data), 7, max_epochs=1, prior_head=3
    )
    assert refit.prior_head == 3 == refit.model.head_length


def test_a_recommender_with_a_head_ranks_its_new_items_by_the_prior_first(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    validation, _ = periods(data, split)
    cfg = replace(TINY_MODEL, item_bias=True, segment_bias=True, prior_heads=[0, 4])
    history = validation.history
    run = train_two_tower(
        cfg, TINY_TRAINER, history, None, segments_at(data), 7, max_epochs=1, prior_head=4
    )
    rec = TwoTowerRecommender(run.model, run.features).fit(history)
    known = history.interactions["customer_id"].unique().sort().head(50).to_list()
    ids = pl.Series([*known, "nobody"])  # a cold customer: the head over every item
    purchased = history.purchased(ids)
    d = run.model.cosine_dim
    prior = rec.customer_vectors(ids)[:, d:] @ rec._item_vectors[d:]
    prior[:, 0] = -np.inf
    expected_head = top_k(exclude(prior, purchased), 4)[0]
    new_ranking = top_k(exclude(rec.score(ids), purchased), 10)[0]
    assert (new_ranking[:, :4] == expected_head).all()
    run.model.set_prior_head(0)  # without the head: the plain inner product
    plain = rec.customer_vectors(ids) @ rec._item_vectors
    plain[:, 0] = -np.inf
    assert np.allclose(rec.score(ids), plain)


def head_only_run(
    tmp_path: Path, prior_head: int, head_only: bool = True, **options: Any
) -> tuple[TrainingRun, Period]:
    """One epoch of a model with item and segment biases, with ``head_only`` the first
    segment family's biases scoring the whole ranking and the others' the head only, and
    its validation period (whose history it trained on)."""
    _, data, split = small_data(tmp_path)
    validation, _ = periods(data, split)
    history = validation.history
    families = segments_at(data)(history.as_of).columns[1:]
    kept = families[:1] if head_only else None
    cfg = replace(
        TINY_MODEL, item_bias=True, segment_bias=True, ranking_bias_families=kept, **options
    )
    run = train_two_tower(
        cfg, TINY_TRAINER, history, None, segments_at(data), 7, max_epochs=1, prior_head=prior_head
    )
    return run, validation


def test_head_only_biases_score_the_head_and_not_the_rest(tmp_path: Path) -> None:
    """With ``ranking_bias_families``, the other families' bias columns join the head's
    prior and leave the whole ranking's product, with a head or without."""
    run, validation = head_only_run(tmp_path, 3, prior_heads=[0, 3])
    history = validation.history
    head_only = run.model.head_only_columns
    assert head_only and len(run.features.families) > 1
    rec = TwoTowerRecommender(run.model, run.features).fit(history)
    ids = pl.Series([*history.interactions["customer_id"].unique().sort().head(40), "nobody"])
    u, v = rec.customer_vectors(ids), rec._item_vectors
    purchased = history.purchased(ids)
    d = run.model.cosine_dim
    prior = u[:, d:] @ v[d:]
    prior[:, 0] = -np.inf
    expected_head = top_k(exclude(prior, purchased), 3)[0]
    ranked = top_k(exclude(rec.score(ids), purchased), 10)[0]
    assert (ranked[:, :3] == expected_head).all()
    whole = u.copy()
    whole[:, head_only] = 0.0
    whole = whole @ v
    whole[:, 0] = -np.inf
    run.model.set_prior_head(0)
    assert np.allclose(rec.score(ids), whole, atol=1e-5)
    assert not np.allclose(whole, u @ v, atol=1e-3)  # the dropped biases did count


def test_the_main_jobs_refit_and_saved_model_keep_the_chosen_head(tmp_path: Path) -> None:
    _, data, split = small_data(tmp_path)
    cfg = replace(TINY_MODEL, item_bias=True, tower_weights=[0.5], prior_heads=[2])
    result = fit_model(
        cfg, TINY_TRAINER, NO_LOGGER, data, split, tmp_path / "run", segments_at(data), seed=3
    )
    assert result.metrics["selection"]["prior_head"] == result.metrics["refit"]["prior_head"] == 2
    assert result.recommender.model.head_length == 2
    saved = TwoTowerRecommender.load(result.paths["model"]).model
    assert saved.head_length == 2 and float(saved.tower_weight) == 0.5


def test_choose_setting_keeps_the_first_value_within_one_standard_error() -> None:
    """The tower weight's rule: the smallest weight whose recall is within one standard
    error of the best; without the rule, the best (the first of equals)."""
    rows = {
        0.0: {"val/r": 0.030, "val/r_se": 0.001},
        0.5: {"val/r": 0.0421, "val/r_se": 0.001},
        1.0: {"val/r": 0.0425, "val/r_se": 0.001},
    }
    choose = partial(choose_setting, None, None, "w", [0.0, 0.5, 1.0], lambda _: None, "val/r")
    assert choose(rows, within_error=True)[0] == 0.5
    assert choose(rows)[0] == 1.0
    no_error = {w: {"val/r": r["val/r"], "val/r_se": math.nan} for w, r in rows.items()}
    assert choose(no_error, within_error=True)[0] == 1.0  # unknown error: the best


@pytest.mark.parametrize("head_only", [True, False])
def test_settings_scored_together_rank_as_each_scored_alone(
    tmp_path: Path, head_only: bool
) -> None:
    """``score_settings`` (one tower pass and one product per part for every setting)
    gives the scores of a reference computed apart and what ``score`` gives with the model
    set to each, and the validation's joint pass the metrics of a pass per setting: the
    choice of weight and head is the same either way. Without head-only columns the prior
    and the rest of the whole score are one matrix, which the head must not spoil for the
    settings after it."""
    run, validation = head_only_run(
        tmp_path, 0, head_only, tower_weights=[0.0, 0.5, 1.0], prior_heads=[0, 2]
    )
    history = validation.history
    assert bool(run.model.head_only_columns) == head_only
    rec = TwoTowerRecommender(run.model, run.features).fit(history)
    ids = pl.Series([*history.interactions["customer_id"].unique().sort().head(40), "nobody"])
    settings = [Setting(w, m) for w in (0.0, 0.5, 1.0) for m in (0, 2)]
    together = list(rec.score_settings(ids, settings))
    validator = RetrievalValidation(run.features, validation, 20, "new")
    task = TwoTowerTask(run.model, torch.ones(run.model.sizes.n_items))
    joint = validator.evaluate_settings(task, settings)
    # The reference: the weighted vectors' product without the head-only columns, then
    # the head by the product of every column past the cosine's.
    u, v, d = rec.customer_vectors(ids, weighted=False), rec._item_vectors, run.model.cosine_dim
    purchased = history.purchased(ids)
    for setting, scores, metrics in zip(settings, together, joint, strict=True):
        weighted = u.copy()
        weighted[:, :d] *= setting.tower_weight
        weighted[:, run.model.head_only_columns] = 0.0
        expected = weighted @ v
        expected[:, 0] = -np.inf
        if setting.prior_head:
            prior = u[:, d:] @ v[d:]
            prior[:, 0] = -np.inf
            # The head's items and order, exactly: its scores are a float apart.
            head = top_k(exclude(prior.copy(), purchased), setting.prior_head)[0]
            ranked = top_k(exclude(scores.copy(), purchased), setting.prior_head)[0]
            assert (ranked == head).all()
            expected = prior_head_first(expected, prior, purchased, setting.prior_head)
        np.testing.assert_allclose(scores, expected, atol=1e-5)
        run.model.set_tower_weight(setting.tower_weight)
        run.model.set_prior_head(setting.prior_head)
        assert rec.setting == setting
        np.testing.assert_array_equal(scores, rec.score(ids))
        alone = validator.evaluate(task)
        assert {n: x for n, x in metrics.items() if n != "val/seconds"} == {
            n: x for n, x in alone.items() if n != "val/seconds"
        }
    # The settings differ, or the test would prove little.
    assert len({tuple(top_k(s, 5)[0].ravel()) for s in together}) == len(settings)
