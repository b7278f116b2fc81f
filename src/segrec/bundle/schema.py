"""What a bundle holds and how ``manifest.json`` describes it: the training ↔ serving contract.

The manifest is the one place a reader learns what it is given: the tower's input schema
(names, roles, dtypes, shapes, value bounds), the index and how it was measured, the counts,
and a sha256 per file. Serving reads the configuration saved here, never a copy of it.
Plain dataclasses with explicit JSON round-trips, so a malformed manifest fails with the key
that is wrong rather than somewhere downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "latest"
# A directory whose name starts with this is a write in progress (or an interrupted one).
TEMP_PREFIX = ".tmp-bundle-"

# Layout of a bundle, relative to its directory. Every array is row-aligned with an id map
# whose index 0 is "unknown": row r of ``items/vectors.npy`` is item index r.
TOWER = "tower.onnx"
ITEM_IDS = "items/ids.parquet"
ITEM_ATTRIBUTES = "items/attributes.parquet"
ITEM_VECTORS = "items/vectors.npy"
ITEM_INDEX = "items/index.faiss"
CUSTOMER_IDS = "customers/ids.parquet"
CUSTOMER_FEATURES = "customers/features.parquet"
CUSTOMER_VECTORS = "customers/vectors.npy"
CUSTOMER_INPUTS = "customers/inputs"  # one <input name>.npy per tower input
PURCHASES = "customers/purchases.parquet"
RANKER = "ranker"  # the ranker's own files, opaque to the bundle
SEGMENT_VOCABULARIES = "segments/vocabularies"  # SegmentVocabularies.save(dir)
TOP_ITEMS = "segments/top_items.parquet"

# What each tower input means; the writer builds parity rows from these and serving builds
# a cold customer's inputs from them.
ROLES = ("customer", "segments", "recent_items", "recent_mask", "recent_lengths", "numeric")
DTYPES = ("int64", "int32", "float32", "bool")
BATCH = "batch"


class ManifestError(ValueError):
    """A manifest that cannot be read: the message names the key and what is wrong."""


@dataclass(frozen=True)
class TowerInput:
    """One input of the customer tower, in ``forward``'s argument order.

    ``shape`` starts with ``"batch"``; any other string is a dynamic axis (``"history"``
    for the recent items), an int a fixed size (the number of segment families). ``high``
    bounds integer inputs (values in ``[0, high)``): one bound for all columns, or one per
    column (segment families have different vocabulary sizes). 0 is always "unknown".
    """

    name: str
    role: str
    dtype: str
    shape: tuple[int | str, ...]
    high: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ManifestError(f"tower input {self.name!r}: role {self.role!r} not in {ROLES}")
        if self.dtype not in DTYPES:
            raise ManifestError(f"tower input {self.name!r}: dtype {self.dtype!r} not in {DTYPES}")
        if not self.shape or self.shape[0] != BATCH:
            raise ManifestError(f"tower input {self.name!r}: shape must start with {BATCH!r}")
        object.__setattr__(self, "shape", tuple(self.shape))
        object.__setattr__(self, "high", tuple(int(h) for h in self.high))

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis number → name of every axis whose size may change between calls."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape), "high": list(self.high)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TowerInput:
        return cls(
            name=_get(obj, "name", str, "tower.inputs[]"),
            role=_get(obj, "role", str, "tower.inputs[]"),
            dtype=_get(obj, "dtype", str, "tower.inputs[]"),
            shape=tuple(_get(obj, "shape", list, "tower.inputs[]")),
            high=tuple(obj.get("high", ())),
        )


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle: its sha256 (hex) and size in bytes."""

    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``. ``model_version`` is a hash of the files' checksums, so two bundles
    with the same content have the same version whenever they were written.

    ``tower``: file, inputs (``TowerInput`` list), output name, dim, opset, parity report.
    ``index``: file, kind, metric, params, ``id_offset`` (faiss id + offset = item index),
    recall report. ``contents``: which optional parts are present and the counts.
    """

    format_version: int
    model_version: str
    created_at: str
    tower: dict[str, Any]
    index: dict[str, Any]
    contents: dict[str, Any]
    files: dict[str, FileEntry]
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    @property
    def tower_inputs(self) -> list[TowerInput]:
        return [TowerInput.from_json(o) for o in self.tower["inputs"]]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = {p: asdict(e) for p, e in sorted(self.files.items())}
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Manifest:
        """Parse a manifest whose format version has already been checked."""
        files = _get(obj, "files", dict, "manifest")
        entries = {}
        for path, e in files.items():
            entries[path] = FileEntry(
                sha256=_get(e, "sha256", str, f"files[{path!r}]"),
                bytes=_get(e, "bytes", int, f"files[{path!r}]"),
            )
        manifest = cls(
            format_version=_get(obj, "format_version", int, "manifest"),
            model_version=_get(obj, "model_version", str, "manifest"),
            created_at=_get(obj, "created_at", str, "manifest"),
            tower=_get(obj, "tower", dict, "manifest"),
            index=_get(obj, "index", dict, "manifest"),
            contents=_get(obj, "contents", dict, "manifest"),
            files=entries,
            training_config=obj.get("training_config", {}),
            metrics=obj.get("metrics", {}),
            export=obj.get("export", {}),
        )
        manifest.tower_inputs  # noqa: B018 - validates every input spec now, not at first use
        return manifest


def _get(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``obj[key]`` checked for presence and type, or a ManifestError naming both."""
    if not isinstance(obj, Mapping) or key not in obj:
        raise ManifestError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value
