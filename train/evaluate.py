"""Evaluate every configured model on one data preset (Hydra):

    python train/evaluate.py [data=tafeng] [evaluation.tune=false] [baselines.ease.enabled=false]

Tunes each candidate on the validation period, refits on train + validation, judges it on
the test period, and writes <output_dir>/evaluation/{metrics.parquet, metrics.json,
runs.json, report.md}. All work is in ``segrec.evaluation.run.evaluate_job``.
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from segrec.config import Config, register_configs
from segrec.evaluation.run import evaluate_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    evaluate_job(config)


if __name__ == "__main__":
    main()
