"""Segment job: python train/segment.py [data=tafeng] [segments.as_of=2001-02-01] (Hydra).

Assigns every segment family of ``conf/segments/<data preset>.yaml`` as of a date, writes
``segments.parquet`` (customer_id + one column per family), the vocabularies the model
encodes them with, and the segment report (HTML with plots, Markdown, Parquet). All work is
in ``segrec.report.job.segment_job``.
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from segrec.config import Config, register_configs
from segrec.report.job import segment_job

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    segment_job(config)


if __name__ == "__main__":
    main()
