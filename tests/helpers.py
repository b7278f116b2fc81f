"""Test helpers: compose the real Hydra config, shrunk to run in seconds."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from segrec.config import Config, register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"

# A small synthetic set: a few hundred customers, generated in well under a second.
SMALL = [
    "data.synthetic.n_customers=400",
    "data.synthetic.n_items=200",
    "data.synthetic.n_days=120",
    "data.split.test_start=2024-04-15",
]


def compose_config(tmp_path: Path, overrides: list[str]) -> Config:
    """The job's config as ``train/fit.py`` would see it, with outputs under ``tmp_path``."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"paths.output_dir={tmp_path / 'out'}",
                f"paths.generated_dir={tmp_path / 'generated'}",
                *overrides,
            ],
        )
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    return config
