"""The evaluation protocol: periods, chunked full-catalog ranking, per-customer metrics.

A ``Period`` pairs what a model may learn from (a ``History`` ending at the period's start)
with what it must predict (the period's purchases). Tuning uses the validation period
(history = train); the final numbers use the test period (history = train + validation).

Items sets: ``all`` and ``repeat`` are judged on the model's plain ranking; ``new`` (items
the customer never bought before the period) on its ranking with every previously bought
item removed, since recommending them cannot help there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import polars as pl

from segrec.data import COLD, NEW, REPEAT, WARM, IdMap, RetailData, TimeSplit
from segrec.evaluation.metrics import Truth, build_truth, hits, rank_metrics
from segrec.recommender import (
    History,
    Recommender,
    check_scores,
    chunk_size_for,
    iter_chunks,
    top_k,
    top_k_and_new,
)

SegmentsAt = Callable[[datetime], "pl.DataFrame | None"]
UNKNOWN_LABEL = "unknown"


@dataclass(frozen=True)
class Period:
    """One evaluation period. ``labels``: customer_id (in ``truth`` order), customer_status
    (warm|cold) and one Utf8 column per segment family, as of the period's start."""

    name: str
    history: History
    truth: Truth
    labels: pl.DataFrame

    @property
    def families(self) -> list[str]:
        return [c for c in self.labels.columns if c not in ("customer_id", "customer_status")]

    def sample(self, n: int, seed: int) -> Period:
        """At most ``n`` of the period's customers, drawn under ``seed`` and kept in order
        (the whole period when it has no more), with the same history.

        Why: training's validation only has to rank epochs and settings, and its full
        ranking costs customers x catalog: the 823k customers of the 1M synthetic set took
        117 s a pass, nearly as long as a training epoch's 132 s (bench/results).
        """
        total = self.truth.customer_ids.len()
        if n >= total:
            return self
        rows = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
        t = self.truth
        truth = Truth(t.customer_ids.gather(rows), t.all[rows], t.new[rows], t.repeat[rows])
        return replace(self, truth=truth, labels=self.labels[rows])


def attribute_segments(
    customers: pl.DataFrame, columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Segment labels straight from customer attribute columns (a stand-in for
    ``segrec.segments``): each column as text, missing values labelled ``unknown``. By
    default only the text and boolean columns: a raw number (an age) is no segment."""
    if columns is None:
        columns = [
            c
            for c, dtype in customers.schema.items()
            if c != "customer_id" and (dtype in (pl.Utf8, pl.Boolean, pl.Categorical))
        ]
    return customers.select(
        pl.col("customer_id").cast(pl.Utf8),
        *[pl.col(c).cast(pl.Utf8).fill_null(UNKNOWN_LABEL) for c in columns],
    )


def make_period(
    name: str,
    data: RetailData,
    history: pl.DataFrame,
    period: pl.DataFrame,
    as_of: datetime,
    segments: pl.DataFrame | None,
    item_map: IdMap,
) -> Period:
    """Build a period from its history rows and its labelled evaluation rows."""
    hist = History.from_data(data, history, as_of, segments=segments, item_map=item_map)
    truth = build_truth(period, item_map)
    return Period(name, hist, truth, customer_labels(truth.customer_ids, hist, segments))


def make_periods(
    data: RetailData, split: TimeSplit, segments_at: SegmentsAt
) -> tuple[Period, Period]:
    """(validation, test) periods of a split, sharing one catalog (every item of the data)."""
    item_map = IdMap.from_values(data.items["item_id"])
    validation = make_period(
        "validation",
        data,
        split.train,
        split.validation,
        split.validation_start,
        segments_at(split.validation_start),
        item_map,
    )
    test = make_period(
        "test",
        data,
        split.before_test,
        split.test,
        split.test_start,
        segments_at(split.test_start),
        item_map,
    )
    return validation, test


def customer_labels(
    customer_ids: pl.Series, history: History, segments: pl.DataFrame | None
) -> pl.DataFrame:
    """Warm/cold status (bought anything in the history?) and segment labels per customer."""
    warm = history.customer_rows(customer_ids) > 0
    labels = pl.DataFrame(
        {"customer_id": customer_ids, "customer_status": np.where(warm, WARM, COLD)}
    )
    if segments is None:
        return labels
    seg = segments.with_columns(pl.col("customer_id").cast(pl.Utf8))
    families = [c for c in seg.columns if c != "customer_id"]
    return labels.join(seg, on="customer_id", how="left", maintain_order="left").with_columns(
        [pl.col(f).cast(pl.Utf8).fill_null(UNKNOWN_LABEL) for f in families]
    )


def rank(
    model: Recommender,
    period: Period,
    k: int,
    new_items: bool = True,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Top-``k`` item indices of every truth customer, chunk by chunk: ``all`` (the plain
    ranking) and, with ``new_items``, ``new`` (previously bought items excluded)."""
    one = rank_each(
        lambda chunk: [model.score(chunk)], 1, model.name, period, k, new_items, chunk_size
    )
    return one[0]


def rank_each(
    score: Callable[[pl.Series], Iterable[np.ndarray]],
    count: int,
    name: str,
    period: Period,
    k: int,
    new_items: bool = True,
    chunk_size: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """``rank`` for ``count`` rankings of the same customers at once: ``score`` gives a
    chunk's ``count`` score matrices, one per ranking, so that a model scoring itself
    several ways (``TwoTowerRecommender.score_settings``) does the work they share once
    per chunk; ``name`` names the model in errors. With ``new_items`` each matrix is left
    with the bought items at -inf (``top_k_and_new``), so each must be a matrix of its
    own."""
    history = period.history
    chunk_size = chunk_size or chunk_size_for(history.n_columns)
    plain: list[list[np.ndarray]] = [[] for _ in range(count)]
    fresh: list[list[np.ndarray]] = [[] for _ in range(count)]
    for chunk in iter_chunks(period.truth.customer_ids, chunk_size):
        purchased = history.purchased(chunk) if new_items else None
        given = 0
        for i, scores in enumerate(score(chunk)):
            if i >= count:
                raise ValueError(f"{name}: more than {count} score matrices for one chunk")
            check_scores(scores, chunk.len(), history.n_columns, name)
            if purchased is not None:
                both, new = top_k_and_new(scores, purchased, k)
                plain[i].append(both[0])
                fresh[i].append(new[0])
            else:
                plain[i].append(top_k(scores, k)[0])
            given = i + 1
            del scores  # before the scorer builds the next one: a chunk-sized matrix
        if given != count:
            raise ValueError(f"{name}: {given} score matrices for one chunk, expected {count}")
    empty = np.zeros((0, min(k, history.n_columns)), np.int32)
    out = []
    for ranked, ranked_new in zip(plain, fresh, strict=True):
        one = {"all": np.concatenate(ranked) if ranked else empty}
        if new_items:
            one[NEW] = np.concatenate(ranked_new) if ranked_new else empty
        out.append(one)
    return out


def customer_metrics(
    model: Recommender,
    period: Period,
    ks: Sequence[int],
    item_sets: Sequence[str] = ("all", NEW, REPEAT),
    chunk_size: int | None = None,
) -> pl.DataFrame:
    """One row per (customer with test items in the set, item set): the metrics at each K
    and ``top`` (the K_max recommended item indices, for coverage)."""
    rankings = rank(model, period, max(ks), NEW in item_sets, chunk_size)
    return metrics_from_rankings(rankings, period.truth, ks, item_sets)


def metrics_from_rankings(
    rankings: dict[str, np.ndarray], truth: Truth, ks: Sequence[int], item_sets: Sequence[str]
) -> pl.DataFrame:
    """Per-customer metrics from top-K tables (``rankings['all']``, ``rankings['new']``)."""
    frames = []
    for item_set in item_sets:
        top = rankings[NEW if item_set == NEW else "all"]
        items = truth.items(item_set)
        n_truth = np.diff(items.indptr)
        values = rank_metrics(hits(items, top), n_truth, ks)
        keep = n_truth > 0
        frame = pl.DataFrame(
            {
                "customer_id": truth.customer_ids.filter(pl.Series(keep)),
                "items": item_set,
                "n_truth": n_truth[keep].astype(np.int32),
                **{name: v[keep] for name, v in values.items()},
            }
        ).with_columns(pl.Series("top", top[keep].astype(np.int32)).cast(pl.List(pl.Int32)))
        frames.append(frame)
    return pl.concat(frames)
