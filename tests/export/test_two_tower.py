"""The real two-tower model exports with parity, ablations included (untrained weights:
parity is about the graph, not the quality)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from rich.console import Console

from segrec.bundle import read_bundle
from segrec.export import ExportConfig, export_bundle, two_tower_contents, write_bundle
from segrec.models import ModelConfig
from segrec.pipeline import prepare_data
from segrec.recommender import History, exclude, top_k
from segrec.training.copurchase import fit_copurchase
from segrec.training.features import FeatureSpace
from segrec.training.module import make_model
from segrec.training.recommender import TwoTowerRecommender
from tests.helpers import SMALL, compose_config


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    tmp = tmp_path_factory.mktemp("two_tower")
    cfg = compose_config(tmp, SMALL)
    data, split = prepare_data(cfg.data, tmp / "out")
    ids = data.customers["customer_id"]
    segments = pl.DataFrame(
        {"customer_id": ids, "parity": pl.Series(np.where(np.arange(ids.len()) % 2, "odd", "even"))}
    )
    return History.from_data(data, split.before_test, split.test_start, segments=segments)


def _recommender(history: History, **model: object) -> TwoTowerRecommender:
    cfg = ModelConfig(dim=16, hidden=32, history_len=6, **model)  # type: ignore[arg-type]
    features = FeatureSpace.fit(
        cfg, history.item_map, history.items, history.interactions, history.segments
    )
    prior = fit_copurchase(cfg, history, features) if cfg.copurchase_rank else None
    return TwoTowerRecommender(make_model(cfg, features, prior), features).fit(history)


def _check(history: History, tmp_path: Path, **model: object) -> None:
    rec = _recommender(history, **model)
    written = write_bundle(tmp_path, two_tower_contents(rec), ExportConfig())
    bundle = read_bundle(written.path)
    assert written.manifest.contents["segment_vocabularies"]
    ids = bundle.customer_map.ids
    np.testing.assert_allclose(bundle.customer_vectors[1:], rec.customer_vectors(ids), atol=1e-6)
    onnx_out = bundle.tower()({k: np.asarray(v) for k, v in bundle.customer_inputs.items()})
    np.testing.assert_allclose(onnx_out, bundle.customer_vectors, atol=1e-4)
    names = [s.name for s in bundle.tower_inputs]
    assert names == [
        n
        for n, on in (
            ("customer", model.get("use_ids", True)),
            ("segments", model.get("use_segments", True)),
            ("history", model.get("use_history", True)),
            ("numeric", model.get("use_numeric", True)),
        )
        if on
    ]
    assert bundle.customer_features.columns[:3] == ["customer_id", "customer_index", "parity"]


def test_two_tower_exports_with_parity(history: History, tmp_path: Path) -> None:
    _check(history, tmp_path)


def test_export_stage_writes_under_the_run_directory(history: History, tmp_path: Path) -> None:
    rec = _recommender(history)
    quiet = Console(quiet=True)
    assert export_bundle(ExportConfig(enabled=False), tmp_path, rec, console=quiet) is None
    written = export_bundle(ExportConfig(), tmp_path, rec, metrics={"ndcg@10": 0.1}, console=quiet)
    assert written is not None and written.path.parent == tmp_path / "bundle"
    assert read_bundle(tmp_path / "bundle").manifest.metrics == {"ndcg@10": 0.1}


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        {"pooling": "mean"},
        {"history_items": "distinct", "item_bias": True, "segment_bias": True},
        {"history_items": "distinct", "copurchase_rank": 4, "copurchase_min_support": 2},
        {"use_numeric": False},
        {"use_ids": False, "use_segments": False},
    ],
)
def test_ablations_export_with_parity(
    history: History, tmp_path: Path, model: dict[str, object]
) -> None:
    _check(history, tmp_path, **model)


def test_a_bundle_says_how_to_apply_the_priors_head(history: History, tmp_path: Path) -> None:
    """The head is a ranking rule, not a vector: the manifest carries (m, c), and the
    bundle's own vectors reproduce the recommender's head from them."""
    rec = _recommender(history, item_bias=True, segment_bias=True, prior_heads=[0, 3])
    rec.model.set_prior_head(3)
    bundle = read_bundle(write_bundle(tmp_path, two_tower_contents(rec), ExportConfig()).path)
    m, c = bundle.prior_head
    assert (m, c) == (3, 16)
    ids = bundle.customer_map.ids[:40]
    rows = bundle.customer_map.encode(ids)
    prior = bundle.customer_vectors[rows, c:] @ bundle.item_vectors[:, c:].T
    prior[:, 0] = -np.inf
    purchased = history.purchased(ids)
    head = top_k(exclude(prior, purchased), m)[0]
    assert (top_k(exclude(rec.score(ids), purchased), m)[0] == head).all()
    plain = write_bundle(tmp_path / "p", two_tower_contents(_recommender(history)), ExportConfig())
    assert read_bundle(plain.path).prior_head == (0, 0)
    assert read_bundle(plain.path).head_only_columns == []


def test_a_bundle_names_the_columns_that_score_the_head_only(
    history: History, tmp_path: Path
) -> None:
    """Biases outside ``ranking_bias_families`` score the head only: the manifest lists
    their columns, and a search with them zeroed is the recommender's whole ranking."""
    rec = _recommender(history, item_bias=True, segment_bias=True, ranking_bias_families=[])
    with torch.no_grad():  # untrained biases are all zero: give them a say
        rec.model.segment_bias.weight.normal_(std=1.0)
    rec.refresh()
    bundle = read_bundle(write_bundle(tmp_path, two_tower_contents(rec), ExportConfig()).path)
    columns = bundle.head_only_columns
    assert columns == rec.model.head_only_columns == list(range(17, 17 + 3))  # parity's labels
    ids = bundle.customer_map.ids[:40]
    query = bundle.customer_vectors[bundle.customer_map.encode(ids)].copy()
    query[:, columns] = 0.0
    scores = query @ bundle.item_vectors.T
    scores[:, 0] = -np.inf
    np.testing.assert_allclose(scores, rec.score(ids), rtol=1e-5, atol=1e-5)
