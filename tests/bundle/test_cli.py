"""``python -m segrec.bundle PATH``: 0 and a summary for a good bundle, 1 and the problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from segrec.bundle.__main__ import main


def test_cli_accepts_a_good_bundle(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(bundle_dir.parent)]) == 0
    assert "OK, model version" in capsys.readouterr().out


def test_cli_refuses_a_damaged_bundle(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bundle_dir / "tower.onnx").unlink()
    assert main([str(bundle_dir)]) == 1
    assert "tower.onnx: missing" in capsys.readouterr().err
    assert main([]) == 2
