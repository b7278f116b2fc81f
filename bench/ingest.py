"""Ingestion speed: read + validate with segrec vs a bare polars read of the same files.

    python bench/ingest.py [--datasets synthetic_1m,completejourney,tafeng] [--repeat 3]

Aim (issue 3): validation costs at most 2x the bare read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from segrec.config import DataPreset
from segrec.data import load_data
from segrec.data.read import local_path
from segrec.synthetic import ensure_generated

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import datasets_dir, machine, markdown, timed

from tests.helpers import compose_config


def bare_read(cfg: DataPreset) -> int:
    """Read every table with plain polars, all columns, no checks: the floor."""
    rows = 0
    for table in (cfg.interactions, cfg.customers, cfg.items):
        if table is None:
            continue
        path, fmt = local_path(table)  # a zip is the same cached CSV segrec reads
        frame = (
            pl.read_parquet(path)
            if fmt == "parquet"
            else pl.read_csv(path, separator=table.separator)
        )
        rows += frame.height
    return rows


def run(names: list[str], repeat: int, workdir: Path) -> str:
    rows = []
    for name in names:
        overrides = [
            f"data={name}",
            f"paths.datasets_dir={datasets_dir()}",
            "paths.generated_dir=data/generated",
        ]
        cfg = compose_config(workdir, overrides).data
        if cfg.synthetic is not None:
            ensure_generated(cfg.synthetic, Path(cfg.interactions.path).parent)
        elif not Path(cfg.interactions.path).exists():
            print(f"skipping {name}: {cfg.interactions.path} not found", file=sys.stderr)
            continue
        bare_s, n_rows = timed(lambda c=cfg: bare_read(c), repeat)
        seg_s, data = timed(lambda c=cfg: load_data(c, rejects_dir=workdir / "rejects"), repeat)
        kept = sum(t.rows_kept for t in data.tables)
        rows.append(
            [
                name,
                f"{n_rows:,}",
                f"{bare_s:.2f}",
                f"{n_rows / bare_s:,.0f}",
                f"{seg_s:.2f}",
                f"{n_rows / seg_s:,.0f}",
                f"{kept:,}",
                f"{seg_s / bare_s:.2f}x",
            ]
        )
    headers = [
        "dataset",
        "rows (3 tables)",
        "bare polars s",
        "bare rows/s",
        "segrec read+validate s",
        "segrec rows/s",
        "rows kept",
        "cost vs bare",
    ]
    return f"Machine: {machine()}\n\n" + markdown(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="synthetic_1m,completejourney,tafeng")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(run(args.datasets.split(","), args.repeat, Path("outputs/bench_ingest")))


if __name__ == "__main__":
    main()
