"""The shipped presets compose against the schema and fit their data sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from segrec.config import Config
from segrec.data import load_data, split_by_time
from segrec.segments import assign_segments, check_segments
from tests.helpers import compose_config

PRESETS = {
    "synthetic": ["age", "region", "income_band", "rfm", "rfm_group", "lifecycle", "taste"],
    "synthetic_1m": ["age", "region", "income_band", "rfm", "rfm_group", "lifecycle", "taste"],
    "tafeng": ["age_group", "region", "rfm", "rfm_group", "taste"],
    "completejourney": [
        "age",
        "income",
        "household_comp",
        "kids_count",
        "rfm",
        "rfm_group",
        "taste",
    ],
    "custom": ["rfm", "rfm_group", "lifecycle", "taste"],
}


@pytest.mark.parametrize("preset", PRESETS)
def test_each_data_preset_picks_its_segments(preset: str, tmp_path: Path) -> None:
    cfg = compose_config(tmp_path, [f"data={preset}"])
    assert cfg.segments.families == PRESETS[preset]


def test_families_can_be_changed_and_removed_from_the_command_line(tmp_path: Path) -> None:
    cfg = compose_config(
        tmp_path, ["segments.rfm.rfm.bins=5", "~segments.learned.taste", "segments=tafeng"]
    )
    assert cfg.segments.rfm["rfm"].bins == 5 and "taste" not in cfg.segments.families


def test_a_misspelt_key_fails_at_compose_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="binz"):
        compose_config(tmp_path, ["segments.rfm.rfm.binz=5"])


def _real(tmp_path: Path, preset: str, datasets: Path) -> Config:
    return compose_config(tmp_path, [f"data={preset}", f"paths.datasets_dir={datasets}"])


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tafeng", "completejourney"])
def test_real_presets_fit_their_data(preset: str, tmp_path: Path, real_datasets: Path) -> None:
    cfg = _real(tmp_path, preset, real_datasets)
    data = load_data(cfg.data, rejects_dir=tmp_path / "rejects")
    assert check_segments(cfg.segments, data, data.interactions) == []
    as_of = split_by_time(data.interactions, cfg.data.split).test_start
    out = assign_segments(cfg.segments, data, as_of)
    assert out.columns == ["customer_id", *PRESETS[preset]]
    assert out.height == data.customers.height
    for family in ("rfm_group", "taste"):  # behavioural families cover most customers
        assert (out[family] != "unknown").mean() > 0.8
