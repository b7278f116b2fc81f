"""Ranking one customer (the service's path) gives what the block path gives, exactly.

The one-customer path is tuned for latency (array slices and dense accumulation instead
of sparse products); these tests pin it to the block path and to the sparse-matrix
definitions it replaced, bit for bit.
"""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from segrec.baselines import Popularity
from segrec.ranking import HistoryRanker, candidates
from segrec.ranking.candidates import (
    Block,
    DenseScores,
    PairScores,
    RetrievedScores,
    SparseScores,
    neighbour_scores,
)
from segrec.ranking.features import (
    _CUST,
    ATTRIBUTE_FEATURES,
    BASE_FEATURES,
    attribute_features,
    own_features,
    pair_features,
)
from segrec.ranking.state import RankingState
from segrec.ranking.stats import PairTable, csr_slices
from segrec.ranking.training import block_features, build_tables, make_block
from segrec.recommender import History
from tests.ranking.toy import habits, small_config

WARM = ["c000", "c001", "c002", "c017", "c033", "c118"]
COLD = ["newcomer", "stranger"]


@pytest.fixture(scope="module")
def hist() -> History:
    return habits()


@pytest.fixture(scope="module")
def ranker(hist: History) -> HistoryRanker:
    cfg = small_config()
    cfg.candidates.sources = {"popularity": 5}
    return HistoryRanker(cfg, {"popularity": Popularity}).fit(hist)


def labels_of(hist: History, customer: str) -> dict[str, str]:
    assert hist.segments is not None
    row = hist.segments.filter(pl.col("customer_id").cast(pl.Utf8) == customer)
    return {f: row[f][0] for f in row.columns if f != "customer_id"} if row.height else {}


def block_top(
    ranker: HistoryRanker, ids: list[str], k: int, exclude: dict[str, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each customer's top k from one block of them all (evaluation's and batch's path)."""
    state, _ = ranker.fitted
    series = pl.Series(ids)
    scores = ranker.models["popularity"].score(series)
    block = Block(
        state.customer_rows(series),
        state.segment_index(ranker._segments, series),
        {"popularity": DenseScores(scores)},
    )
    b, items, values = ranker.rank_block(block)
    out = {}
    for i, customer in enumerate(ids):
        mine = (b == i) & ~np.isin(items, exclude.get(customer, []))
        order = np.lexsort((items[mine], -values[mine]))[:k]
        out[customer] = items[mine][order], values[mine][order]
    return out


@pytest.mark.parametrize("with_exclude", [False, True])
def test_rank_one_customer_equals_the_block_path(
    ranker: HistoryRanker, hist: History, with_exclude: bool
) -> None:
    ids = WARM + COLD
    exclude = {}
    if with_exclude:  # drop some of each customer's own top items, and an unknown column
        for c in ids:
            items, _ = ranker.rank(c, _source(ranker, c), labels_of(hist, c), k=6)
            exclude[c] = np.r_[items[::2], hist.n_columns + 5]
    expected = block_top(ranker, ids, 8, exclude)
    for c in ids:
        items, values = ranker.rank(
            c, _source(ranker, c), labels_of(hist, c), k=8, exclude=exclude.get(c)
        )
        np.testing.assert_array_equal(items, expected[c][0])
        np.testing.assert_array_equal(values, expected[c][1])
        assert values.dtype == np.float32 and 0 < len(items) <= 8
        assert not set(items) & set(exclude.get(c, []))


def test_a_retrieved_top_ranks_as_the_dense_row_it_came_from(
    ranker: HistoryRanker, hist: History
) -> None:
    """The service's source (a search's top-N plus scores of any item) and the dense row
    give the same ranking; asking for more than was retrieved is an error, not a shorter
    candidate list."""
    width = ranker.cfg.candidates.sources["popularity"]
    for c in WARM + COLD:
        dense = _source(ranker, c)["popularity"]
        retrieved = RetrievedScores(dense.top(width), dense)
        got = ranker.rank(c, {"popularity": retrieved}, labels_of(hist, c), k=8)
        want = ranker.rank(c, {"popularity": dense}, labels_of(hist, c), k=8)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    short = RetrievedScores(dense.top(width - 1), dense)
    with pytest.raises(ValueError, match=f"top {width} asked, {width - 1} retrieved"):
        ranker.rank(WARM[0], {"popularity": short}, labels_of(hist, WARM[0]), k=8)


def _source(ranker: HistoryRanker, customer: str) -> dict[str, DenseScores]:
    return {"popularity": DenseScores(ranker.models["popularity"].score(pl.Series([customer])))}


def sparse_definition(state: RankingState, rows: np.ndarray) -> sp.csr_matrix:
    """Neighbour scores as first defined: diag(1 / row sums) @ W @ S, with scipy."""
    at, pos = state.pairs.rows_of(rows)
    w = sp.csr_matrix(
        (state.pairs.column("decay_long")[pos], (at, state.pairs.items[pos])),
        shape=(len(rows), state.n_columns),
    )
    w.sort_indices()
    total = np.asarray(w.sum(axis=1)).ravel()
    scale = np.where(total > 0, 1.0 / np.maximum(total, 1e-12), 0.0).astype(np.float32)
    out = (sp.diags(scale) @ w @ state.neighbours).tocsr()
    out.sort_indices()
    return out


@pytest.mark.parametrize("cells", [None, 50])  # 50: a block takes many dense passes
def test_neighbour_scores_equal_the_sparse_product_bit_for_bit(
    ranker: HistoryRanker, monkeypatch: pytest.MonkeyPatch, cells: int | None
) -> None:
    if cells is not None:
        monkeypatch.setattr(candidates, "DENSE_CELLS", cells)
    state, _ = ranker.fitted
    rows = np.r_[np.arange(1, len(state.customers) + 1), 0].astype(np.int64)
    for chunk in [rows[:1], rows[7:8], rows[-1:], rows[:40], rows]:
        expected = sparse_definition(state, chunk)
        got = neighbour_scores(state, chunk)
        keys = np.repeat(np.arange(len(chunk)), np.diff(expected.indptr)) * state.n_columns
        np.testing.assert_array_equal(got.keys, keys + expected.indices)
        np.testing.assert_array_equal(got.values, expected.data)
        assert got.values.dtype == np.float32
        for n in (1, 3, 40):
            np.testing.assert_array_equal(got.top(n), SparseScores(expected).top(n))


def reference_top(m: sp.csr_matrix, n: int) -> np.ndarray:
    """Best n positive entries per row, ties to the smaller column, 0-padded."""
    dense = m.toarray()
    out = np.zeros((m.shape[0], n), np.int64)
    for r, row in enumerate(dense):
        cols = [c for c in np.lexsort((np.arange(len(row)), -row)) if row[c] > 0][:n]
        out[r, : len(cols)] = cols
    return out


def test_pair_scores_top_and_at_on_ties_empty_rows_and_unsorted_csr() -> None:
    rng = np.random.default_rng(0)
    dense = rng.choice([0.0, 0.25, 0.5, 1.0], size=(5, 12), p=[0.5, 0.2, 0.2, 0.1])
    dense[2] = 0.0  # an empty row
    dense[4, :] = 0.5  # every column tied
    m = sp.csr_matrix(dense.astype(np.float32))
    # The same matrix with reversed column order inside rows and a split duplicate.
    coo = m.tocoo()
    order = np.lexsort((-coo.col, coo.row))
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
    messy = sp.csr_matrix(
        (np.r_[vals, [0.0]], (np.r_[rows, [0]], np.r_[cols, [cols[0]]])), shape=m.shape
    )
    messy.has_sorted_indices = False
    for scores in (SparseScores(m), SparseScores(messy)):
        for n in (1, 2, 5, 12):
            np.testing.assert_array_equal(scores.top(n), reference_top(m, n))
        b = np.repeat(np.arange(5), 12)
        c = np.tile(np.arange(12), 5)
        np.testing.assert_array_equal(scores.at(b, c), dense.astype(np.float32)[b, c])
    one = sp.csr_matrix(dense[1:2].astype(np.float32))
    assert isinstance(SparseScores(one).pairs, PairScores)
    for n in (1, 3, 20):
        np.testing.assert_array_equal(SparseScores(one).top(n), reference_top(one, n))
    empty = PairScores(1, 12, np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert empty.top(3).tolist() == [[0, 0, 0]]
    assert empty.at(np.zeros(2, np.int64), np.array([1, 5])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pair_scores_top_of_thousands_of_values(dtype: type) -> None:
    """``top``'s selection by histogram buckets: values over 16 orders of magnitude,
    runs of ties inside one bucket, negatives, and n above and below each row's count."""
    rng = np.random.default_rng(1)
    wide = rng.random((3, 2500)) * 10.0 ** rng.uniform(-8, 8, (3, 2500))
    ties = rng.choice([0.0, 0.25, 0.3, 1.0, 3.0], size=(2, 2500))
    signed = rng.normal(size=(2, 2500))
    dense = np.vstack([wide, ties, signed])
    dense[rng.random(dense.shape) < 0.3] = 0.0
    m = sp.csr_matrix(dense.astype(dtype))
    for n in (1, 7, 100, 1000, 3000):
        np.testing.assert_array_equal(SparseScores(m).top(n), reference_top(m, n))


def test_row_slices_agree_with_brute_force(ranker: HistoryRanker) -> None:
    pairs = ranker.fitted[0].pairs
    rows = np.array([3, 0, 3, 1, len(pairs.indptr) - 2], np.int64)
    at, pos = csr_slices(pairs.indptr, rows)
    expected = [
        (i, p) for i, r in enumerate(rows) for p in range(pairs.indptr[r], pairs.indptr[r + 1])
    ]
    assert list(zip(at.tolist(), pos.tolist(), strict=True)) == expected


def test_pair_features_find_each_pair_and_attribute_value_by_brute_force(
    ranker: HistoryRanker,
) -> None:
    """``_fill``'s binary searches within each customer's slice: every (customer, item)
    and (customer, attribute value) row is the one a scan of the slice finds, or the
    never-bought row."""
    state = ranker.fitted[0]
    rows = np.array([3, 0, 1, len(state.pairs.indptr) - 2], np.int64)
    b = np.repeat(np.arange(len(rows)), state.n_columns - 1)
    items = np.tile(np.arange(1, state.n_columns), len(rows))
    block = Block(rows, np.zeros((len(rows), len(state.segments)), np.int64), {})
    none = PairScores(len(rows), state.n_columns, np.zeros(0, np.int64), np.zeros(0, np.float32))
    x = pair_features(state, block, none, b, items, [])

    def scan(table: PairTable, r: int, value: int) -> int:
        span = range(table.indptr[r], table.indptr[r + 1])
        return next((j for j in span if table.items[j] == value), -1)

    own = state.derived(own_features)
    shares = attribute_features(state)
    assert state.attributes, "the toy catalog has an attribute to look up"
    for j, (r, c) in enumerate(zip(rows[b], items, strict=True)):
        np.testing.assert_array_equal(x[j, :_CUST], own[scan(state.pairs, r, c), :_CUST])
        for k, att in enumerate(state.attributes):
            col = len(BASE_FEATURES) + len(ATTRIBUTE_FEATURES) * k
            want = shares[k][scan(att.customers, r, att.codes[c])]
            np.testing.assert_array_equal(x[j, col : col + 2], want)


def test_a_pickled_state_rebuilds_its_derived_tables(ranker: HistoryRanker) -> None:
    """Pickles (Ray workers) leave the derived tables behind; the copy derives the same."""
    state, _ = ranker.fitted
    build_tables(state)
    copy = pickle.loads(pickle.dumps(state))
    assert "_derived" not in copy.__dict__
    ids = pl.Series(WARM + COLD)
    block = make_block(state, ranker.models, ids, ranker._segments, ranker.cfg.candidates)
    for want, got in zip(
        block_features(state, block, ranker.cfg),
        block_features(copy, block, ranker.cfg),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
