"""How new items are ordered: the NDCG used to choose, the two orders, the saved choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segrec.ranking import HistoryRanker
from segrec.ranking.new_items import CHOICES, candidate_scores, log_prior, mean_ndcg
from tests.ranking.toy import habits, small_config

NAMES = ["is_new", "item_share", "seg_share:age", "seg_share:region"]


def test_mean_ndcg_by_hand() -> None:
    group = np.array([0, 0, 0, 1, 1, 2])
    y = np.array([0, 1, 1, 1, 0, 0])
    score = np.array([3.0, 2.0, 1.0, 0.0, 5.0, 1.0])
    # group 0: hits at ranks 2, 3 of 2 positives; group 1: hit at rank 2 of 1; group 2: none.
    g0 = (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    g1 = (1 / np.log2(3)) / 1
    assert mean_ndcg(group, y, score, k=10) == pytest.approx((g0 + g1) / 2)
    # At k = 1 neither group's top pair is a hit.
    assert mean_ndcg(group, y, score, k=1) == 0.0


def test_prior_puts_new_items_after_repeats_by_segment_share() -> None:
    x = np.array(
        [
            [0, 0.1, 0.1, 0.1],  # a repeat with a poor model score
            [1, 0.5, 0.4, 0.4],  # new, popular in the customer's segments
            [1, 0.5, 0.01, 0.02],  # new, popular overall but not in the segments
        ],
        np.float32,
    )
    raw = np.array([-8.0, 6.0, 9.0])
    model = candidate_scores("model", raw, x, NAMES)
    assert model.argmax() == 2 and model.argmin() == 0
    prior = candidate_scores("prior", raw, x, NAMES)
    assert prior[0] > prior[1] > prior[2] > 1.0  # still above every non-candidate
    assert log_prior(x, NAMES)[1] == pytest.approx(np.log(0.4 + 1e-9))


def test_blend_shrinks_new_items_towards_their_segment_prior() -> None:
    x = np.array([[0, 0.1, 0.1, 0.1], [1, 0.5, 0.4, 0.4], [1, 0.5, 0.01, 0.02]], np.float32)
    raw = np.array([-8.0, 6.0, 9.0])
    blend = candidate_scores("blend", raw, x, NAMES)
    prior = log_prior(x, NAMES)
    assert blend[0] == pytest.approx(100.0 - 8.0)  # a repeat keeps the trees' score
    assert blend[1:] == pytest.approx(100.0 + (raw[1:] + prior[1:]) / 2, rel=1e-6)
    # The model preferred item 2; the blend follows the segments and prefers item 1.
    assert blend[1] > blend[2]


def test_auto_choice_is_measured_saved_and_loaded(tmp_path: Path) -> None:
    cfg = small_config()
    cfg.new_items, cfg.windows.n = "auto", 3  # window 1 overlaps window 0: judged by 2
    ranker = HistoryRanker(cfg).fit(habits())
    choice = ranker.new_items_choice
    assert ranker.new_items in CHOICES
    assert set(choice) >= {*CHOICES, "held_out_window"}
    assert choice["judges_fitted_on"] == [2]
    best = max(CHOICES, key=lambda s: choice[s]["ndcg_all"] + choice[s]["ndcg_new"])
    assert ranker.new_items == best
    ranker.save(tmp_path)
    loaded = HistoryRanker.load(tmp_path)
    assert (loaded.new_items, loaded.new_items_choice) == (ranker.new_items, choice)


def test_auto_judges_only_with_windows_that_end_before_the_held_out_one() -> None:
    """Labels of 28 days every 14: window 1's labels cover half of window 0's, so only
    windows 2 and 3 may fit the judges; with none such, auto falls back to the default."""
    from segrec.ranking.config import WindowsConfig
    from segrec.ranking.new_items import DEFAULT, choose_strategy
    from segrec.ranking.training import TrainingSet

    rng = np.random.default_rng(0)
    n = 400
    window = np.repeat(np.arange(4, dtype=np.int16), n // 4)
    x = np.column_stack([rng.random(n) < 0.5, rng.uniform(0.01, 0.1, (n, 3))]).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int8)
    data = TrainingSet(x, y, np.ones(n, np.float32), window, np.arange(n) // 8)
    seen: list[np.ndarray] = []

    def fit_trees(x: np.ndarray, y: np.ndarray, w: np.ndarray):  # type: ignore[no-untyped-def]
        seen.append(x)
        return lambda z: z[:, 1].astype(np.float64)

    windows = WindowsConfig(n=4, label_days=28, stride_days=14)
    _, measured = choose_strategy(data, NAMES, fit_trees, windows)
    np.testing.assert_array_equal(seen[0], x[window >= 2])
    assert measured["judges_fitted_on"] == [2, 3]
    two = TrainingSet(*(a[window < 2] for a in (x, y, data.w, window, data.group)))
    chosen, measured = choose_strategy(two, NAMES, fit_trees, windows)
    assert chosen == DEFAULT and "raise ranking.windows.n" in measured["reason"]


def test_unknown_strategy_is_refused() -> None:
    cfg = small_config()
    cfg.new_items = "sometimes"
    with pytest.raises(ValueError, match=r"ranking\.new_items"):
        HistoryRanker(cfg)


def test_linear_reads_only_season_robust_columns_and_learns_segment_taste() -> None:
    from segrec.ranking.new_items import LinearNewItems, linear_columns
    from segrec.ranking.training import TrainingSet

    names = ["is_new", "item_trend", "item_share", "seg_share:age", "nbr_score"]
    assert linear_columns(names) == ["item_share", "seg_share:age", "nbr_score"]
    rng = np.random.default_rng(0)
    n = 4000
    seg = rng.uniform(0.001, 0.2, n)
    x = np.column_stack(
        [np.ones(n), rng.normal(size=n), rng.uniform(0.001, 0.1, n), seg, rng.uniform(0, 1, n)]
    ).astype(np.float32)
    y = (rng.random(n) < seg * 3).astype(np.int8)  # bought in proportion to segment share
    data = TrainingSet(x, y, np.ones(n, np.float32), np.zeros(n, np.int16), np.arange(n))
    linear = LinearNewItems.fit(data, names)
    coef = dict(zip(linear.columns, linear.coef, strict=True))
    assert coef["seg_share:age"] > 5 * max(abs(coef["item_share"]), abs(coef["nbr_score"]))
    # Repeats keep the trees' score; new items take the linear log-odds, on that scale.
    pairs = np.array([[0, 0, 0.05, 0.01, 0], [1, 9, 0.05, 0.15, 0], [1, -9, 0.05, 0.01, 0]])
    scores = candidate_scores("linear", np.array([2.0, 9.0, 9.0]), pairs, names, linear)
    assert scores[0] == pytest.approx(102.0)
    assert scores[1] > scores[2]  # by segment share, whatever the trend says
    assert scores[1] == pytest.approx(100.0 + linear.log_odds(pairs[1:2], names)[0], rel=1e-6)
    assert LinearNewItems.from_dict(linear.to_dict()) == linear


def test_linear_is_fitted_saved_and_loaded(tmp_path: Path) -> None:
    cfg = small_config()
    cfg.new_items = "linear"
    ranker = HistoryRanker(cfg).fit(habits())
    assert ranker.linear is not None
    ranker.save(tmp_path)
    loaded = HistoryRanker.load(tmp_path, segments=habits().segments)
    assert loaded.linear == ranker.linear
    ids = habits().interactions["customer_id"].unique().sort()
    assert np.array_equal(loaded.score(ids), ranker.score(ids))


def test_ensemble_averages_the_trees_the_linear_model_and_the_prior(tmp_path: Path) -> None:
    """New items score the mean of the three log-odds views, repeats the trees' own; the
    linear model is fitted, saved and loaded as for ``linear``."""
    from segrec.ranking.new_items import log_prior

    cfg = small_config()
    cfg.new_items = "ensemble"
    ranker = HistoryRanker(cfg).fit(habits())
    assert ranker.linear is not None
    names = list(ranker.fitted[1].features)
    x = np.zeros((2, len(names)), np.float32)
    x[:, names.index("item_share")] = 0.02
    x[1, names.index("is_new")] = 1.0
    raw = np.array([1.5, -2.0])
    scores = candidate_scores("ensemble", raw, x, names, ranker.linear)
    mean = (raw[1] + ranker.linear.log_odds(x[1:], names)[0] + log_prior(x[1:], names)[0]) / 3
    assert scores[0] == pytest.approx(101.5) and scores[1] == pytest.approx(100.0 + mean)
    with pytest.raises(ValueError, match="ensemble needs its fitted linear model"):
        candidate_scores("ensemble", raw, x, names)
    ranker.save(tmp_path)
    loaded = HistoryRanker.load(tmp_path, segments=habits().segments)
    assert loaded.new_items == "ensemble" and loaded.linear == ranker.linear
    ids = habits().interactions["customer_id"].unique().sort()
    assert np.array_equal(loaded.score(ids), ranker.score(ids))
