"""The customer tower as an ONNX Runtime session that checks its inputs against the manifest.

A wrong input (a missing name, a wrong dtype or width, an index outside a vocabulary) is
refused here with what was expected and what was given, instead of surfacing as an opaque
ONNX Runtime error or, worse, an out-of-range gather. onnxruntime is imported lazily so
that verifying or reading a bundle does not need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segrec.bundle.schema import TowerInput


class TowerInputError(ValueError):
    """Inputs that do not match the tower's schema; the message lists expected vs given."""


class TowerSession:
    """``session(feeds) -> (batch, d) float32`` for feeds keyed by the tower's input names."""

    def __init__(
        self,
        path: Path,
        inputs: Sequence[TowerInput],
        output: str,
        dim: int,
        history_len: int | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.inputs = list(inputs)
        self.output = output
        self.dim = dim
        self.history_len = history_len
        self._session: Any = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        prepared = self.check(feeds)
        (out,) = self._session.run([self.output], prepared)
        return np.asarray(out, dtype=np.float32)

    def check(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds as contiguous arrays of the declared dtypes, or a ``TowerInputError``."""
        expected = [s.name for s in self.inputs]
        if sorted(feeds) != sorted(expected):
            raise TowerInputError(f"tower inputs: expected {expected}, given {sorted(feeds)}")
        out, batch = {}, None
        for spec in self.inputs:
            value = np.ascontiguousarray(feeds[spec.name])
            _check_one(spec, value)
            self._check_history(spec, value)
            if batch is not None and value.shape[0] != batch:
                raise TowerInputError(
                    f"tower input {spec.name!r}: batch {value.shape[0]}, other inputs have {batch}"
                )
            batch = value.shape[0]
            out[spec.name] = value.astype(spec.dtype, copy=False)
        return out

    def _check_history(self, spec: TowerInput, value: np.ndarray) -> None:
        """Histories may be shorter than in training, never longer (position embeddings)."""
        if self.history_len is None:
            return
        for axis in spec.dynamic_axes:
            if axis > 0 and value.shape[axis] > self.history_len:
                raise TowerInputError(
                    f"tower input {spec.name!r}: history of {value.shape[axis]} items, the "
                    f"tower takes at most {self.history_len}"
                )

    def unknown_feeds(self, batch: int, history: int | None = None) -> dict[str, np.ndarray]:
        """All-unknown inputs (id 0, unknown segments, empty history, zero numerics): the
        starting point of a cold customer's feeds, filled in from what the request gives.
        ``history`` defaults to the training length."""
        history = history or self.history_len or 1
        feeds = {}
        for spec in self.inputs:
            shape = [
                batch if d == "batch" else history if isinstance(d, str) else d for d in spec.shape
            ]
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
        return feeds


def _check_one(spec: TowerInput, value: np.ndarray) -> None:
    given = f"given {value.dtype} {tuple(value.shape)}"
    want = f"expected {spec.dtype} {spec.shape}"
    if value.ndim != len(spec.shape):
        raise TowerInputError(f"tower input {spec.name!r}: {want}, {given}")
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and value.shape[axis] != dim:
            raise TowerInputError(f"tower input {spec.name!r}: {want}, {given}")
    if spec.dtype == "float32":
        if not np.issubdtype(value.dtype, np.floating):
            raise TowerInputError(f"tower input {spec.name!r}: {want}, {given}")
        if not np.isfinite(value).all():
            raise TowerInputError(f"tower input {spec.name!r}: NaN or infinite values")
        return
    if spec.dtype == "bool":
        if value.dtype != np.bool_ and not np.isin(value, (0, 1)).all():
            raise TowerInputError(f"tower input {spec.name!r}: {want}, {given} (not 0/1)")
        return
    if not np.issubdtype(value.dtype, np.integer):
        raise TowerInputError(f"tower input {spec.name!r}: {want}, {given}")
    if value.size and spec.high:
        high = np.asarray(spec.high)
        if len(spec.high) > 1 and value.ndim == 2:
            bad = (value < 0) | (value >= high[None, :])
        else:
            bad = (value < 0) | (value >= high[0])
        if bad.any():
            where = np.argwhere(bad)[0]
            raise TowerInputError(
                f"tower input {spec.name!r}: value {value[tuple(where)]} at {tuple(where)} is "
                f"outside [0, high) with high={list(spec.high)}"
            )
