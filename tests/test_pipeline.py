"""The main job runs from the real config, and the config refuses typos at compose time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from segrec.pipeline import fit
from tests.helpers import SMALL, compose_config


def test_main_job_on_small_synthetic_data(tmp_path: Path) -> None:
    summary = fit(compose_config(tmp_path, SMALL))
    data = summary["data"]
    assert data["customers"] == 400
    assert data["split"]["test"]["cold_customers"] > 0
    assert 0 < data["split"]["test"]["new_item_share"] < 1
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["data"]["interactions"] == data["interactions"]


@pytest.mark.parametrize("preset", ["synthetic", "tafeng", "completejourney", "custom"])
def test_every_data_preset_matches_the_schema(tmp_path: Path, preset: str) -> None:
    cfg = compose_config(tmp_path, [f"data={preset}"])
    assert cfg.data.name == preset
    assert cfg.data.interactions.path.endswith((".parquet", ".zip", ".csv.gz"))


def test_typo_fails_at_compose_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="intractions"):
        compose_config(tmp_path, ["data.intractions.path=x"])
