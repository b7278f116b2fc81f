"""One small bundle, written once per session; each test gets its own copy to damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from segrec.bundle import LATEST


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete bundle written by the real writer (torch side) from the stand-in tower."""
    from segrec.export import ExportConfig, write_bundle
    from tests.export.standin import make_contents

    root = tmp_path_factory.mktemp("pristine")
    return write_bundle(root, make_contents(), ExportConfig()).path


@pytest.fixture
def bundle_dir(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the pristine bundle, under ``tmp_path`` with a ``latest`` pointer."""
    target = tmp_path / pristine.name
    shutil.copytree(pristine, target)
    (tmp_path / LATEST).write_text(pristine.name + "\n")
    return target
