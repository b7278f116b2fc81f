"""Retrieval sources the ranker builds itself: item-item models inside its state.

A source from outside the ranker (the two-tower model) reaches it as scores its caller
computed: a dense matrix in evaluation, a FAISS search in the service. An item-item model
needs nothing but the customer's purchases, which the ranking state already holds, and its
weights. So the ranker builds such a source with each state (every training window, and
the history it serves), saves its weights with the state, and scores it itself: training,
batch scoring and the service run the same code on the same weights, and the bundle alone
can serve it.

``ease``: EASE (Steck 2019), the strongest baseline on items new to the customer, over the
customers' binary purchases; each item keeps its ``ranking.ease.keep`` largest weights
(``segrec.ranking.neighbours.ease_source``). A customer's score of item j is the sum of
B[i, j] over the items i they bought: EASE's own score, truncated to each item's strongest
links. Customers it cannot score (cold ones) get the best sellers instead, as the EASE
baseline's fallback gives them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numba import njit

from segrec.ranking.candidates import PairScores, SourceScores, item_sums, row_end
from segrec.ranking.config import CandidateConfig, own_sources
from segrec.ranking.state import RankingState


def item_item_scores(state: RankingState, rows: np.ndarray, name: str, n: int) -> PairScores:
    """The own source ``name``'s scores of the customers ``rows``: the sum of its weights
    from each item they bought (binary, as EASE is fitted), positive entries only.

    A customer it cannot score (cold, or no bought item with kept weights) gets the ``n``
    best sellers, scored by their long-decayed share, as the EASE baseline falls back to
    popularity: without them such a customer would lose this source's ``n`` candidates.
    """
    at, pos = state.pairs.rows_of(rows)
    keys, sums = item_sums(state.sources[name], at, state.pairs.items[pos], len(rows))
    best = state.derived(best_sellers)[:n]
    keys, sums = _positive_or_best(keys, sums, len(rows), state.n_columns, best, state.global_share)
    return PairScores(len(rows), state.n_columns, keys, sums)


@njit(cache=True, nogil=True)
def _positive_or_best(
    keys: np.ndarray,
    sums: np.ndarray,
    n_rows: int,
    n_columns: int,
    best: np.ndarray,
    share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the sorted (``keys``, float32 ``sums``), its positive sums, or where it
    has none, the ``best`` sellers scored by their float32 ``share``: keys still sorted
    and unique. One pass, compiled: numpy's filter, concatenation and re-sort of the
    fallback cost a cold customer 15 array calls (0.08 ms)."""
    ends = np.empty(n_rows, np.int64)  # each row's run of keys ends there
    kept = np.zeros(n_rows, np.int64)
    e = 0
    for r in range(n_rows):
        ends[r] = row_end(keys, e, r, n_columns)
        for j in range(e, ends[r]):
            kept[r] += sums[j] > 0
        e = ends[r]
    columns = np.sort(best)
    size = 0
    for r in range(n_rows):
        size += kept[r] if kept[r] else columns.shape[0]
    out_keys = np.empty(size, np.int64)
    out_sums = np.empty(size, np.float32)
    m, e = 0, 0
    for r in range(n_rows):
        end = ends[r]
        if kept[r]:
            for j in range(e, end):
                if sums[j] > 0:
                    out_keys[m], out_sums[m] = keys[j], sums[j]
                    m += 1
        else:
            for c in columns:
                out_keys[m], out_sums[m] = r * n_columns + c, share[c]
                m += 1
        e = end
    return out_keys, out_sums


def best_sellers(state: RankingState) -> np.ndarray:
    """Every sold item, best first by long-decayed share (ties: smaller column), int64."""
    share = state.global_share.astype(np.float64)
    share[0] = 0.0
    order = np.argsort(-share, kind="stable")
    return order[share[order] > 0]


def block_sources(
    state: RankingState,
    rows: np.ndarray,
    given: Mapping[str, SourceScores],
    cfg: CandidateConfig,
) -> dict[str, SourceScores]:
    """Every source of ``cfg`` for the customers ``rows``: the ranker's own, scored from
    the state, and the others as ``given`` by the caller (an error names any missing)."""
    own = own_sources(cfg)
    missing = sorted(set(cfg.sources) - set(own) - set(given))
    if missing:
        raise ValueError(
            f"ranking.candidates.sources: no scores given for {missing} "
            f"(the ranker builds only {list(own)} itself)"
        )
    unbuilt = sorted(set(own) - set(state.sources))
    if unbuilt:
        raise ValueError(f"ranking state: built without the sources {unbuilt}")
    return {
        name: given[name] if name not in own else item_item_scores(state, rows, name, size)
        for name, size in cfg.sources.items()
    }
