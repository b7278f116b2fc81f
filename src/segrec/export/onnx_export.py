"""Exporting the customer tower to ONNX, generic over its declared inputs.

The tower is any ``nn.Module`` whose ``forward`` takes tensors in the order of its
``TowerInput`` list and returns ``(batch, d)``. The TorchScript-based exporter
(``dynamo=False``) is used because it needs nothing beyond torch and onnx (the
``torch.export`` path needs onnxscript, which serving never installs and training does not
need); the parity check, not the exporter, is what proves the graph right at every batch
size and history length.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from segrec.bundle.schema import BATCH, TowerInput

OUTPUT = "customer_vector"
_ONNX_DTYPES = {
    "int64": onnx.TensorProto.INT64,
    "int32": onnx.TensorProto.INT32,
    "float32": onnx.TensorProto.FLOAT,
    "bool": onnx.TensorProto.BOOL,
}


class TowerExportError(RuntimeError):
    """The tower could not be exported, or its ONNX graph does not match its input spec."""


def export_copy(tower: torch.nn.Module) -> torch.nn.Module:
    """A CPU, float32, eval-mode copy: export must not move or switch the caller's model,
    and dropout or batch-norm statistics must not differ between torch and ONNX."""
    return copy.deepcopy(tower).to("cpu").float().eval()


def export_tower(
    tower: torch.nn.Module,
    spec: Sequence[TowerInput],
    example: Mapping[str, np.ndarray],
    path: Path,
    opset: int = 17,
) -> list[str]:
    """Write ``tower`` to ``path`` as ONNX with the dynamic axes its spec declares, check
    it with ``onnx.checker``, and return the tracer's warnings (hints if parity fails).

    ``example`` should have a batch > 1 and histories of mixed lengths > 1, so that tracing
    specialises on nothing that varies.
    """
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[s.name])) for s in spec)
    axes = {s.name: s.dynamic_axes for s in spec} | {OUTPUT: {0: BATCH}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                tower,
                args,
                str(path),
                dynamo=False,
                input_names=[s.name for s in spec],
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        except Exception as e:  # the exporter raises many types; name the stage
            raise TowerExportError(f"torch.onnx.export failed for the customer tower: {e}") from e
    hints = [
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if not issubclass(w.category, DeprecationWarning)
    ]
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise TowerExportError(f"onnx.checker refused the exported tower: {e}") from e
    check_graph(model, spec)
    return hints


def check_graph(model: onnx.ModelProto, spec: Sequence[TowerInput]) -> None:
    """The graph's inputs must be exactly the spec's, in order and of the same dtypes.

    The exporter silently drops an input the forward never uses; a serving caller feeding
    it would then fail, so this is refused at export with the input named.
    """
    graph_inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    declared = [s.name for s in spec]
    dropped = [n for n in declared if n not in graph_inputs]
    if dropped:
        raise TowerExportError(
            f"the exported tower has no input {dropped}: forward ignores it; remove it from "
            f"the tower's input spec (graph inputs {list(graph_inputs)}, declared {declared})"
        )
    for s in spec:
        if graph_inputs[s.name] != _ONNX_DTYPES[s.dtype]:
            raise TowerExportError(
                f"tower input {s.name!r}: declared {s.dtype}, graph has "
                f"{onnx.TensorProto.DataType.Name(graph_inputs[s.name])}"
            )
    outputs = [o.name for o in model.graph.output]
    if outputs != [OUTPUT]:
        raise TowerExportError(f"the tower must return one tensor, the graph has {outputs}")
