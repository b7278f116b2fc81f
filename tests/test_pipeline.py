"""The main job runs from the real config, end to end, and the config refuses typos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hydra.errors import ConfigCompositionException

from segrec.bundle import read_bundle
from segrec.pipeline import fit
from segrec.ranking import DenseScores, HistoryRanker
from segrec.ranking.new_items import CHOICES
from tests.helpers import SMALL, compose_config

# The whole pipeline on SMALL data in well under a minute: few epochs, a small ranker.
FAST = [
    *SMALL,
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "logger.tensorboard=false",
    "ranking.windows.n=2",
    "ranking.windows.label_days=14",
    "ranking.windows.stride_days=7",
    "ranking.model.max_iter=20",
    "ranking.model.min_samples_leaf=20",
    "ranking.model.n_threads=1",
    "evaluation.tune=false",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("main_job")
    return tmp / "out", fit(compose_config(tmp, FAST))


@pytest.mark.slow
def test_main_job_summarises_every_stage(run: tuple[Path, dict]) -> None:
    out, summary = run
    data = summary["data"]
    assert data["customers"] == 400
    assert data["split"]["test"]["cold_customers"] > 0
    assert 0 < data["split"]["test"]["new_item_share"] < 1
    written = json.loads((out / "summary.json").read_text())
    assert written["data"]["interactions"] == data["interactions"]
    assert Path(summary["segments"]["files"]["html"]).is_file()
    assert summary["training"]["selection"]["best_epoch"] >= 1
    assert Path(summary["evaluation"]["report"]).is_file()
    assert (out / "bundle" / "latest").exists()


@pytest.mark.slow
def test_main_job_evaluates_model_and_ranker_beside_the_baselines(
    run: tuple[Path, dict],
) -> None:
    out, summary = run
    # How the ranker ordered new items (auto's pick, which moves with the model fed to it).
    assert summary["evaluation"]["ranker_new_items"] in CHOICES
    table = pl.read_parquet(out / "evaluation" / "metrics.parquet")
    models = set(table["model"])
    assert {"popularity", "personal_frequency", "ease", "two_tower"} <= models
    assert {"ranker[two_tower+ease]", "ranker[history]"} <= models
    report = (out / "evaluation" / "report.md").read_text()
    assert "ranker[two_tower+ease]" in report


@pytest.mark.slow
def test_bundle_ranker_serves_from_the_bundle_alone(run: tuple[Path, dict]) -> None:
    """The bundle's ranker, fed the bundle's own vectors, puts each heavy buyer's staple in
    the top 10 and their own items first: its state holds every purchase up to the end
    of the data, in the bundle's catalog columns."""
    out, summary = run
    bundle = read_bundle(out / "bundle")
    assert bundle.model_version == summary["bundle"]["model_version"]
    assert bundle.ranker_dir is not None
    ranker = HistoryRanker.load(bundle.ranker_dir)
    assert ranker.state.n_columns == len(bundle.item_map) + 1
    lines = pl.read_parquet(out.parent / "generated" / "synthetic" / "interactions.parquet")
    staples = (
        lines.group_by("customer_id", "item_id")
        .len()
        .sort(["len", "customer_id", "item_id"], descending=[True, False, False])
        .unique("customer_id", keep="first", maintain_order=True)
        .head(5)
    )
    rows = bundle.customer_map.encode(staples["customer_id"])
    scores = bundle.customer_vectors[rows] @ bundle.item_vectors.T
    scores[:, 0] = -np.inf
    for i, (customer, staple) in enumerate(staples.select("customer_id", "item_id").rows()):
        items, values = ranker.rank(customer, {"two_tower": DenseScores(scores[i : i + 1])}, k=10)
        assert len(items) == 10 and np.all(np.diff(values) <= 0)
        assert bundle.item_map.encode(pl.Series([staple]))[0] in items
        bought = bundle.item_map.encode(lines.filter(pl.col("customer_id") == customer)["item_id"])
        assert np.isin(items[:5], bought).sum() >= 3  # a habit-driven shopper: repeats first


def test_every_data_preset_matches_the_schema(tmp_path: Path) -> None:
    for preset in ["synthetic", "tafeng", "completejourney", "custom"]:
        cfg = compose_config(tmp_path, [f"data={preset}"])
        assert cfg.data.name == preset
        assert cfg.data.interactions.path.endswith((".parquet", ".zip", ".csv.gz"))


def test_typo_fails_at_compose_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="intractions"):
        compose_config(tmp_path, ["data.intractions.path=x"])
