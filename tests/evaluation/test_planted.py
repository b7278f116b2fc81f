"""On synthetic data with planted structure the baselines find what was planted:
repeat buying (personal top-frequency beats popularity on all items) and taste that
depends on attributes (segment popularity beats popularity for cold customers)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from segrec.evaluation import evaluate_candidates, load_candidates, make_periods
from segrec.evaluation.protocol import attribute_segments
from segrec.pipeline import prepare_data
from tests.helpers import compose_config

ONLY_CHEAP = [
    "baselines.als.enabled=false",
    "baselines.bpr.enabled=false",
    "baselines.ease.enabled=false",
    "evaluation.tune=false",
]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The default synthetic preset (4,000 customers), cheap baselines only."""
    tmp: Path = tmp_path_factory.mktemp("planted")
    cfg = compose_config(tmp, ONLY_CHEAP)
    data, split = prepare_data(cfg.data, tmp, Console(quiet=True))
    validation, test = make_periods(data, split, lambda as_of: attribute_segments(data.customers))
    candidates = load_candidates(cfg, validation.families)
    result, *_ = evaluate_candidates(
        candidates, validation, test, cfg.evaluation, cfg.baselines, Console(quiet=True)
    )
    return result


def ndcg(table: pl.DataFrame, label: str, items: str = "all") -> dict[str, float]:
    rows = table.filter(
        (pl.col("label") == label)
        & (pl.col("items") == items)
        & (pl.col("metric") == "ndcg")
        & (pl.col("k") == 20)
    )
    return dict(zip(rows["model"], rows["value"], strict=True))


def test_personal_frequency_beats_popularity_on_all_items(table: pl.DataFrame) -> None:
    overall = ndcg(table, "overall")
    assert overall["personal_frequency"] > 1.5 * overall["popularity"]


def test_segment_popularity_beats_popularity_for_cold_customers(table: pl.DataFrame) -> None:
    cold = ndcg(table, "cold")
    best_segment = max(v for k, v in cold.items() if k.startswith("segment_popularity["))
    assert best_segment > cold["popularity"]
