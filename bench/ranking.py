"""Ranking latency for one customer: ``HistoryRanker.rank``, the service's call.

    python bench/ranking.py [--dataset tafeng] [--customers 1000] [-o key=value ...]

The ranker is fitted on the test period's history with the default config (candidates
from own history, neighbours, segments, best sellers and a retrieval source of top-N
``ranking.candidates.sources.two_tower``, and the ranker's own ``ease``, scored inside
``rank`` from the customer's purchases). The two_tower source here is personal
top-frequency under that name: ranking cost depends on the candidate count, not on where
the source's scores come from (the service gets them from FAISS). Timed per customer,
single-threaded, on warm and cold customers, against the floor measured in the same run:
the same source's scores turned into a top-20 with no ranking at all. The source reaches
``rank`` as the service's does (``RetrievedScores``): its top-N already retrieved (FAISS's
work in the service, here a top-N over the dense row, timed alone) and any item's score.
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
from common import dataset_periods, machine, markdown
from threadpoolctl import threadpool_limits

from segrec.baselines import PersonalFrequency
from segrec.ranking import DenseScores, HistoryRanker, RetrievedScores
from segrec.ranking.evaluation import static_families
from segrec.recommender import top_k

SOURCE = "two_tower"


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100)
    return statistics.median(ms), q[89], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="tafeng")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("-o", "--override", action="append", default=[])
    parser.add_argument("--workdir", type=Path, default=Path("outputs/bench_ranking"))
    args = parser.parse_args()
    cfg, _, _, test = dataset_periods(args.dataset, args.override, args.workdir)
    history = test.history
    rc = cfg.ranking
    families = [c for c in history.segments.columns if c != "customer_id"]
    rc.features.segment_families = static_families(cfg, families)
    started = time.perf_counter()
    ranker = HistoryRanker(rc, {SOURCE: PersonalFrequency}).fit(history)
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
                items, _ = ranker.rank(customer, {SOURCE: retrieved}, given, k=20)
                t2 = time.perf_counter()
                top_k(row, 20)
                t3 = time.perf_counter()
                own_top.append((t1 - t0) * 1e3)
                ranked.append((t2 - t1) * 1e3)
                floor.append((t3 - t2) * 1e3)
                sizes.append(len(items))
            source_top[kind] = statistics.median(own_top)
            p50, p90, p99 = percentiles(ranked)
            f50 = statistics.median(floor)
            rows.append(
                [
                    kind,
                    len(ranked),
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
            f"{len(history.customer_map):,} customers; ranker fitted in {fit_seconds:.0f} s, "
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
            f"{source_top['cold']:.3f} ms cold (cold rows are all ties, top_k's slow case).",
        ]
    )
    print(text)


if __name__ == "__main__":
    main()
