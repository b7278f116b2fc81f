"""The co-purchase prior: rank-k EASE as two item tables, and its scale fitted to the
training targets."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from segrec.baselines.ease import ease_weights, gram_matrix, modelled_columns
from segrec.recommender import History
from segrec.training.copurchase import fit_copurchase
from segrec.training.loop import prepare
from segrec.training.module import make_model
from tests.training.common import TINY_MODEL, periods, small_data

CFG = replace(
    TINY_MODEL, copurchase_rank=6, copurchase_items=50, copurchase_min_support=2, history_len=8
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    _, data, split = small_data(tmp_path_factory.mktemp("copurchase"))
    validation, _ = periods(data, split)
    return validation.history


def test_tables_multiply_to_the_truncated_ease_weights(history: History) -> None:
    features, _, _ = prepare(CFG, history, None)
    factors = fit_copurchase(CFG, history, features)
    binary = history.binary()
    columns = modelled_columns(binary, 2, 50)
    weights = ease_weights(gram_matrix(binary[:, columns].tocsr()), CFG.copurchase_l2)
    u, s, vt = np.linalg.svd(weights.astype(np.float64))
    truncated = (u[:, :6] * s[:6]) @ vt[:6]
    # Through the rows map, catalog items in the order of EASE's columns.
    index = features.item_map.encode(history.item_map.ids.gather(columns - 1))
    product = factors.history[factors.rows[index]] @ factors.items[factors.rows[index]].T
    np.testing.assert_allclose(product, truncated, atol=1e-4 * np.abs(truncated).max())
    assert factors.n_items == len(columns) == 50
    others = np.setdiff1d(np.arange(1, len(features.item_map) + 1), index)
    assert len(others) and (factors.rows[others] == 0).all()
    assert not factors.history[0].any() and not factors.items[0].any()
    again = fit_copurchase(CFG, history, features)
    assert np.array_equal(again.history, factors.history)  # a function of the data


def test_a_rank_the_catalog_cannot_give_is_refused(history: History) -> None:
    cfg = replace(CFG, copurchase_min_support=10**6)
    features, _, _ = prepare(cfg, history, None)
    with pytest.raises(ValueError, match=r"model\.copurchase_rank=6: only 0 items"):
        fit_copurchase(cfg, history, features)


def test_scale_maximises_the_likelihood_of_the_training_targets(history: History) -> None:
    features, _, examples = prepare(CFG, history, None)
    model = make_model(CFG, features, fit_copurchase(CFG, history, features), examples)
    scale = float(model.copurchase_log_scale.detach().exp())
    batch = examples.batch(torch.arange(len(examples)))  # the set is small: every basket
    prior = model.copurchase_sums(batch["history"]) @ model.copurchase_items[1:].T

    def log_likelihood(a: float) -> float:
        """Mean log softmax(a · prior)[target] over the modelled items, line by line."""
        total, n = 0.0, 0
        for item, row in zip(batch["target"].tolist(), batch["target_row"].tolist(), strict=True):
            column = int(model.copurchase_rows[item]) - 1
            if column >= 0:
                logits = a * prior[row].double()
                total += float(logits[column] - logits.logsumexp(0))
                n += 1
        return total / n

    assert 1.0 < scale < math.exp(12)
    best = log_likelihood(scale)
    assert best > log_likelihood(0.8 * scale) and best > log_likelihood(1.25 * scale)
