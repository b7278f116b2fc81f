"""A bundle that is not exactly what its writer published is refused, saying which file
and why; a good one is read with its large arrays memory-mapped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segrec.bundle import LATEST, MANIFEST, BundleError, read_bundle, verify_bundle
from segrec.bundle.schema import TEMP_PREFIX

VECTORS = "items/vectors.npy"


def _refused(path: Path) -> BundleError:
    with pytest.raises(BundleError) as err:
        read_bundle(path)
    return err.value


def _edit_manifest(bundle_dir: Path, **changes: object) -> None:
    obj = json.loads((bundle_dir / MANIFEST).read_text())
    obj.update(changes)
    (bundle_dir / MANIFEST).write_text(json.dumps(obj))


def test_good_bundle_reads_through_every_kind_of_path(bundle_dir: Path) -> None:
    for path in (bundle_dir, bundle_dir.parent, bundle_dir.parent / LATEST):
        bundle = read_bundle(path)
        assert bundle.path == bundle_dir
    assert isinstance(bundle.item_vectors, np.memmap) and bundle.item_vectors.dtype == np.float32
    assert not bundle.item_vectors.flags.writeable
    assert all(isinstance(a, np.memmap) for a in bundle.customer_inputs.values())


def test_tampered_file_is_refused(bundle_dir: Path) -> None:
    with open(bundle_dir / VECTORS, "r+b") as f:  # same size, one byte flipped
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    err = _refused(bundle_dir)
    assert err.file == VECTORS and err.reason.startswith("checksum mismatch (tampered")
    assert f"{VECTORS}: checksum mismatch" in str(err)


def test_truncated_file_is_refused_without_hashing(bundle_dir: Path) -> None:
    data = (bundle_dir / "tower.onnx").read_bytes()
    (bundle_dir / "tower.onnx").write_bytes(data[:-10])
    err = _refused(bundle_dir)
    assert err.file == "tower.onnx" and "truncated or modified" in err.reason


def test_missing_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "items/index.faiss").unlink()
    err = _refused(bundle_dir)
    assert (err.file, err.reason) == ("items/index.faiss", "missing")


def test_unexpected_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "items/notes.txt").write_text("added later")
    err = _refused(bundle_dir)
    assert err.file == "items/notes.txt" and "not listed in the manifest" in err.reason


def test_every_problem_is_listed(bundle_dir: Path) -> None:
    (bundle_dir / "items/index.faiss").unlink()
    (bundle_dir / "customers/vectors.npy").unlink()
    err = _refused(bundle_dir)
    assert [f for f, _ in err.problems] == ["customers/vectors.npy", "items/index.faiss"]


def test_wrong_format_version_is_refused(bundle_dir: Path) -> None:
    _edit_manifest(bundle_dir, format_version=2)
    err = _refused(bundle_dir)
    assert err.file == MANIFEST
    assert "wrong format version: 2, this reader supports 1" in err.reason


def test_edited_model_version_is_refused(bundle_dir: Path) -> None:
    _edit_manifest(bundle_dir, model_version="0" * 16)
    err = _refused(bundle_dir)
    assert err.file == MANIFEST and "is not the content hash" in err.reason


def test_malformed_manifest_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / MANIFEST).write_text("{not json")
    assert "not valid JSON" in _refused(bundle_dir).reason
    _edit_manifest_raw = {"format_version": 1, "files": {}}
    (bundle_dir / MANIFEST).write_text(json.dumps(_edit_manifest_raw))
    assert "malformed: manifest: missing key" in _refused(bundle_dir).reason


def test_unsafe_path_in_manifest_is_refused(bundle_dir: Path) -> None:
    obj = json.loads((bundle_dir / MANIFEST).read_text())
    obj["files"]["../outside.npy"] = {"sha256": "0" * 64, "bytes": 1}
    (bundle_dir / MANIFEST).write_text(json.dumps(obj))
    err = _refused(bundle_dir)
    assert (err.file, err.reason) == ("../outside.npy", "unsafe path in the manifest")


def test_symlink_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.npy").write_bytes(b"x")
    (bundle_dir / "items/link.npy").symlink_to(tmp_path / "elsewhere.npy")
    err = _refused(bundle_dir)
    assert err.file == "items/link.npy" and "not a regular file" in err.reason


def test_half_written_bundle_is_refused(bundle_dir: Path) -> None:
    temp = bundle_dir.parent / f"{TEMP_PREFIX}abc123"
    shutil.copytree(bundle_dir, temp)
    err = _refused(temp)
    assert err.file == temp.name and err.reason.startswith("half-written")
    (bundle_dir / MANIFEST).unlink()  # the manifest is the last thing a writer writes
    err = _refused(bundle_dir)
    assert err.file == MANIFEST and "half-written" in err.reason


def test_latest_pointing_nowhere_is_refused(bundle_dir: Path) -> None:
    (bundle_dir.parent / LATEST).write_text("20990101T000000Z-deadbeef\n")
    err = _refused(bundle_dir.parent)
    assert err.file == LATEST and "which is no bundle" in err.reason


_CRASH = """
import os, sys
from pathlib import Path
from segrec.bundle import BundleStaging
stage = BundleStaging(Path(sys.argv[1])).__enter__()
stage.path("items/vectors.npy").write_bytes(b"partial")
os._exit(9)  # killed before commit: no cleanup runs
"""


def test_killed_writer_leaves_latest_on_the_previous_bundle(bundle_dir: Path) -> None:
    root = bundle_dir.parent
    done = subprocess.run([sys.executable, "-c", _CRASH, str(root)], check=False)
    assert done.returncode == 9
    (temp,) = [p for p in root.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert read_bundle(root).path == bundle_dir
    assert "half-written" in _refused(temp).reason


def test_verify_returns_the_manifest_without_loading(bundle_dir: Path) -> None:
    root, manifest = verify_bundle(bundle_dir.parent, hash_workers=1)
    assert root == bundle_dir and manifest.contents["n_customers"] == 40
