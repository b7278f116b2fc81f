"""The main job, stage by stage: data → split → (segments, model, ranking, evaluation, export).

``fit(cfg)`` is what ``train/fit.py`` runs; tests call it directly with a shrunk config.
Each stage is a library call; this module only wires them and reports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from segrec.config import Config, DataPreset
from segrec.data import RetailData, TimeSplit, load_data, split_by_time
from segrec.data.summary import print_summary, summarize
from segrec.synthetic import ensure_generated


def prepare_data(
    data_cfg: DataPreset, output_dir: Path, console: Console | None = None
) -> tuple[RetailData, TimeSplit]:
    """Generate the synthetic data if the preset asks for it, then read, validate and split."""
    console = console or Console()
    if data_cfg.synthetic is not None:
        ensure_generated(data_cfg.synthetic, Path(data_cfg.interactions.path).parent)
    with console.status(f"Reading and validating {data_cfg.name} ..."):
        data = load_data(data_cfg, rejects_dir=output_dir / "rejects")
    with console.status("Splitting in time ..."):
        split = split_by_time(data.interactions, data_cfg.split)
    return data, split


def fit(cfg: Config, console: Console | None = None) -> dict[str, Any]:
    """Run the main job and return its summary (also written to ``summary.json``)."""
    console = console or Console()
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data, split = prepare_data(cfg.data, output_dir, console)
    summary = {"data": summarize(data, split)}
    print_summary(summary["data"], console)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"[bold green]Done[/] in {summary['seconds']} s. Outputs: {output_dir}")
    return summary
