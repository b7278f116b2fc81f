"""Quality: every registered model on the synthetic default, Ta-Feng and Complete Journey.

    python bench/quality.py [--datasets synthetic tafeng completejourney]
                            [--models baselines segrec] [--ablation]
                            [--out bench/results/quality.md]
                            [-o key=value ...]   # extra Hydra overrides for every data set

Each data set goes through ``segrec.evaluation.evaluate`` exactly as ``train/evaluate.py``
runs it (tune on validation, refit on train + validation, judge on test, full ranking),
with the small per-data-set grids below so that the three data sets take minutes on a
laptop. ``segrec`` is the main job's own path (``segrec.pipeline``): the two-tower model
trained once (early stopping on validation, refit), then the ranker with that model as a
retrieval source, and the ranker on history alone; ``--ablation`` adds the two-tower
model with ids only and with ids + segments (``conf/experiment``). Other models join by
registering a source in ``segrec.evaluation.candidates.SOURCES`` and being named in
``--models``. Prints one Markdown section per data set: data size, the headline tables at
K = 20 and 10 (overall, warm, cold; all items and items new to the customer; coverage;
fit time; NDCG relative to popularity measured in the same run) and the cold-start
fallback.
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

from segrec.config import Config
from segrec.data import RetailData, TimeSplit
from segrec.evaluation.protocol import SegmentsAt
from segrec.evaluation.report import headline, paired_table
from segrec.evaluation.run import EvaluationResult, default_segments_at, evaluate_job
from segrec.pipeline import evaluate_with_ranker, prepare_data
from segrec.training.config import LoggerConfig
from segrec.training.fit import FitResult, fit_model
from tests.helpers import compose_config

SEGREC = "segrec"  # the main job's model and ranker (see the module docstring)
ABLATION = ["ids_only", "with_segments"]  # conf/experiment; the full model is the default
NO_LOGGERS = LoggerConfig(csv=False, tensorboard=False)

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


def evaluate_dataset(
    name: str, models: list[str], extra: list[str], workdir: Path, ablation: bool
) -> str:
    """Evaluate one data set and return its Markdown section."""
    registered = [m for m in models if m != SEGREC]
    overrides = [
        f"data={name}",
        f"paths.datasets_dir={datasets_dir()}",
        "paths.generated_dir=data/generated",
        f"evaluation.models=[{','.join(registered)}]",
        "trainer.progress_bar=false",
        *DATASETS[name],
        *extra,
    ]
    cfg = compose_config(workdir / name, overrides)
    if cfg.data.synthetic is None and not Path(cfg.data.interactions.path).exists():
        return f"## {name}\n\nskipped: {cfg.data.interactions.path} not found\n"
    console = Console(stderr=True)
    started = time.perf_counter()
    if SEGREC in models:
        result = segrec_rows(cfg, workdir / name, overrides, ablation, console)
    else:
        result = evaluate_job(cfg, console)
    seconds = time.perf_counter() - started
    return section(name, result, seconds)


def segrec_rows(
    cfg: Config, workdir: Path, overrides: list[str], ablation: bool, console: Console
) -> EvaluationResult:
    """The main job's training, ranking and evaluation (no segment report, no bundle)."""
    output_dir = Path(cfg.paths.output_dir)
    data, split = prepare_data(cfg.data, output_dir, console)
    segments_at = default_segments_at(cfg, data)
    extra = []
    for experiment in ABLATION if ablation else []:
        variant = compose_config(workdir / experiment, ablation_overrides(overrides, experiment))
        extra.append(train(variant, data, split, segments_at, console).candidate())
    trained = train(cfg, data, split, segments_at, console)
    result, _ = evaluate_with_ranker(cfg, data, split, segments_at, trained, console, extra)
    return result


def ablation_overrides(overrides: list[str], experiment: str) -> list[str]:
    """``overrides`` with the ablation's ``experiment`` applied on top of the one they
    select, if any (``-o experiment=new_items --ablation``: ``experiment=[new_items,
    ids_only]``, Hydra merging them in that order)."""
    chosen = [o for o in overrides if o.startswith("experiment=")]
    rest = [o for o in overrides if not o.startswith("experiment=")]
    base = [o.split("=", 1)[1] for o in chosen[-1:]]
    return [*rest, f"experiment=[{','.join([*base, experiment])}]"]


def train(
    cfg: Config, data: RetailData, split: TimeSplit, segments_at: SegmentsAt, console: Console
) -> FitResult:
    """``fit_model`` as the main job calls it, without loggers."""
    return fit_model(
        cfg.model,
        cfg.trainer,
        NO_LOGGERS,
        data,
        split,
        Path(cfg.paths.output_dir),
        segments_at,
        cfg.seed,
        cfg.resume,  # -o resume=true: reuse the models a previous run of this workdir trained
        console=console,
    )


def section(name: str, result: EvaluationResult, seconds: float) -> str:
    """Data size, the two headline tables and the notes of one data set."""
    sizes = result.markdown.split("\n\n")[2]  # the report's "Test period ..." line
    ratio = "popularity" if any(r.name == "popularity" for r in result.runs) else None
    parts = [
        f"## {name}",
        sizes,
        headline(result.table, result.runs, 20, ratio_to=ratio),
        headline(result.table, result.runs, 10, ratio_to=ratio),
        "Each column's best against its runner-up, customer by customer (|z| < 2: within noise):",
        paired_table(result.paired),
        f"Cold customers of personalised baselines: **{result.fallback}**. "
        f"Whole evaluation (tuning included): {seconds:.0f} s. "
        f"Full report: `{result.files['report']}`.",
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["baselines", SEGREC])
    parser.add_argument("--ablation", action="store_true", help="also ids-only, + segments")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_quality"))
    args = parser.parse_args()
    text = [f"# Quality (bench/quality.py)\n\nMachine: {machine()}\n"]
    for name in args.datasets:
        text.append(evaluate_dataset(name, args.models, args.override, args.workdir, args.ablation))
        print(text[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(text))


if __name__ == "__main__":
    main()
