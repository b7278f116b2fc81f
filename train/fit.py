"""Main job: python train/fit.py [data=tafeng] [key=value ...]  (Hydra).

Generates or reads the data, validates it, splits it in time, segments, trains, ranks,
evaluates and exports. All work is in ``segrec.pipeline.fit``, whose summary is returned
(a Hydra multirun keeps it in each job's return value).
"""

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from segrec.config import Config, register_configs
from segrec.pipeline import fit

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any]:
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    return fit(config)


if __name__ == "__main__":
    main()
