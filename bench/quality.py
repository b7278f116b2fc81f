"""Quality: every registered model on the synthetic default, Ta-Feng and Complete Journey.

    python bench/quality.py [--datasets synthetic tafeng completejourney]
                            [--models baselines two_tower] [--out bench/results/quality.md]
                            [-o key=value ...]   # extra Hydra overrides for every data set

Each data set goes through ``segrec.evaluation.evaluate`` exactly as ``train/evaluate.py``
runs it (tune on validation, refit on train + validation, judge on test, full ranking),
with the small per-data-set grids below so that the three data sets take minutes on a
laptop. Models join this table by registering a source in
``segrec.evaluation.candidates.SOURCES`` and being named in ``--models``. Prints one
Markdown section per data set: data size, the headline tables at K = 20 and 10 (overall,
warm, cold; all items and items new to the customer; coverage; fit time; NDCG relative to
popularity measured in the same run) and the cold-start fallback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import datasets_dir, machine
from rich.console import Console

from segrec.evaluation.report import headline
from segrec.evaluation.run import EvaluationResult, evaluate_job
from tests.helpers import compose_config

# Grids kept small: the bench shows the bar, train/evaluate.py can search wider.
LARGE = [
    "baselines.ease.max_items=6000",  # ~10 s per inversion on 2 cores; see baselines/ease.py
    "baselines.ease.grid={l2: [200.0, 1000.0]}",
    "baselines.bpr.grid={}",
    "baselines.als.grid={regularization: [0.05, 1.0]}",
]
DATASETS: dict[str, list[str]] = {
    "synthetic": ["baselines.segment_popularity.crossings=[[age,income_band]]"],
    # The common protocol: train before 2001-02-01, test on February 2001 (conf/data).
    "tafeng": [*LARGE, "baselines.segment_popularity.crossings=[[age_group,region]]"],
    # Cutoff 2017-11-01, validation October (conf/data); 92k items, 2.5k households.
    "completejourney": [*LARGE, "baselines.segment_popularity.crossings=[[age,income]]"],
}


def evaluate_dataset(name: str, models: list[str], extra: list[str], workdir: Path) -> str:
    """Evaluate one data set and return its Markdown section."""
    overrides = [
        f"data={name}",
        f"paths.datasets_dir={datasets_dir()}",
        "paths.generated_dir=data/generated",
        f"evaluation.models=[{','.join(models)}]",
        *DATASETS[name],
        *extra,
    ]
    cfg = compose_config(workdir / name, overrides)
    if cfg.data.synthetic is None and not Path(cfg.data.interactions.path).exists():
        return f"## {name}\n\nskipped: {cfg.data.interactions.path} not found\n"
    started = time.perf_counter()
    result = evaluate_job(cfg, Console(stderr=True))
    seconds = time.perf_counter() - started
    return section(name, result, seconds)


def section(name: str, result: EvaluationResult, seconds: float) -> str:
    """Data size, the two headline tables and the notes of one data set."""
    sizes = result.markdown.split("\n\n")[2]  # the report's "Test period ..." line
    ratio = "popularity" if any(r.name == "popularity" for r in result.runs) else None
    parts = [
        f"## {name}",
        sizes,
        headline(result.table, result.runs, 20, ratio_to=ratio),
        headline(result.table, result.runs, 10, ratio_to=ratio),
        f"Cold customers of personalised baselines: **{result.fallback}**. "
        f"Whole evaluation (tuning included): {seconds:.0f} s. "
        f"Full report: `{result.files['report']}`.",
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["baselines"])
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_quality"))
    args = parser.parse_args()
    text = [f"# Quality (bench/quality.py)\n\nMachine: {machine()}\n"]
    for name in args.datasets:
        text.append(evaluate_dataset(name, args.models, args.override, args.workdir))
        print(text[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
