"""Fixtures of the export tests: fresh stand-in contents and the config shrunk for speed."""

from __future__ import annotations

import pytest

from segrec.export import BundleContents, ExportConfig
from tests.export.standin import make_contents


@pytest.fixture
def contents() -> BundleContents:
    return make_contents()


@pytest.fixture
def cfg() -> ExportConfig:
    """The default config: parity over 10,000 rows, exact index."""
    return ExportConfig()
