"""Metric values on cases worked out by hand, and chunking that changes nothing."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from segrec.baselines import PersonalFrequency, Popularity
from segrec.evaluation.breakdown import breakdown
from segrec.evaluation.metrics import build_truth, hits, rank_metrics
from segrec.evaluation.protocol import Period, customer_labels, customer_metrics, rank, rank_each
from tests.evaluation.toy import Fixed, history, period

ITEMS = ["a", "b", "c", "d", "e", "f"]  # item indices 1..6
LOG3 = math.log2(3)


def toy_period(rows, test_rows, scores, segments=None) -> tuple[Period, Fixed]:
    hist = history(rows, ITEMS, segments)
    truth = build_truth(period(hist, test_rows), hist.item_map)
    labels = customer_labels(truth.customer_ids, hist, hist.segments)
    return Period("test", hist, truth, labels), Fixed(scores, hist.n_columns)


def metric(frame: pl.DataFrame, customer: str, items: str, name: str) -> float:
    row = frame.filter((pl.col("customer_id") == customer) & (pl.col("items") == items))
    return float(row[name][0])


def test_recall_and_ndcg_by_hand() -> None:
    # x's truth {b, d}; ranking b, c, d, ...: hits at ranks 1 and 3.
    per, model = toy_period([("x", "a", 5)], [("x", "b"), ("x", "d")], {"x": [0, 6, 5, 4, 1, 0]})
    frame = customer_metrics(model, per, [1, 2, 3])
    assert metric(frame, "x", "all", "recall@2") == pytest.approx(0.5)
    assert metric(frame, "x", "all", "ndcg@2") == pytest.approx(1 / (1 + 1 / LOG3))
    assert metric(frame, "x", "all", "recall@3") == pytest.approx(1.0)
    assert metric(frame, "x", "all", "ndcg@3") == pytest.approx(1.5 / (1 + 1 / LOG3))
    assert metric(frame, "x", "all", "recall@1") == 1.0  # normalised by min(K, |T|) = 1
    assert metric(frame, "x", "all", "hit_rate@1") == 1.0


def test_fewer_test_items_than_k_still_allow_a_perfect_score() -> None:
    per, model = toy_period([("x", "a", 5)], [("x", "c")], {"x": [0, 0, 1, 0, 0, 0]})
    frame = customer_metrics(model, per, [10])
    assert metric(frame, "x", "all", "recall@10") == 1.0
    assert metric(frame, "x", "all", "ndcg@10") == 1.0


def test_ties_are_broken_towards_the_smaller_item_index() -> None:
    # b and c tie; truth c: ranked second.
    per, model = toy_period([("x", "a", 5)], [("x", "c")], {"x": [0, 1, 1, 0, 0, 0]})
    frame = customer_metrics(model, per, [1, 2])
    assert metric(frame, "x", "all", "ndcg@1") == 0.0
    assert metric(frame, "x", "all", "ndcg@2") == pytest.approx(1 / LOG3)


def test_new_items_are_ranked_without_previous_purchases() -> None:
    # y bought a before; buys a (repeat) and e (new). Plain ranking a, e; "new" ranking e first.
    per, model = toy_period([("y", "a", 5)], [("y", "a"), ("y", "e")], {"y": [9, 0, 0, 0, 8, 0]})
    frame = customer_metrics(model, per, [1])
    assert metric(frame, "y", "all", "recall@1") == 1.0
    assert metric(frame, "y", "repeat", "recall@1") == 1.0
    assert metric(frame, "y", "new", "recall@1") == 1.0
    assert frame.filter(pl.col("items") == "new")["n_truth"].to_list() == [1]


def test_customers_without_test_items_in_a_set_are_not_scored() -> None:
    # x buys only what it bought before: no "new" row; z (cold) has no "repeat" row.
    per, model = toy_period([("x", "a", 5)], [("x", "a"), ("z", "b")], {"x": [1, 0, 0, 0, 0, 0]})
    frame = customer_metrics(model, per, [5])
    pairs = set(zip(frame["customer_id"], frame["items"], strict=True))
    assert pairs == {("x", "all"), ("x", "repeat"), ("z", "all"), ("z", "new")}
    assert frame["recall@5"].is_nan().sum() == 0


def test_rank_metrics_gives_nan_without_truth() -> None:
    values = rank_metrics(np.zeros((1, 3), bool), np.array([0]), [3])
    assert math.isnan(values["recall@3"][0]) and math.isnan(values["ndcg@3"][0])


def test_build_truth_labels_new_and_repeat_and_drops_unknown_items() -> None:
    hist = history([("x", "a", 5)], ITEMS)
    truth = build_truth(
        period(hist, [("x", "a"), ("x", "b"), ("x", "zz"), ("w", "zz")]), hist.item_map
    )
    assert truth.customer_ids.to_list() == ["x"]  # w bought only an unknown item
    assert truth.all.indices.tolist() == [1, 2]
    assert truth.repeat.indices.tolist() == [1] and truth.new.indices.tolist() == [2]


def test_hits_looks_up_every_pair() -> None:
    hist = history([("x", "a", 5)], ITEMS)
    truth = build_truth(period(hist, [("x", "b"), ("y", "c"), ("y", "f")]), hist.item_map)
    top = np.array([[2, 3, 0], [6, 0, 3]], np.int32)
    assert hits(truth.all, top).tolist() == [[True, False, False], [True, False, True]]


def test_chunked_and_unchunked_results_are_equal() -> None:
    rng = np.random.default_rng(1)
    items = [f"i{j:02d}" for j in range(30)]
    rows = [
        (f"c{c}", items[j], int(d))
        for c, j, d in zip(
            rng.integers(0, 40, 400),
            rng.integers(0, 30, 400),
            rng.integers(1, 60, 400),
            strict=True,
        )
    ]
    hist = history(rows, items)
    test_rows = [
        (f"c{c}", items[j])
        for c, j in zip(rng.integers(0, 50, 150), rng.integers(0, 30, 150), strict=True)
    ]
    truth = build_truth(period(hist, test_rows), hist.item_map)
    per = Period("test", hist, truth, customer_labels(truth.customer_ids, hist, None))
    model = PersonalFrequency(half_life_days=20, fallback=Popularity()).fit(hist)
    whole = customer_metrics(model, per, [5, 10])
    for size in (1, 7):
        part = customer_metrics(model, per, [5, 10], chunk_size=size)
        assert part.equals(whole)


def test_breakdown_means_counts_and_coverage_by_hand() -> None:
    segments = {"age": {"x": "young", "y": "young", "z": "old"}}
    per, model = toy_period(
        [("x", "a", 5), ("y", "a", 5)],
        [("x", "b"), ("y", "c"), ("z", "b")],
        {"x": [0, 3, 2, 1, 0, 0], "y": [0, 3, 2, 1, 0, 0], "z": [0, 0, 0, 0, 2, 1]},
        segments,
    )
    table = breakdown("m", customer_metrics(model, per, [1]), per.labels, [1], 6)

    def value(group: str, label: str, name: str, items: str = "all") -> float:
        row = table.filter(
            (pl.col("group") == group)
            & (pl.col("label") == label)
            & (pl.col("metric") == name)
            & (pl.col("items") == items)
        )
        return float(row["value"][0])

    # Top-1: x → b (hit), y → b (miss), z → e (miss).
    assert value("overall", "overall", "recall") == pytest.approx(1 / 3)
    assert value("age", "young", "recall") == pytest.approx(0.5)
    assert value("age", "old", "recall") == 0.0
    assert value("customers", "cold", "hit_rate") == 0.0
    assert value("overall", "overall", "coverage") == pytest.approx(2 / 6)  # {b, e}
    assert value("age", "young", "coverage") == pytest.approx(1 / 6)
    young = table.filter((pl.col("label") == "young") & (pl.col("items") == "all"))
    assert set(young["n_customers"]) == {2}
    assert table.columns == [
        "model",
        "items",
        "group",
        "label",
        "n_customers",
        "metric",
        "k",
        "value",
    ]


def test_rankings_scored_together_are_each_rankings_own() -> None:
    """``rank_each``: several score matrices per chunk, each ranked as ``rank`` ranks a
    model giving it alone; a scorer giving another number of matrices is refused by name."""
    per, model = toy_period(
        [("x", "a", 5), ("y", "b", 3)],
        [("x", "b"), ("y", "c")],
        {"x": [0, 6, 5, 4, 1, 0], "y": [0, 1, 2, 3, 4, 5]},
    )
    flipped = Fixed({"x": [0, 0, 1, 4, 5, 6], "y": [0, 5, 4, 3, 2, 1]}, per.history.n_columns)
    both = rank_each(lambda chunk: [model.score(chunk), flipped.score(chunk)], 2, "m", per, 3)
    for ranked, alone in zip(both, (model, flipped), strict=True):
        expected = rank(alone, per, 3)
        assert ranked.keys() == expected.keys()
        assert all((ranked[key] == expected[key]).all() for key in expected)
    assert not (both[0]["all"] == both[1]["all"]).all()
    with pytest.raises(ValueError, match="m: 2 score matrices for one chunk, expected 3"):
        rank_each(lambda chunk: [model.score(chunk)] * 2, 3, "m", per, 3)
    with pytest.raises(ValueError, match="m: more than 1 score matrices"):
        rank_each(lambda chunk: [model.score(chunk)] * 2, 1, "m", per, 3)
