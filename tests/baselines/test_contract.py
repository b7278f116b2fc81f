"""Every baseline honours the scoring contract (the implicit-style contract test).

On a planted matrix (two blocks of customers, each buying only its block's items) every
personalised model must rank a customer's unbought block items above the other block's.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segrec.baselines import (
    EASE,
    ImplicitALS,
    ImplicitBPR,
    PersonalFrequency,
    Popularity,
    SegmentPopularity,
)
from segrec.recommender import History, Recommender, recommend
from tests.evaluation.toy import history

ITEMS = [f"i{j:02d}" for j in range(20)]  # block A: i00..i09, block B: i10..i19


@pytest.fixture(scope="module")
def blocks() -> History:
    """40 customers; each buys 6 of their block's 10 items, a few of them twice."""
    rng = np.random.default_rng(3)
    rows, labels = [], {}
    for c in range(40):
        block = c % 2
        labels[f"c{c:02d}"] = "A" if block == 0 else "B"
        for j in rng.choice(10, size=6, replace=False):
            item = ITEMS[block * 10 + int(j)]
            rows.append((f"c{c:02d}", item, int(rng.integers(1, 50))))
            if j < 3:
                rows.append((f"c{c:02d}", item, int(rng.integers(1, 50))))
    labels["newbie"] = "B"
    return history(rows, ITEMS, {"block": labels})


MODELS = {
    "popularity": lambda: Popularity(),
    "segment_popularity": lambda: SegmentPopularity(["block"], prior_weight=1.0),
    "personal_frequency": lambda: PersonalFrequency(30, fallback=Popularity()),
    "als": lambda: ImplicitALS(
        factors=4, iterations=10, weighting="log", use_gpu=False, fallback=Popularity()
    ),
    "bpr": lambda: ImplicitBPR(
        factors=8, iterations=60, learning_rate=0.1, use_gpu=False, fallback=Popularity()
    ),
    "ease": lambda: EASE(l2=1.0, min_support=1, fallback=Popularity()),
}
PERSONAL = ["personal_frequency", "als", "bpr", "ease"]


@pytest.mark.parametrize("name", list(MODELS))
def test_scores_follow_the_contract(name: str, blocks: History) -> None:
    model: Recommender = MODELS[name]().fit(blocks)
    assert isinstance(model, Recommender) and model.name and model.cold_start
    ids = pl.Series(["c00", "c01", "nobody", "newbie"])
    scores = model.score(ids)
    assert scores.shape == (4, blocks.n_columns) and scores.dtype == np.float32
    assert np.isneginf(scores[:, 0]).all() and np.isfinite(scores[:, 1:]).all()
    np.testing.assert_array_equal(scores, model.score(ids))  # deterministic
    assert model.score(pl.Series([], dtype=pl.Utf8)).shape == (0, blocks.n_columns)


@pytest.mark.parametrize("name", PERSONAL)
def test_personal_models_recommend_the_customers_own_block(name: str, blocks: History) -> None:
    # Personal frequency recommends what was bought; the others must also generalise to the
    # block's unbought items.
    model = MODELS[name]().fit(blocks)
    ids = pl.Series([f"c{c:02d}" for c in range(40)])
    top = recommend(model, blocks, ids, k=3, exclude_purchased=name != "personal_frequency")
    block_of_item = (top.items - 1) // 10  # item index 1..10 → block 0, 11..20 → 1
    own = np.arange(40)[:, None] % 2
    assert (block_of_item == own).mean() >= 0.9


@pytest.mark.parametrize("name", PERSONAL)
def test_cold_customers_get_the_fallback_ranking(name: str, blocks: History) -> None:
    model = MODELS[name]().fit(blocks)
    assert model.cold_start == "popularity"
    fallback = Popularity().fit(blocks).score(pl.Series(["nobody"]))
    np.testing.assert_array_equal(model.score(pl.Series(["nobody"])), fallback)


def test_a_personal_model_without_fallback_says_so(blocks: History) -> None:
    model = PersonalFrequency().fit(blocks)
    assert "none" in model.cold_start
    assert np.isfinite(model.score(pl.Series(["nobody"]))[:, 1:]).all()


def test_score_before_fit_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        Popularity().score(pl.Series(["x"]))
    with pytest.raises(RuntimeError, match="fit"):
        PersonalFrequency().score(pl.Series(["x"]))
