"""The torch side of the bundle: ONNX export with a parity check, FAISS index, writer.

``write_bundle(root, BundleContents(...), ExportConfig())`` is what the main job calls at
the end of a run; ``segrec.bundle`` reads the result without torch. ``ExportConfig``
imports without torch (the top-level config reads it); everything else loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from segrec.export.config import ExportConfig, IndexConfig, ParityConfig

if TYPE_CHECKING:
    from segrec.export.contents import BundleContents, KnownCustomers, SavesToDirectory
    from segrec.export.index import RecallError, RecallReport, build_index, measure_recall
    from segrec.export.onnx_export import TowerExportError, export_tower
    from segrec.export.parity import ParityError, ParityReport, check_parity, parity_rows
    from segrec.export.stage import bundle_root, export_bundle
    from segrec.export.two_tower import CustomerEncoder, two_tower_contents
    from segrec.export.writer import WrittenBundle, write_bundle

_LAZY = {
    "BundleContents": "segrec.export.contents",
    "KnownCustomers": "segrec.export.contents",
    "SavesToDirectory": "segrec.export.contents",
    "RecallError": "segrec.export.index",
    "RecallReport": "segrec.export.index",
    "build_index": "segrec.export.index",
    "measure_recall": "segrec.export.index",
    "TowerExportError": "segrec.export.onnx_export",
    "export_tower": "segrec.export.onnx_export",
    "ParityError": "segrec.export.parity",
    "ParityReport": "segrec.export.parity",
    "check_parity": "segrec.export.parity",
    "parity_rows": "segrec.export.parity",
    "CustomerEncoder": "segrec.export.two_tower",
    "two_tower_contents": "segrec.export.two_tower",
    "bundle_root": "segrec.export.stage",
    "export_bundle": "segrec.export.stage",
    "WrittenBundle": "segrec.export.writer",
    "write_bundle": "segrec.export.writer",
}

__all__ = [
    "BundleContents",
    "CustomerEncoder",
    "ExportConfig",
    "IndexConfig",
    "KnownCustomers",
    "ParityConfig",
    "ParityError",
    "ParityReport",
    "RecallError",
    "RecallReport",
    "SavesToDirectory",
    "TowerExportError",
    "WrittenBundle",
    "build_index",
    "bundle_root",
    "check_parity",
    "export_bundle",
    "export_tower",
    "measure_recall",
    "parity_rows",
    "two_tower_contents",
    "write_bundle",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'segrec.export' has no attribute {name!r}")
