"""The main job, stage by stage: data → split → segments → model → ranking → evaluation →
export.

``fit(cfg)`` is what ``train/fit.py`` runs; tests call it directly with a shrunk config.
Each stage is a library call; this module only wires them and reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from segrec.config import Config, DataPreset
from segrec.data import RetailData, TimeSplit, load_data, split_by_time
from segrec.data.summary import print_summary, summarize
from segrec.synthetic import ensure_generated

# The ranker's name for the retrieval source this job trains, whatever its ablation name.
TWO_TOWER = "two_tower"

if TYPE_CHECKING:
    from segrec.evaluation.candidates import Candidate
    from segrec.evaluation.protocol import SegmentsAt
    from segrec.ranking import HistoryRanker
    from segrec.recommender import History
    from segrec.training.fit import FitResult
    from segrec.training.recommender import TwoTowerRecommender


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
    from segrec.evaluation.run import default_segments_at
    from segrec.report.job import segment_stage, top_items
    from segrec.training.fit import fit_model

    console = console or Console()
    started = time.perf_counter()
    cfg.model.check()  # a typo in the model or trainer config fails before the data is read
    cfg.trainer.check()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data, split = prepare_data(cfg.data, output_dir, console)
    summary: dict[str, Any] = {"data": summarize(data, split)}
    print_summary(summary["data"], console)

    report, summary["segments"] = segment_stage(cfg, data, split, console)
    segments_at = default_segments_at(cfg, data)
    trained = fit_model(
        cfg.model,
        cfg.trainer,
        cfg.logger,
        data,
        split,
        output_dir,
        segments_at,
        cfg.seed,
        cfg.resume,
        console,
    )
    summary["training"] = trained.metrics
    evaluation, ranker = evaluate_with_ranker(cfg, data, split, segments_at, trained, console)
    summary["evaluation"] = {
        "report": str(evaluation.files["report"]),
        "cold_fallback": evaluation.fallback,
        "ranker_new_items": ranker.new_items if ranker is not None else None,
    }
    everything = history_at_end(data, segments_at)
    bundle = export_stage(
        cfg,
        output_dir,
        trained.recommender,
        ranker,
        everything,
        top_items(report),
        evaluation.table,
        console,
    )
    if bundle is not None:
        summary["bundle"] = {
            "path": str(bundle.path),
            "model_version": bundle.manifest.model_version,
        }
    summary["seconds"] = round(time.perf_counter() - started, 2)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    closing_summary(cfg, evaluation.table, evaluation.per_customer, ranker, summary, console)
    return summary


def evaluate_with_ranker(
    cfg: Config,
    data: RetailData,
    split: TimeSplit,
    segments_at: SegmentsAt,
    trained: FitResult,
    console: Console,
    extra: Sequence[Candidate] = (),
) -> tuple[Any, HistoryRanker | None]:
    """Evaluate the baselines, the trained model and the ranker in one table.

    The ranker's two-tower source (when ``ranking.candidates.sources`` names the model) is
    the trained model itself for the test period, and one earlier training for the
    ranker's windows (``TwoTowerSource``). Returns the evaluation and the fitted ranker
    (its first row, retrieval + ranking), None when ranking is off. ``extra``: more
    candidates (``bench/quality.py`` adds the ablation's models).
    """
    from segrec.evaluation.candidates import Candidate, load_candidates
    from segrec.evaluation.run import evaluate
    from segrec.ranking.evaluation import ranking_candidates
    from segrec.ranking.training import earliest_window_start
    from segrec.training.candidates import TwoTowerSource
    from segrec.training.loop import TrainingLength

    model = trained.recommender
    families = list(cfg.segments.families)  # the label columns, without assigning them
    source = TwoTowerSource(
        model,
        TrainingLength.of(trained.metrics["selection"]),
        split.test_start,
        earliest_window_start(split.test_start, cfg.ranking.windows),
        cfg,
    )
    fitted: dict[str, Any] = {}

    def kept(candidate: Candidate) -> Candidate:
        """The candidate, remembering the model it builds (the evaluation fits it once)."""

        def build(**params: Any) -> Any:
            fitted[candidate.name] = candidate.build(**params)
            return fitted[candidate.name]

        return Candidate(
            candidate.name, build, candidate.params, candidate.grid, candidate.uses_fallback
        )

    rankers = [kept(c) for c in ranking_candidates(cfg, families, {TWO_TOWER: source})]
    own = [trained.candidate(), *extra, *rankers]
    names = {c.name for c in own}
    others = [c for c in load_candidates(cfg, families) if c.name not in names]
    result = evaluate(cfg, data, split, segments_at, console, [*others, *own])
    for name, fit_ranker in fitted.items():
        # auto's pick moves with the model it is fed (bench/results/quality_tafeng.md).
        console.print(
            f"  {escape(name)}: new items ordered by {fit_ranker.new_items} "
            f"(ranking.new_items: {cfg.ranking.new_items})"
        )
    ranker = fitted.get(rankers[0].name) if rankers else None
    return result, ranker


def history_at_end(data: RetailData, segments_at: SegmentsAt) -> History:
    """All the data as one history, as of the day after the last purchase: what the bundle
    knows of each customer (features, vectors), with the segment labels as of then."""
    from segrec.recommender import History

    last = data.interactions["timestamp"].max()
    assert isinstance(last, datetime)
    as_of = datetime.combine(last.date(), datetime.min.time()) + timedelta(days=1)
    return History.from_data(data, data.interactions, as_of, segments_at(as_of))


def export_stage(
    cfg: Config,
    output_dir: Path,
    model: TwoTowerRecommender,
    ranker: HistoryRanker | None,
    everything: History,
    top: Any,
    table: Any,
    console: Console,
) -> Any:
    """Bind the model and the ranker to all the data, then write the bundle."""
    from dataclasses import asdict

    from segrec.export.stage import export_bundle
    from segrec.training.recommender import TwoTowerRecommender

    served = TwoTowerRecommender(model.model, model.features, model.name).fit(everything)
    if ranker is not None:
        with console.status("Binding the ranker to all the data ..."):
            ranker.rebind(everything)
    metrics = {"test": table.filter(table["group"] == "overall").to_dicts()}
    return export_bundle(
        cfg.export,
        output_dir,
        served,
        ranker=ranker,
        top_items=top,
        training_config=asdict(cfg),
        metrics=metrics,
        console=console,
    )


def closing_summary(
    cfg: Config,
    table: Any,
    per_customer: Any,
    ranker: HistoryRanker | None,
    summary: dict[str, Any],
    console: Console,
) -> None:
    """segrec's best row against the best baseline of each column, time and outputs."""
    from segrec.training.summary import print_summary as print_model_summary

    model = ranker.name if ranker is not None else cfg.model.name
    ours = {cfg.model.name, *(n for n in table["model"].unique() if n.startswith("ranker"))}
    baselines = table.filter(~table["model"].is_in(list(ours - {model})))
    paths = {
        "outputs": Path(cfg.paths.output_dir),
        "evaluation": Path(summary["evaluation"]["report"]),
        "segments": Path(summary["segments"]["files"]["html"]),
    }
    if "bundle" in summary:
        paths["bundle"] = Path(summary["bundle"]["path"])
    print_model_summary(
        model, baselines, summary["seconds"], paths, console, per_customer=per_customer
    )
