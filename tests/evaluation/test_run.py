"""The evaluation end to end: config → tuned baselines → tidy table + report on disk."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from segrec.baselines import Popularity
from segrec.evaluation import Candidate, evaluate_candidates, load_candidates
from segrec.evaluation.breakdown import TIDY_SCHEMA
from segrec.evaluation.protocol import make_periods
from segrec.evaluation.run import evaluate_job
from segrec.evaluation.tuning import Objective, tune
from segrec.pipeline import prepare_data
from tests.helpers import SMALL, compose_config

FAST = [
    "baselines.bpr.iterations=20",
    "baselines.als.iterations=5",
    "baselines.ease.max_items=150",
]


@pytest.fixture(scope="module")
def small_result(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("eval")
    return evaluate_job(compose_config(tmp, [*SMALL, *FAST])), tmp


def test_one_call_evaluates_every_baseline_and_writes_the_report(small_result) -> None:
    result, tmp = small_result
    names = [r.name for r in result.runs]
    assert names[0] == "popularity" and {"personal_frequency", "als", "bpr", "ease"} <= set(names)
    assert any(n.startswith("segment_popularity[") for n in names)
    table = pl.read_parquet(result.files["metrics"])
    assert dict(table.schema) == TIDY_SCHEMA
    assert set(table["items"]) == {"all", "new", "repeat"}
    families = [c for c in result_labels(tmp) if c != "customer_id"]
    assert {"overall", "customers", *families} == set(table["group"])
    assert set(table["k"]) == {10, 20}
    runs = json.loads(result.files["runs"].read_text())
    assert runs["cold_fallback"] == result.fallback
    report = result.files["report"].read_text()
    assert "## Recall / NDCG @20" in report and "**" in report
    assert f"scored by **{result.fallback}**" in report
    assert "## Best against runner-up @20, customer by customer" in report
    per_customer = pl.read_parquet(result.files["per_customer"])
    assert set(per_customer["model"]) == set(names)
    paired = pl.read_parquet(result.files["paired"])
    assert paired.height == 10  # five headline columns x (recall, ndcg)
    for row in paired.iter_rows(named=True):  # the best is the headline table's bold one
        best = table.filter(
            (pl.col("group") == ("overall" if row["customers"] == "overall" else "customers"))
            & (pl.col("label") == row["customers"])
            & (pl.col("items") == row["items"])
            & (pl.col("metric") == row["metric"])
            & (pl.col("k") == 20)
        )["value"].max()
        assert row["best_value"] == pytest.approx(best)
        assert row["difference"] == pytest.approx(row["best_value"] - row["runner_up_value"])
    assert str(result.files["report"]).startswith(str(tmp))


def result_labels(tmp: Path) -> list[str]:
    """The segment families the job used: those of ``segrec.segments`` for the preset."""
    from segrec.evaluation.run import default_segments_at
    from segrec.pipeline import prepare_data

    cfg = compose_config(tmp, [*SMALL, *FAST])
    data, split = prepare_data(cfg.data, tmp / "again", Console(quiet=True))
    return default_segments_at(cfg, data)(split.test_start).columns


def test_cold_customers_of_personal_baselines_get_the_fallback(small_result) -> None:
    result, _ = small_result
    colds = {r.name: r.cold_start for r in result.runs}
    assert colds["popularity"] == "native"
    assert colds["als"] == colds["ease"] == result.fallback
    cold = result.table.filter(
        (pl.col("label") == "cold")
        & (pl.col("metric") == "ndcg")
        & (pl.col("k") == 20)
        & (pl.col("items") == "all")
    )
    by_model = dict(zip(cold["model"], cold["value"], strict=True))
    assert by_model["als"] == by_model["ease"] == by_model[result.fallback]


def test_tuning_keeps_the_best_grid_point(tmp_path: Path) -> None:
    cfg = compose_config(tmp_path, SMALL)
    data, split = prepare_data(cfg.data, tmp_path, Console(quiet=True))
    validation, _ = make_periods(data, split, lambda as_of: None)

    class Bad(Popularity):
        def score(self, customer_ids: pl.Series):  # reversed popularity
            scores = super().score(customer_ids)
            scores[:, 1:] = -scores[:, 1:]
            return scores

    def build(good: bool) -> Popularity:
        return Popularity() if good else Bad()

    candidate = Candidate("pop", build, {"good": False}, {"good": [False, True]})
    best, trials = tune(candidate, validation, Objective(k=10), lambda: None)
    assert best == {"good": True} and len(trials) == 2
    assert trials[1]["ndcg@10"] > trials[0]["ndcg@10"]


def test_candidates_refuse_unknown_grid_keys_and_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"grid: unknown parameter\(s\) \['alpah'\]"):
        Candidate("als", Popularity, {"alpha": 1.0}, {"alpah": [1, 2]})
    assert len(Candidate("p", Popularity, {"a": 1, "b": 2}, {"a": [1, 2], "b": [3]}).points()) == 2
    cfg = compose_config(tmp_path, ["evaluation.models=[baselines,nonesuch]"])
    with pytest.raises(ValueError, match="unknown 'nonesuch'"):
        load_candidates(cfg, [])


def test_two_candidates_with_one_name_are_refused(small_result) -> None:
    """Rows are keyed by model name: two models named alike would read as one."""
    _, tmp = small_result
    cfg = compose_config(tmp / "again", [*SMALL, *FAST])
    data, split = prepare_data(cfg.data, tmp / "again")
    validation, test = make_periods(data, split, lambda _: None)
    twins = [Candidate("two_tower", Popularity), Candidate("two_tower", Popularity)]
    with pytest.raises(ValueError, match=r"share names \['two_tower'\]"):
        evaluate_candidates(twins, validation, test, cfg.evaluation, cfg.baselines, Console())


def test_configured_fallback_and_disabled_baselines(tmp_path: Path) -> None:
    cfg = compose_config(
        tmp_path,
        [
            *SMALL,
            "baselines.cold_fallback=[age_band,region]",
            "baselines.als.enabled=false",
            "baselines.bpr.enabled=false",
            "baselines.ease.enabled=false",
            "evaluation.tune=false",
            "baselines.segment_popularity.families=[region]",
            "baselines.segment_popularity.crossings=[[age_band,income_band]]",
        ],
    )
    data, split = prepare_data(cfg.data, tmp_path, Console(quiet=True))
    validation, test = make_periods(
        data,
        split,
        lambda as_of: data.customers.select("customer_id", "age_band", "region", "income_band"),
    )
    candidates = load_candidates(cfg, validation.families)
    assert [c.name for c in candidates] == [
        "popularity",
        "segment_popularity[region]",
        "segment_popularity[age_band×income_band]",
        "personal_frequency",
    ]
    _, runs, fallback, trials, _ = evaluate_candidates(
        candidates, validation, test, cfg.evaluation, cfg.baselines, Console(quiet=True)
    )
    assert fallback == "segment_popularity[age_band×region]" and trials == []
    assert runs[-1].cold_start == fallback and runs[-1].trials == []
