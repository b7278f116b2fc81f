"""The FAISS index: exact by default, IVF / HNSW with their recall measured and recorded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segrec.bundle import read_bundle
from segrec.export import BundleContents, ExportConfig, RecallError, write_bundle
from segrec.export.config import IndexConfig
from segrec.export.index import build_index, measure_recall, nlist_for
from tests.export.standin import make_contents


def _clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Vectors around 20 centres: the structure that makes an approximate index useful."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d)) * 2
    return (centres[rng.integers(0, 20, n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_flat_index_is_exact_and_default(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    bundle = read_bundle(write_bundle(tmp_path, contents, cfg).path)
    assert bundle.manifest.index["kind"] == "flat"
    assert bundle.manifest.index["recall"]["exact"] is True
    queries = np.asarray(bundle.customer_vectors[:20])
    items, scores = bundle.search(queries, 5)
    brute = queries @ np.asarray(bundle.item_vectors)[1:].T
    expected = np.argsort(-brute, axis=1, kind="stable")[:, :5] + 1  # faiss id + 1 = item
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected - 1, 1), rtol=1e-5)


def test_search_pads_with_item_zero_when_k_exceeds_catalog(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    bundle = read_bundle(write_bundle(tmp_path, contents, cfg).path)
    items, scores = bundle.search(np.asarray(bundle.customer_vectors[:2]), 70)  # 60 items
    assert (items[:, 60:] == 0).all() and np.isneginf(scores[:, 60:]).all()
    assert set(items[0, :60]) == set(range(1, 61))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_is_measured_and_recorded(kind: str, tmp_path: Path) -> None:
    contents = make_contents(n_items=2_000)
    contents.item_vectors = np.vstack([np.zeros((1, 8), np.float32), _clustered(2_000, 8)])
    cfg = ExportConfig(
        index=IndexConfig(kind=kind, nprobe=4, ef_search=32, recall_k=10, min_recall=0.5)
    )
    bundle = read_bundle(write_bundle(tmp_path, contents, cfg).path)
    info = bundle.manifest.index
    assert info["kind"] == kind and info["recall"]["exact"] is False
    assert info["recall"]["k"] == 10 and info["recall"]["n_queries"] == 41  # all customers
    assert 0.5 <= info["recall"]["recall"] <= 1.0
    assert set(info["params"]) == (
        {"nlist", "nprobe"} if kind == "ivf" else {"m", "ef_construction", "ef_search"}
    )
    items, _ = bundle.search(np.asarray(bundle.customer_vectors[:4]), 10)
    assert ((items >= 1) & (items <= 2_000)).all()


def test_recall_below_minimum_fails_the_export(tmp_path: Path) -> None:
    contents = make_contents(n_items=2_000)
    contents.item_vectors = np.vstack([np.zeros((1, 8), np.float32), _clustered(2_000, 8)])
    cfg = ExportConfig(index=IndexConfig(kind="ivf", nprobe=1, min_recall=1.01))
    with pytest.raises(RecallError, match=r"below export\.index\.min_recall"):
        write_bundle(tmp_path, contents, cfg)
    assert not any(tmp_path.iterdir())


def test_measure_recall_matches_definition() -> None:
    vectors, queries = _clustered(3_000, 16), _clustered(200, 16, seed=1)
    exact = measure_recall(build_index(vectors, IndexConfig()), vectors, queries, k=10)
    assert exact.recall == 1.0
    ivf_cfg = IndexConfig(kind="ivf", nlist=64, nprobe=1)
    low = measure_recall(build_index(vectors, ivf_cfg), vectors, queries, k=10)
    high = measure_recall(build_index(vectors, replace(ivf_cfg, nprobe=64)), vectors, queries, k=10)
    assert low.recall < high.recall == pytest.approx(1.0)


def test_recall_is_the_overlap_with_exact_top_k() -> None:
    vectors, queries = _clustered(3_000, 16), _clustered(100, 16, seed=2)
    index = build_index(vectors, IndexConfig(kind="ivf", nlist=64, nprobe=2))
    _, found = index.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
    assert measure_recall(index, vectors, queries, k=10).recall == pytest.approx(overlap)


def test_nlist_is_bounded_by_training_points() -> None:
    assert nlist_for(1_000_000, 0) == 4_000
    assert nlist_for(100, 0) == 2
    assert nlist_for(10, 0) == 1
    assert nlist_for(100_000, 256) == 256


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"export\.index\.kind"):
        build_index(np.zeros((10, 4), np.float32), IndexConfig(kind="lsh"))
