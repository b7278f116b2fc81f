"""Shared fixtures: where the real datasets are, and a small synthetic data set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The real datasets folder: $SEGREC_DATASETS, else ../shared/datasets beside the repo."""
    return Path(os.environ.get("SEGREC_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def real_datasets() -> Path:
    """Skip (saying why) where the real datasets are absent."""
    path = datasets_dir()
    if not (path / "tafeng").is_dir() or not (path / "completejourney").is_dir():
        pytest.skip(f"real datasets not found at {path} (set SEGREC_DATASETS to their folder)")
    return path
