"""The ranker's training data: several past windows, each seen as of its own start.

For window [start, end) the ranker sees the history before ``start`` exactly as it will
see the history before the test cutoff: statistics, neighbours, segment popularity and
retrieval models are all rebuilt on it (``RankingState.build``, which builds the ranker's
own sources too, and each other source's ``fit``),
and the label of a candidate is whether the customer bought it in the window. Several
windows, stepping back ``stride_days`` at a time, keep one unusual month (Ta-Feng's
January holds the Lunar New Year) from defining what the ranker learns.

Only customers who bought in the window are kept, and of those only the ones with at least
one bought item among their candidates: the others carry no information about the order
of their candidates. Negatives are subsampled (and weighted back up) to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import numpy as np
import polars as pl

from segrec.ranking.candidates import (
    Block,
    DenseScores,
    candidate_pairs,
    neighbour_scores,
    pair_weights,
)
from segrec.ranking.config import CandidateConfig, RankingConfig, WindowsConfig
from segrec.ranking.features import (
    customer_features,
    feature_tables,
    item_features,
    own_features,
    pair_features,
)
from segrec.ranking.sources import best_sellers, block_sources
from segrec.ranking.state import RankingState, history_before
from segrec.recommender import History, Recommender, chunk_size_for, iter_chunks

SourceFactory = Callable[[], Recommender]
SegmentsAt = Callable[[datetime], "pl.DataFrame | None"]
MIN_HISTORY_DAYS = 14  # a window needs at least this much history before it


@dataclass(frozen=True)
class Window:
    """Labels are purchases in [start, end); features are as of ``start``."""

    start: datetime
    end: datetime
    weight: float


@dataclass(frozen=True)
class TrainingSet:
    """Stacked candidate pairs of every window: features ``x`` float32 (m, f), labels
    ``y`` int8 (m,), sample weights ``w`` float32 (m,), ``window`` int16 (m,) and
    ``group`` int64 (m,), the customer of the pair, unique across windows (to rank the
    candidates of one customer of one window together)."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    window: np.ndarray
    group: np.ndarray


def earliest_window_start(as_of: datetime, cfg: WindowsConfig) -> datetime:
    """Where the earliest of ``cfg.n`` windows before ``as_of`` starts (at most: a short
    history fits fewer)."""
    return as_of - timedelta(days=(cfg.n - 1) * cfg.stride_days + cfg.label_days)


def training_windows(history: History, cfg: WindowsConfig) -> list[Window]:
    """The label windows, latest first, that fit inside the history with enough before."""
    first = cast("datetime | None", history.interactions["timestamp"].min())
    out = []
    for k in range(cfg.n):
        end = history.as_of - timedelta(days=k * cfg.stride_days)
        start = end - timedelta(days=cfg.label_days)
        if first is None or start - timedelta(days=MIN_HISTORY_DAYS) < first:
            break
        out.append(Window(start, end, cfg.decay**k))
    if not out:
        raise ValueError(
            f"ranking.windows: the history ({first} .. {history.as_of}) is too short for a "
            f"{cfg.label_days}-day window after {MIN_HISTORY_DAYS} days of history"
        )
    return out


def make_block(
    state: RankingState,
    models: Mapping[str, Recommender],
    customer_ids: pl.Series,
    segments: pl.DataFrame | None,
    cfg: CandidateConfig,
) -> Block:
    """A block for ``customer_ids``: their rows, segment labels and retrieval scores (the
    fitted ``models``' dense scores, and the ranker's own sources from the state)."""
    rows = state.customer_rows(customer_ids)
    given = {name: DenseScores(m.score(customer_ids)) for name, m in models.items()}
    return Block(
        rows=rows,
        labels=state.segment_index(segments, customer_ids),
        sources=block_sources(state, rows, given, cfg),
    )


def block_features(
    state: RankingState, block: Block, cfg: RankingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of a block and their features: (block position, item, x)."""
    neighbours = neighbour_scores(state, block.rows)
    b, items = candidate_pairs(state, block, neighbours, cfg.candidates)
    x = pair_features(state, block, neighbours, b, items, list(cfg.candidates.sources))
    return b, items, x


def build_tables(state: RankingState) -> None:
    """Derive every table ``block_features`` reads now: loading is the service's
    start-up, and building them on first use put 0.25 s on its first request (Ta-Feng:
    35 MiB of tables, most of them one row per (customer, item) pair)."""
    for build in (
        pair_weights,
        customer_features,
        own_features,
        item_features,
        feature_tables,
        best_sellers,
    ):
        state.derived(build)


def window_set(
    history: History,
    window: Window,
    cfg: RankingConfig,
    sources: Mapping[str, SourceFactory],
    segments: pl.DataFrame | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, w, customer code) of one window."""
    past = history_before(history, window.start, segments)
    state = RankingState.build(past, cfg)
    models = {name: make().fit(past) for name, make in sources.items()}
    ts = pl.col("timestamp")
    bought = history.interactions.filter((ts >= window.start) & (ts < window.end))
    buyers = bought["customer_id"].unique().sort()
    truth = np.unique(
        _codes(bought["customer_id"], buyers) * state.n_columns
        + history.item_map.encode(bought["item_id"])
    )
    customers = buyers
    limit = cfg.windows.max_customers
    if limit is not None and buyers.len() > limit:
        customers = buyers.gather(np.sort(rng.choice(buyers.len(), limit, replace=False)))
    xs, ys, gs = [], [], []
    for chunk in iter_chunks(customers, chunk_size_for(history.n_columns, 64.0)):
        block = make_block(state, models, chunk, segments, cfg.candidates)
        b, items, x = block_features(state, block, cfg)
        codes = _codes(chunk, buyers)[b]
        y = np.isin(codes * state.n_columns + items, truth)
        # Customers none of whose candidates they bought say nothing about the order.
        useful = (np.bincount(b, weights=y, minlength=len(block)) > 0)[b]
        xs.append(x[useful])
        ys.append(y[useful])
        gs.append(codes[useful])
    x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
    keep, w = _subsample(y, window.weight, cfg.windows.negative_rate, rng)
    return x[keep], y[keep], w, g[keep]


def _codes(ids: pl.Series, sorted_ids: pl.Series) -> np.ndarray:
    """Position of each id in ``sorted_ids`` (which holds them all), int64 (n,)."""
    return np.searchsorted(sorted_ids.to_numpy(), ids.to_numpy()).astype(np.int64)


def _subsample(
    y: np.ndarray, weight: float, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to keep (every positive and a ``rate`` share of negatives) and their weights
    (negatives weighted by 1 / rate)."""
    keep = y | (rng.random(len(y)) < rate)
    w = np.where(y, weight, weight / rate).astype(np.float32)
    return keep, w[keep]


def training_set(
    history: History,
    cfg: RankingConfig,
    sources: Mapping[str, SourceFactory],
    segments_at: SegmentsAt | None = None,
) -> TrainingSet:
    """Candidates, features and labels of every training window, stacked."""
    parts = []
    for k, window in enumerate(training_windows(history, cfg.windows)):
        segments = segments_at(window.start) if segments_at is not None else history.segments
        rng = np.random.default_rng([cfg.seed, k])  # per window: windows stay independent
        x, y, w, g = window_set(history, window, cfg, sources, segments, rng)
        parts.append((x, y, w, np.full(len(y), k, np.int16), g))
    x, y, w, win, g = (np.concatenate([p[i] for p in parts]) for i in range(5))
    # Customer codes restart in every window: offset them so that groups stay apart.
    group = win.astype(np.int64) * (int(g.max(initial=0)) + 1) + g
    return TrainingSet(x, y.astype(np.int8), w, win, group)
