"""Ranking latency for one customer: ``HistoryRanker.rank``, the service's call.

    python bench/ranking.py [--dataset tafeng] [--customers 1000] [--source model|frequency]
                            [-o key=value ...]

The ranker is fitted on the test period's history with the default config (candidates
from own history, neighbours, segments, best sellers, the retrieval source of top-N
``ranking.candidates.sources.two_tower`` and the ranker's own ``ease``, scored inside
``rank`` from the customer's purchases). ``--source model`` (the default) makes the
two_tower source the two-tower model itself, trained as the main job trains it: its top-N
overlaps the other candidates as in the service, which sets how many candidates a
customer has, and so the cost. ``--source frequency`` puts personal top-frequency under
that name (no training): a cold customer's scores are then all ties, so its top-N is 100
arbitrary items that overlap nothing, the largest candidate set the config allows.
Timed per customer, single-threaded, on warm and cold customers, against the floor
measured in the same run: the same source's scores turned into a top-20 with no ranking
at all. The source reaches ``rank`` as the service's does (``RetrievedScores``): its top-N
already retrieved (FAISS's work in the service, here a top-N over the dense row, timed
alone) and any item's score.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import load_dataset, machine, markdown
from rich.console import Console
from threadpoolctl import threadpool_limits

from segrec.baselines import PersonalFrequency
from segrec.config import Config
from segrec.data import RetailData, TimeSplit
from segrec.evaluation.protocol import Period, SegmentsAt, make_periods
from segrec.ranking import DenseScores, HistoryRanker, RetrievedScores
from segrec.ranking.evaluation import static_families
from segrec.ranking.training import SourceFactory, earliest_window_start
from segrec.recommender import top_k
from segrec.training.candidates import TwoTowerSource
from segrec.training.config import LoggerConfig
from segrec.training.fit import fit_model
from segrec.training.loop import TrainingLength

SOURCE = "two_tower"
SOURCE_NAMES = {
    "model": "the two-tower model, trained as the main job trains it",
    "frequency": "personal top-frequency (a cold customer's top-N: arbitrary ties)",
}


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100)
    return statistics.median(ms), q[89], q[98]


def source_factory(
    cfg: Config,
    data: RetailData,
    split: TimeSplit,
    segments_at: SegmentsAt,
    workdir: Path,
    source: str,
) -> tuple[Period, SourceFactory]:
    """The test period and the factory of the two_tower source: the two-tower model as
    the main job trains it and hands it to the ranker (``segrec.pipeline``), or personal
    top-frequency (``frequency``)."""
    _, test = make_periods(data, split, segments_at)
    if source == "frequency":
        return test, PersonalFrequency
    logs = LoggerConfig(csv=False, tensorboard=False)
    console = Console(stderr=True)
    out = workdir / "out"
    trained = fit_model(
        cfg.model, cfg.trainer, logs, data, split, out, segments_at, cfg.seed, console=console
    )
    length = TrainingLength.of(trained.metrics["selection"])
    early = earliest_window_start(split.test_start, cfg.ranking.windows)
    return test, TwoTowerSource(trained.recommender, length, split.test_start, early, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tafeng")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--source", choices=["model", "frequency"], default="model")
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_ranking"))
    args = parser.parse_args()
    # stdout is the report: no Lightning bar there (rich's lines go to stderr)
    overrides = ["trainer.progress_bar=false", *args.override]
    cfg, data, split, segments_at = load_dataset(args.dataset, overrides, args.workdir)
    test, factory = source_factory(cfg, data, split, segments_at, args.workdir, args.source)
    history = test.history
    rc = cfg.ranking
    families = [c for c in history.segments.columns if c != "customer_id"]
    rc.features.segment_families = static_families(cfg, families)
    started = time.perf_counter()
    ranker = HistoryRanker(rc, {SOURCE: factory}).fit(history)
    fit_seconds = time.perf_counter() - started
    source = ranker.models[SOURCE]
    labels = history.segments.with_columns(pl.col("customer_id").cast(pl.Utf8))
    label_rows = {r["customer_id"]: r for r in labels.iter_rows(named=True)}

    rng = np.random.default_rng(0)
    warm = history.customer_map.ids
    warm = warm.gather(rng.choice(warm.len(), min(args.customers, warm.len()), replace=False))
    cold = pl.Series([f"nobody-{i}" for i in range(200)])
    rows, source_top = [], {}
    width = rc.candidates.sources.get(SOURCE, 0)
    with threadpool_limits(1):
        for kind, ids in (("warm", warm), ("cold", cold)):
            scores = source.score(ids)  # the source's work is not ranking: outside the clock
            ranked, floor, sizes, own_top = [], [], [], []
            for i, customer in enumerate(ids.to_list()):
                row = scores[i : i + 1]
                given = {
                    f: label_rows.get(customer, {}).get(f) for f in rc.features.segment_families
                }
                t0 = time.perf_counter()
                retrieved = RetrievedScores(DenseScores(row).top(width), DenseScores(row))
                t1 = time.perf_counter()
                ranker.rank(customer, {SOURCE: retrieved}, given, k=20)
                t2 = time.perf_counter()
                top_k(row, 20)
                t3 = time.perf_counter()
                own_top.append((t1 - t0) * 1e3)
                ranked.append((t2 - t1) * 1e3)
                floor.append((t3 - t2) * 1e3)
                everything = ranker.rank(customer, {SOURCE: retrieved}, given, k=row.shape[1])
                sizes.append(len(everything[0]))  # the candidates
            source_top[kind] = statistics.median(own_top)
            p50, p90, p99 = percentiles(ranked)
            f50 = statistics.median(floor)
            rows.append(
                [
                    kind,
                    len(ranked),
                    f"{statistics.median(sizes):.0f}",
                    f"{p50:.3f}",
                    f"{p90:.3f}",
                    f"{p99:.3f}",
                    f"{f50:.3f}",
                    f"{p50 / f50:.1f}x",
                ]
            )
    text = "\n\n".join(
        [
            "# Ranking one customer (bench/ranking.py)",
            f"Machine: {machine()}; one thread.",
            f"Data: {args.dataset} test-period history, {len(history.item_map):,} items, "
            f"{len(history.customer_map):,} customers; {SOURCE} source: "
            f"{SOURCE_NAMES[args.source]}; ranker fitted in {fit_seconds:.0f} s, "
            f"new items: {ranker.new_items}; candidates: own {rc.candidates.own}, neighbours "
            f"{rc.candidates.neighbours}, segment {rc.candidates.segment} per family "
            f"({len(rc.features.segment_families or [])} families), popular "
            f"{rc.candidates.popular}, "
            + ", ".join(f"{name} {n}" for name, n in rc.candidates.sources.items())
            + ".",
            markdown(
                [
                    "customers",
                    "n",
                    "candidates p50",
                    "rank ms p50",
                    "p90",
                    "p99",
                    "top-20 only ms p50",
                    "rank / top-20 only",
                ],
                rows,
            ),
            f"Not in rank's time: the {SOURCE} source's top-{width} over its dense score row "
            f"(FAISS's work in the service), p50 {source_top['warm']:.3f} ms warm, "
            f"{source_top['cold']:.3f} ms cold.",
        ]
    )
    print(text)


if __name__ == "__main__":
    main()
