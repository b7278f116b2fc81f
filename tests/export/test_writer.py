"""write_bundle: the published directory, its manifest, determinism and failure cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segrec.bundle import LATEST, MANIFEST, read_bundle, sha256_file
from segrec.bundle.schema import TEMP_PREFIX
from segrec.data import IdMap
from segrec.export import BundleContents, ExportConfig, write_bundle
from segrec.export.onnx_export import export_copy
from segrec.export.parity import torch_runner
from segrec.segments import SegmentVocabularies


class _Ranker:
    """What the ranker hands over: anything with save(directory)."""

    def save(self, directory: Path) -> None:
        (directory / "weights.npy").write_bytes(b"\x93NUMPY fake")
        (directory / "ranker.json").write_text('{"features": ["score", "count"]}')


def _full(contents: BundleContents) -> BundleContents:
    contents.ranker = _Ranker()
    contents.segment_vocabularies = SegmentVocabularies(
        {"age_band": IdMap.from_values(contents.customers.features["age_band"])}
    )
    return contents


def test_bundle_holds_everything_and_reads_back(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    written = write_bundle(tmp_path, _full(contents), cfg)
    assert (tmp_path / LATEST).read_text().strip() == written.path.name
    bundle = read_bundle(tmp_path)  # through the latest pointer
    m = bundle.manifest
    assert bundle.path == written.path and m.model_version == written.model_version
    assert len(m.model_version) == 16 and m.format_version == 1 and m.created_at
    assert m.training_config == {"model": {"dim": 8}} and m.metrics == {"recall@20": 0.5}
    for rel, entry in m.files.items():
        assert sha256_file(bundle.path / rel) == entry.sha256, rel
    assert {
        "tower.onnx",
        "items/vectors.npy",
        "items/index.faiss",
        "customers/vectors.npy",
        "ranker/ranker.json",
        "segments/vocabularies/families.json",
        "segments/top_items.parquet",
        "customers/purchases.parquet",
    } <= set(m.files)
    assert all(m.contents[k] for k in ("ranker", "segment_vocabularies", "top_items"))

    assert isinstance(bundle.item_vectors, np.memmap) and bundle.item_vectors.shape == (61, 8)
    assert isinstance(bundle.customer_vectors, np.memmap)
    # Precomputed vectors are the torch tower's, row r = customer index r (0: all unknown).
    spec = bundle.tower_inputs
    torch_out = torch_runner(export_copy(contents.tower), spec)(
        {k: np.asarray(v) for k, v in bundle.customer_inputs.items()}
    )
    np.testing.assert_array_equal(bundle.customer_vectors, torch_out)
    assert bundle.customer_map.ids.to_list() == contents.customers.ids.ids.to_list()
    assert bundle.customer_features["customer_id"].to_list() == bundle.customer_map.ids.to_list()
    assert bundle.item_attributes["item_index"].to_list() == list(range(1, 61))
    assert SegmentVocabularies.load(bundle.segment_vocabularies_dir).families == ["age_band"]
    assert (bundle.ranker_dir / "ranker.json").is_file()
    ort_out = bundle.tower()({k: np.asarray(v[:10]) for k, v in bundle.customer_inputs.items()})
    np.testing.assert_allclose(ort_out, torch_out[:10], atol=1e-5)


def test_model_version_is_a_content_hash(cfg: ExportConfig, tmp_path: Path) -> None:
    from tests.export.standin import make_contents

    first = write_bundle(tmp_path / "a", make_contents(), cfg)
    again = write_bundle(tmp_path / "b", make_contents(), cfg)
    other = write_bundle(tmp_path / "c", make_contents(seed=1), cfg)
    assert first.model_version == again.model_version != other.model_version


def test_optional_parts_may_be_absent(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    contents.item_attributes = contents.top_items = None
    contents.customers.features = contents.customers.purchases = None
    bundle = read_bundle(write_bundle(tmp_path, contents, cfg).path)
    assert bundle.item_attributes is None and bundle.top_items is None
    assert bundle.ranker_dir is None and bundle.segment_vocabularies_dir is None
    assert bundle.customer_features is None and bundle.purchases is None


def test_bad_contents_are_listed_before_any_work(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    contents.item_vectors = contents.item_vectors[1:]
    contents.customers.inputs = {
        k: v for k, v in contents.customers.inputs.items() if k != "numeric"
    }
    with pytest.raises(ValueError) as err:
        write_bundle(tmp_path, contents, cfg)
    message = str(err.value)
    assert "item_vectors: shape (60, 8), expected (61, d)" in message
    assert "customers.inputs: missing ['numeric']" in message
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_failure_mid_write_keeps_the_previous_bundle(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_bundle(tmp_path, contents, cfg)

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("segrec.export.writer.build_index", explode)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path, contents, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.path.name, LATEST])
    assert read_bundle(tmp_path).path == first.path
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())


def test_manifest_is_plain_json(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    path = write_bundle(tmp_path, contents, cfg).path
    obj = json.loads((path / MANIFEST).read_text())
    assert obj["tower"]["inputs"][2] == {
        "name": "recent_items",
        "role": "recent_items",
        "dtype": "int64",
        "shape": ["batch", "history"],
        "high": [61],
    }
    assert obj["tower"]["history_len"] == 5 and obj["index"]["id_offset"] == 1
    assert set(obj["export"]["seconds"]) >= {"onnx_export", "parity", "customer_vectors", "index"}
