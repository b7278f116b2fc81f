"""One call evaluates every candidate on one data set: tune on validation, refit, test.

``evaluate(cfg, data, split)`` is what ``train/evaluate.py`` and the main job call; it
returns an ``EvaluationResult`` and writes, under ``<output_dir>/<evaluation.output_subdir>``:
``metrics.parquet`` and ``metrics.json`` (the tidy table), ``per_customer.parquet`` (each
model's metrics per test customer, for tests of one's own), ``paired.parquet`` (each
headline column's best model against its runner-up, customer by customer: see
``segrec.evaluation.significance``), ``runs.json`` (chosen hyper-parameters, tuning
trials, fit and score times, cold-start handling) and ``report.md`` (the Markdown summary,
best model per column in bold).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console
from rich.markup import escape

from segrec.data import RetailData, TimeSplit
from segrec.evaluation.breakdown import TIDY_SCHEMA, breakdown
from segrec.evaluation.candidates import Candidate, load_candidates
from segrec.evaluation.config import EvaluationConfig
from segrec.evaluation.protocol import (
    Period,
    SegmentsAt,
    attribute_segments,
    customer_metrics,
    make_periods,
)
from segrec.evaluation.report import HEADLINE, markdown_report
from segrec.evaluation.significance import paired_differences
from segrec.evaluation.tuning import FallbackFactory, Objective, choose_fallback, tune
from segrec.recommender import chunk_size_for

if TYPE_CHECKING:
    from segrec.baselines.config import BaselinesConfig
    from segrec.config import Config


@dataclass
class ModelRun:
    """How one candidate was fitted and scored on the test period."""

    name: str
    params: dict[str, Any]
    fit_seconds: float
    score_seconds: float
    cold_start: str
    trials: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EvaluationResult:
    table: pl.DataFrame  # tidy: see segrec.evaluation.breakdown.TIDY_SCHEMA
    runs: list[ModelRun]
    fallback: str
    fallback_trials: list[dict[str, Any]]
    markdown: str
    per_customer: pl.DataFrame  # model, customer_id, items, n_truth, {metric}@{k}
    paired: pl.DataFrame  # at the largest K: segrec.evaluation.significance.PAIRED_SCHEMA
    files: dict[str, Path] = field(default_factory=dict)


def default_segments_at(cfg: Config, data: RetailData) -> SegmentsAt:
    """Labels from ``segrec.segments`` (``cfg.segments``) where configured, else the
    customer attribute columns as they are."""
    segments_cfg = getattr(cfg, "segments", None)
    if segments_cfg is None:
        return lambda as_of: attribute_segments(data.customers)
    from segrec.segments import assign_segments

    return lambda as_of: assign_segments(segments_cfg, data, as_of)


def fallback_factory(
    cfg: BaselinesConfig, validation: Period, objective: Objective, console: Console
) -> tuple[FallbackFactory, str, list[dict[str, Any]]]:
    """The cold-start fallback of the personalised baselines (see ``BaselinesConfig``)."""
    from segrec.baselines.candidates import make_fallback, segment_options

    if cfg.cold_fallback is not None:
        families = list(cfg.cold_fallback)
        name = make_fallback(cfg, families).name
        return (lambda: make_fallback(cfg, families)), name, []
    options = [(), *segment_options(cfg, validation.families)]
    with console.status("Choosing the cold-start fallback on validation ..."):
        name, trials = choose_fallback(
            [(make_fallback(cfg, o).name, make_fallback(cfg, o)) for o in options],
            validation,
            objective,
        )
    chosen = next(o for o in options if make_fallback(cfg, o).name == name)
    return (lambda: make_fallback(cfg, chosen)), name, trials


def evaluate_candidate(
    candidate: Candidate,
    validation: Period,
    test: Period,
    eval_cfg: EvaluationConfig,
    fallback: FallbackFactory,
    objective: Objective,
) -> tuple[pl.DataFrame, ModelRun, pl.DataFrame]:
    """Tune on validation (if asked), refit on train + validation, judge on test: the
    tidy table, the run, and the metrics per customer (with a ``model`` column)."""
    params, trials = (
        tune(candidate, validation, objective, fallback)
        if eval_cfg.tune
        else (
            candidate.params,
            [],
        )
    )
    started = time.perf_counter()
    model = candidate.make(params, fallback()).fit(test.history)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    per_customer = customer_metrics(model, test, eval_cfg.ks, chunk_size=objective.chunk_size)
    score_seconds = time.perf_counter() - started
    table = breakdown(
        model.name,
        per_customer,
        test.labels,
        eval_cfg.ks,
        len(test.history.item_map),
        eval_cfg.families,
    )
    run = ModelRun(model.name, params, fit_seconds, score_seconds, model.cold_start, trials)
    per_customer = per_customer.drop("top").select(pl.lit(model.name).alias("model"), pl.all())
    return table, run, per_customer


def evaluate_candidates(
    candidates: Sequence[Candidate],
    validation: Period,
    test: Period,
    eval_cfg: EvaluationConfig,
    baselines_cfg: BaselinesConfig,
    console: Console | None = None,
) -> tuple[pl.DataFrame, list[ModelRun], str, list[dict[str, Any]], pl.DataFrame]:
    """Evaluate ``candidates`` on the two periods: (tidy table, runs, fallback name, its
    selection trials, metrics per customer and model)."""
    console = console or Console()
    names = [c.name for c in candidates]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"evaluation: candidates share names {duplicated}")
    objective = Objective(
        eval_cfg.tune_metric,
        eval_cfg.tune_k or max(eval_cfg.ks),
        eval_cfg.tune_items,
        chunk_size_for(test.history.n_columns, eval_cfg.chunk_memory_mb),
    )
    fallback: FallbackFactory = lambda: None  # noqa: E731
    fallback_trials: list[dict[str, Any]]
    fallback_name, fallback_trials = "none", []
    if any(c.uses_fallback for c in candidates):
        fallback, fallback_name, fallback_trials = fallback_factory(
            baselines_cfg, validation, objective, console
        )
    tables, runs, per_customer = [], [], []
    for candidate in candidates:
        with console.status(f"Evaluating {escape(candidate.name)} ..."):
            table, run, scored = evaluate_candidate(
                candidate, validation, test, eval_cfg, fallback, objective
            )
        console.print(
            f"  {escape(run.name)}: fit {run.fit_seconds:.1f} s, score {run.score_seconds:.1f} s, "
            f"{objective.column} = {_headline(table, objective):.4f}"
        )
        tables.append(table)
        runs.append(run)
        per_customer.append(scored)
    table = pl.concat(tables) if tables else pl.DataFrame(schema=TIDY_SCHEMA)
    frame = pl.concat(per_customer) if per_customer else pl.DataFrame()
    return table, runs, fallback_name, fallback_trials, frame


def evaluate(
    cfg: Config,
    data: RetailData,
    split: TimeSplit,
    segments_at: SegmentsAt | None = None,
    console: Console | None = None,
    candidates: Sequence[Candidate] | None = None,
) -> EvaluationResult:
    """Evaluate the configured models (``cfg.evaluation.models``) and write the report."""
    console = console or Console()
    segments_at = segments_at or default_segments_at(cfg, data)
    with console.status("Preparing the validation and test periods ..."):
        validation, test = make_periods(data, split, segments_at)
    if candidates is None:
        candidates = load_candidates(cfg, validation.families)
    table, runs, fallback, trials, per_customer = evaluate_candidates(
        candidates, validation, test, cfg.evaluation, cfg.baselines, console
    )
    paired = paired_differences(per_customer, test.labels, max(cfg.evaluation.ks), HEADLINE)
    title = f"segrec evaluation: {cfg.data.name}"
    markdown = markdown_report(table, runs, cfg.evaluation.ks, fallback, title, test, paired)
    result = EvaluationResult(table, runs, fallback, trials, markdown, per_customer, paired)
    result.files = write_result(result, Path(cfg.paths.output_dir) / cfg.evaluation.output_subdir)
    console.print(f"Evaluation written to {result.files['report']}")
    return result


def write_result(result: EvaluationResult, directory: Path) -> dict[str, Path]:
    """Write the tidy table (Parquet + JSON), the metrics per customer and the paired
    comparisons (Parquet), the runs (JSON) and the Markdown report."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics": directory / "metrics.parquet",
        "metrics_json": directory / "metrics.json",
        "per_customer": directory / "per_customer.parquet",
        "paired": directory / "paired.parquet",
        "runs": directory / "runs.json",
        "report": directory / "report.md",
    }
    result.table.write_parquet(files["metrics"])
    files["metrics_json"].write_text(json.dumps(result.table.to_dicts(), indent=1))
    result.per_customer.write_parquet(files["per_customer"])
    result.paired.write_parquet(files["paired"])
    runs = {
        "cold_fallback": result.fallback,
        "cold_fallback_trials": result.fallback_trials,
        "models": [asdict(r) for r in result.runs],
    }
    files["runs"].write_text(json.dumps(runs, indent=2, default=str))
    files["report"].write_text(result.markdown)
    return files


def _headline(table: pl.DataFrame, objective: Objective) -> float:
    row = table.filter(
        (pl.col("group") == "overall")
        & (pl.col("items") == objective.items)
        & (pl.col("metric") == objective.metric)
        & (pl.col("k") == objective.k)
    )
    return float(row["value"][0]) if row.height else float("nan")


def evaluate_job(cfg: Config, console: Console | None = None) -> EvaluationResult:
    """``train/evaluate.py``: prepare the configured data set, then ``evaluate`` it."""
    from segrec.pipeline import prepare_data

    console = console or Console()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data, split = prepare_data(cfg.data, output_dir, console)
    return evaluate(cfg, data, split, console=console)
