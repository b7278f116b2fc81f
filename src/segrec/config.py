"""The top-level typed configuration, composed by Hydra from ``conf/``.

Each stage owns the dataclass of its own settings; this module only assembles them.
``register_configs`` puts the schema in Hydra's ConfigStore, so a misspelt key fails at
compose time; it imports Hydra lazily so that this module stays importable without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segrec.baselines.config import BaselinesConfig
from segrec.data.config import DataConfig
from segrec.evaluation.config import EvaluationConfig
from segrec.export.config import ExportConfig
from segrec.models.config import ModelConfig
from segrec.ranking.config import RankingConfig
from segrec.segments.config import SegmentsConfig
from segrec.synthetic import SyntheticConfig
from segrec.training.config import LoggerConfig, TrainerConfig


@dataclass
class PathsConfig:
    """Where a run reads and writes. ``output_dir`` is the run's own directory."""

    output_dir: str = "outputs/run"
    # Generated synthetic data lives here, shared between runs (regenerated on config change).
    generated_dir: str = "data/generated"
    datasets_dir: str = "../shared/datasets"


@dataclass
class DataPreset(DataConfig):
    """A data preset, optionally backed by the built-in synthetic generator."""

    synthetic: SyntheticConfig | None = None


@dataclass
class Config:
    """Everything one segrec job needs."""

    data: DataPreset = field(default_factory=DataPreset)
    paths: PathsConfig = field(default_factory=PathsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    # Continue a killed run from its checkpoints (run it with the same hydra.run.dir).
    resume: bool = False
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    seed: int = 42


def register_configs() -> None:
    """Register the schema as ``base_config`` for ``conf/config.yaml`` to extend."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=Config)
