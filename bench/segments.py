"""Segment assignment speed and memory: every family of a preset vs a bare polars group_by.

    python bench/segments.py [--data synthetic_1m] [--repeat 3]

Both sides read the same generated Parquet files and work on the same rows (the purchases
before the as-of date, the test cutoff). The floor is one polars group_by per customer
(orders, revenue, last purchase), the least any behavioural segment needs. Each side runs
in its own process, so that its peak resident memory (``ru_maxrss``) is its own: polars
allocates outside Python, where tracemalloc cannot see.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine, markdown

from segrec.config import Config
from segrec.data import RetailData
from segrec.data.split import cutoffs
from segrec.segments import assign_segments
from segrec.synthetic import ensure_generated
from tests.helpers import compose_config

WORKDIR = Path("outputs/bench_segments")


def _config(data: str) -> Config:
    return compose_config(WORKDIR, [f"data={data}", "paths.generated_dir=data/generated"])


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _read(cfg: Config) -> RetailData:
    """The generated tables as ``RetailData``, read directly (validation is not measured)."""
    interactions = pl.read_parquet(cfg.data.interactions.path).with_columns(
        pl.col("quantity").cast(pl.Float64), pl.col("revenue").cast(pl.Float64)
    )
    assert cfg.data.customers is not None and cfg.data.items is not None
    customers = pl.read_parquet(cfg.data.customers.path)
    items = pl.read_parquet(cfg.data.items.path)
    return RetailData(interactions, customers, items, [], [])


def _bare_group_by(data: RetailData, as_of: datetime) -> int:
    rows = data.interactions.lazy().filter(pl.col("timestamp") < as_of)
    out = rows.group_by("customer_id").agg(
        pl.col("basket_id").n_unique().alias("orders"),
        pl.col("revenue").sum(),
        pl.col("timestamp").max(),
    )
    return out.collect().height


def measure(side: str, data_name: str, repeat: int) -> dict[str, float]:
    """Run one side ``repeat`` times in this process; time each run, keep the peak memory."""
    cfg = _config(data_name)
    data = _read(cfg)
    span = data.interactions.select(pl.col("timestamp").min(), pl.col("timestamp").max().alias("m"))
    as_of = cutoffs(cfg.data.split, *span.row(0))[1]  # the test cutoff
    loaded = _rss_gib()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        if side == "segrec":
            assign_segments(cfg.segments, data, as_of)
        else:
            _bare_group_by(data, as_of)
        times.append(time.perf_counter() - start)
    return {
        "seconds": sorted(times)[len(times) // 2],
        "peak_gib": _rss_gib(),
        "loaded_gib": loaded,
        "rows": data.interactions.filter(pl.col("timestamp") < as_of).height,
        "customers": data.customers.height,
        "families": len(cfg.segments.families),
    }


def _subprocess(side: str, data_name: str, repeat: int) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--measure",
        side,
        "--data",
        data_name,
        "--repeat",
        str(repeat),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(data_name: str, repeat: int) -> str:
    cfg = _config(data_name)
    if cfg.data.synthetic is not None:
        ensure_generated(cfg.data.synthetic, Path(cfg.data.interactions.path).parent)
    bare = _subprocess("bare", data_name, repeat)
    seg = _subprocess("segrec", data_name, repeat)
    headers = ["what", "wall s (median)", "peak RSS GiB", "RSS over loaded data GiB"]
    rows = []
    for name, m in (
        ("bare polars group_by (orders, revenue, last)", bare),
        (f"assign_segments, {seg['families']:.0f} families", seg),
    ):
        rows.append(
            [
                name,
                f"{m['seconds']:.2f}",
                f"{m['peak_gib']:.2f}",
                f"{m['peak_gib'] - m['loaded_gib']:.2f}",
            ]
        )
    extra = max(bare["peak_gib"] - bare["loaded_gib"], 1e-3)
    rows.append(
        [
            "ratio segrec / bare",
            f"{seg['seconds'] / bare['seconds']:.1f}x",
            f"{seg['peak_gib'] / bare['peak_gib']:.2f}x",
            f"{(seg['peak_gib'] - seg['loaded_gib']) / extra:.1f}x",
        ]
    )
    head = (
        f"Machine: {machine()}\n\nData: {data_name}, {seg['customers']:,.0f} customers, "
        f"{seg['rows']:,.0f} purchase rows before the as-of date; median of {repeat} runs, "
        f"each side in its own process.\n\n"
    )
    return head + markdown(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="synthetic_1m")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", choices=["segrec", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.data, args.repeat)))
    else:
        print(run(args.data, args.repeat))


if __name__ == "__main__":
    main()
