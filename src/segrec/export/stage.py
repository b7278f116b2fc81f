"""The export stage of the main job: one call at the end of ``pipeline.fit``.

Kept apart from ``write_bundle`` so that the writer stays generic (any tower with an input
spec) while this module knows the main job's pieces: the config, the run directory, the
trained two-tower recommender.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console

from segrec.export.config import ExportConfig
from segrec.export.contents import Saveable
from segrec.export.two_tower import two_tower_contents
from segrec.export.writer import WrittenBundle, write_bundle

if TYPE_CHECKING:
    from segrec.training.recommender import TwoTowerRecommender


def bundle_root(cfg: ExportConfig, output_dir: str | Path) -> Path:
    """Where bundles and ``latest`` go: ``cfg.dir``, relative to the run's output dir."""
    root = Path(cfg.dir)
    return root if root.is_absolute() else Path(output_dir) / root


def export_bundle(
    cfg: ExportConfig,
    output_dir: str | Path,
    recommender: TwoTowerRecommender,
    *,
    ranker: Saveable | None = None,
    top_items: pl.DataFrame | None = None,
    training_config: Any = None,
    metrics: Mapping[str, Any] | None = None,
    console: Console | None = None,
) -> WrittenBundle | None:
    """Write the run's bundle (None when ``export.enabled`` is false) and say where.

    ``recommender`` must be bound (``fit(history)``) to the history whose customers serving
    should know, normally all data up to its end: their vectors are computed as of it.
    """
    if not cfg.enabled:
        return None
    console = console or Console()
    contents = two_tower_contents(
        recommender,
        ranker=ranker,
        top_items=top_items,
        training_config=training_config,
        metrics=metrics,
    )
    with console.status("Exporting the bundle (ONNX, parity check, index) ..."):
        written = write_bundle(bundle_root(cfg, output_dir), contents, cfg)
    m = written.manifest
    console.print(
        f"Bundle {m.model_version}: {written.path} (parity max diff "
        f"{m.tower['parity']['max_abs_diff']:.1e}, {m.index['kind']} index recall@"
        f"{m.index['recall']['k']} {m.index['recall']['recall']:.3f})"
    )
    return written
