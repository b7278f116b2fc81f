"""The ONNX export of the customer tower and its parity check against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from segrec.bundle import TowerInput
from segrec.export import BundleContents, ExportConfig, ParityError, write_bundle
from segrec.export.config import ParityConfig
from segrec.export.contents import with_unknown_row
from segrec.export.onnx_export import OUTPUT, TowerExportError, export_copy, export_tower
from segrec.export.parity import (
    check_parity,
    parity_rows,
    random_feeds,
    torch_runner,
    truncate_history,
)
from tests.export.standin import make_contents


def _export(contents: BundleContents, path: Path) -> tuple[nn.Module, ort.InferenceSession]:
    tower = export_copy(contents.tower)
    spec = list(contents.tower_inputs)
    known = with_unknown_row(spec, contents.customers.inputs)
    example = random_feeds(spec, known, 8, np.random.default_rng(0))
    export_tower(tower, spec, example, path)
    return tower, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_parity_report_covers_cold_empty_and_shorter_histories(
    contents: BundleContents, cfg: ExportConfig, tmp_path: Path
) -> None:
    written = write_bundle(tmp_path, contents, cfg)
    parity = written.manifest.tower["parity"]
    assert parity["n_rows"] >= 10_000
    assert parity["max_abs_diff"] <= 1e-4 and parity["non_finite_rows"] == 0
    groups = parity["groups"]
    for group in (
        "known",
        "cold",
        "empty_history",
        "cold_empty_history",
        "random",
        "random, history 2",
        "random, history 1",
        "batch of one",
    ):
        assert groups[group]["rows"] > 0, group
    assert parity["history_lengths"] == [1, 2, 5]


def test_onnx_graph_has_dynamic_batch_and_history(contents: BundleContents, tmp_path: Path) -> None:
    tower, session = _export(contents, tmp_path / "t.onnx")
    model = onnx.load(str(tmp_path / "t.onnx"))
    onnx.checker.check_model(model, full_check=True)
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    assert dims["customer"] == ["batch"]
    assert dims["recent_items"] == ["batch", "history"]
    assert dims["segments"] == ["batch", 2]
    spec = list(contents.tower_inputs)
    known = with_unknown_row(spec, contents.customers.inputs)
    rng = np.random.default_rng(1)
    for batch, width in ((1, 5), (1024, 5), (7, 1), (3, 3)):
        feeds = truncate_history(spec, random_feeds(spec, known, batch, rng), width)
        (out,) = session.run([OUTPUT], feeds)
        expected = torch_runner(tower, spec)(feeds)
        assert out.shape == (batch, 8)
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_divergence_fails_listing_the_worst_rows(contents: BundleContents, tmp_path: Path) -> None:
    tower, session = _export(contents, tmp_path / "t.onnx")
    with torch.no_grad():
        tower.ids.weight[7] += 1.0  # torch now differs from the graph for customer 7 only
    spec = list(contents.tower_inputs)
    cfg = ParityConfig(n_rows=2_000, report_rows=3)
    rows = parity_rows(spec, with_unknown_row(spec, contents.customers.inputs), cfg)
    with pytest.raises(ParityError) as err:
        check_parity(
            torch_runner(tower, spec),
            lambda f: session.run([OUTPUT], dict(f))[0],
            spec,
            rows,
            cfg,
            batch=512,
        )
    report = err.value.report
    assert report.max_abs_diff > 1e-4 and len(report.worst) == 3
    assert all(w["inputs"]["customer"] == 7 for w in report.worst)
    assert "ONNX parity check failed" in str(err.value) and "customer=7" in str(err.value)


def test_nan_on_empty_history_fails_and_publishes_nothing(
    cfg: ExportConfig, tmp_path: Path
) -> None:
    with pytest.raises(ParityError, match="NaN/inf") as err:
        write_bundle(tmp_path, make_contents(safe=False), cfg)
    assert err.value.report.groups["empty_history"]["max_abs_diff"] == np.inf
    assert list(tmp_path.iterdir()) == []  # no bundle, no temporary directory, no latest


class _IgnoresNumeric(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ids = nn.Embedding(5, 4)

    def forward(self, customer: Tensor, numeric: Tensor) -> Tensor:
        return self.ids(customer)


def test_input_the_graph_drops_is_refused(tmp_path: Path) -> None:
    spec = [
        TowerInput("customer", "customer", "int64", ("batch",), (5,)),
        TowerInput("numeric", "numeric", "float32", ("batch", 2)),
    ]
    example = {"customer": np.array([1, 2]), "numeric": np.zeros((2, 2), np.float32)}
    with pytest.raises(TowerExportError, match=r"no input \['numeric'\]"):
        export_tower(_IgnoresNumeric().eval(), spec, example, tmp_path / "t.onnx")
