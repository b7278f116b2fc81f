"""Shared by the benchmarks: the machine they ran on, timing, markdown tables, and a real
data set's evaluation periods."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming the CPU, cores and memory, printed above every table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Median wall seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def datasets_dir() -> Path:
    return Path(os.environ.get("SEGREC_DATASETS", REPO.parent / "shared" / "datasets"))


def load_dataset(dataset: str, overrides: Sequence[str], workdir: Path) -> tuple[Any, ...]:
    """(config, data, split, segments as of a date) of ``dataset``; ``overrides`` are
    Hydra ``key=value`` strings, the prepared data lives under ``workdir / "out"``. The
    library is imported here, so that benchmarks without data need none of it."""
    from segrec.evaluation.run import default_segments_at
    from segrec.pipeline import prepare_data
    from tests.helpers import compose_config

    overrides = [f"data={dataset}", f"paths.datasets_dir={datasets_dir()}", *overrides]
    cfg = compose_config(workdir, overrides)
    data, split = prepare_data(cfg.data, workdir / "out")
    return cfg, data, split, default_segments_at(cfg, data)


def dataset_periods(dataset: str, overrides: Sequence[str], workdir: Path) -> tuple[Any, ...]:
    """(config, segments as of a date, validation period, test period) of ``dataset``, as
    the evaluation protocol builds them (see ``load_dataset``)."""
    from segrec.evaluation.protocol import make_periods

    cfg, data, split, segments_at = load_dataset(dataset, overrides, workdir)
    validation, test = make_periods(data, split, segments_at)
    return cfg, segments_at, validation, test
