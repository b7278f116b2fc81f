"""What the training side hands to the bundle writer, checked before anything is written.

A bad shape found after an hour of training should fail in a second, naming the array, not
deep inside the ONNX exporter or FAISS. The containers hold numpy and polars objects plus
the torch tower; the model, the ranker and the segment vocabularies are passed as objects
with a ``save(directory)`` method (or as directories already written), so the bundle needs
to know nothing of their formats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl
import torch

from segrec.bundle.schema import TowerInput
from segrec.data.ids import IdMap


@runtime_checkable
class SavesToDirectory(Protocol):
    """Anything that writes its files into a directory (ranker, segment vocabularies)."""

    def save(self, directory: Path) -> None: ...


Saveable = SavesToDirectory | Path


@dataclass
class KnownCustomers:
    """The customers serving answers from precomputed vectors.

    ``inputs``: tower input name → (n, ...) array, row ``i`` for ``ids.ids[i]`` (customer
    index ``i + 1``), exactly as the tower was fed in training (the customer role holds the
    *model's* id index, which may differ from ``ids``). ``features``: ``customer_id`` plus
    segment label columns, counts and anything else serving shows (Parquet). ``purchases``:
    per (customer_id, item_id) counts and recency, the ranker's history features.
    """

    ids: IdMap
    inputs: Mapping[str, np.ndarray]
    features: pl.DataFrame | None = None
    purchases: pl.DataFrame | None = None


@dataclass
class BundleContents:
    """Everything one bundle holds. ``item_vectors``: float32 (len(item_map) + 1, d), row 0
    the unknown item. ``top_items``: family, label, rank, item_id (+ score...)."""

    tower: torch.nn.Module
    tower_inputs: Sequence[TowerInput]
    item_map: IdMap
    item_vectors: np.ndarray
    customers: KnownCustomers
    item_attributes: pl.DataFrame | None = None
    ranker: Saveable | None = None
    segment_vocabularies: Saveable | None = None
    top_items: pl.DataFrame | None = None
    training_config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    # The prior's head (``model.prior_heads``): a ranking of items new to a customer puts
    # first the ``prior_head`` best by the vectors' columns from ``cosine_dim`` on.
    prior_head: int = 0
    cosine_dim: int = 0
    # Columns whose product scores the head only (``model.ranking_bias_families``): the
    # whole ranking's search zeroes them in the query.
    head_only_columns: Sequence[int] = ()


def check_contents(c: BundleContents) -> list[str]:
    """Every problem with ``c``, each naming the part and what is wrong (empty: fine)."""
    problems: list[str] = []
    n_items = len(c.item_map)
    v = c.item_vectors
    if v.ndim != 2 or v.shape[0] != n_items + 1:
        problems.append(
            f"item_vectors: shape {v.shape}, expected ({n_items + 1}, d) (row 0 = unknown item)"
        )
    elif not np.isfinite(v).all():
        problems.append("item_vectors: NaN or infinite values")
    elif c.prior_head < 0 or (c.prior_head and not 0 < c.cosine_dim < v.shape[1]):
        problems.append(
            f"prior_head: {c.prior_head} with cosine_dim {c.cosine_dim}, expected a head >= 0 "
            f"and, with a head, 0 < cosine_dim < d = {v.shape[1]}"
        )
    if v.ndim == 2 and any(not c.cosine_dim <= j < v.shape[1] for j in c.head_only_columns):
        problems.append(
            f"head_only_columns: {list(c.head_only_columns)}, expected columns of the biases "
            f"(cosine_dim {c.cosine_dim} <= column < d = {v.shape[1]})"
        )
    names = [s.name for s in c.tower_inputs]
    if len(set(names)) != len(names):
        problems.append(f"tower_inputs: duplicate names {names}")
    missing = [n for n in names if n not in c.customers.inputs]
    extra = [n for n in c.customers.inputs if n not in names]
    if missing or extra:
        problems.append(
            f"customers.inputs: missing {missing}, unexpected {extra}; the tower takes {names}"
        )
    n = len(c.customers.ids)
    for s in c.tower_inputs:
        arr = c.customers.inputs.get(s.name)
        if arr is None:
            continue
        if arr.ndim != len(s.shape) or arr.shape[0] != n:
            problems.append(
                f"customers.inputs[{s.name!r}]: shape {arr.shape}, expected {n} rows of {s.shape}"
            )
        elif any(isinstance(d, int) and arr.shape[i] != d for i, d in enumerate(s.shape)):
            problems.append(f"customers.inputs[{s.name!r}]: shape {arr.shape} vs {s.shape}")
    problems += _check_frame("customers.features", c.customers.features, ["customer_id"])
    problems += _check_frame(
        "customers.purchases", c.customers.purchases, ["customer_id", "item_id"]
    )
    problems += _check_frame("item_attributes", c.item_attributes, ["item_id"])
    problems += _check_frame("top_items", c.top_items, ["family", "label", "item_id"])
    for name in ("ranker", "segment_vocabularies"):
        part = getattr(c, name)
        if part is not None and not isinstance(part, (Path, SavesToDirectory)):
            problems.append(f"{name}: needs a save(directory) method or a directory Path")
        if isinstance(part, Path) and not part.is_dir():
            problems.append(f"{name}: {part} is not a directory")
    return problems


def _check_frame(name: str, frame: pl.DataFrame | None, required: list[str]) -> list[str]:
    if frame is None:
        return []
    missing = [col for col in required if col not in frame.columns]
    return [f"{name}: missing columns {missing} (has {frame.columns})"] if missing else []


def with_unknown_row(
    spec: Sequence[TowerInput], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Inputs with row 0 prepended as the all-unknown customer (id 0, unknown segments, no
    history, zero numerics), cast to the declared dtypes, so row r = customer index r."""
    out = {}
    for s in spec:
        arr = np.asarray(inputs[s.name])
        out[s.name] = np.concatenate([np.zeros((1, *arr.shape[1:]), arr.dtype), arr]).astype(
            s.dtype
        )
    return out
