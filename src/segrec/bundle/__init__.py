"""The bundle: the verified, torch-free contract between training and serving.

``read_bundle(path)`` verifies the format version and every checksum, then memory-maps the
arrays; ``BundleStaging`` writes one atomically. This package imports no torch, Lightning
or Hydra (a test asserts it), so a serving process stays small and starts fast. The torch
side that fills a bundle (ONNX export, parity check, FAISS build) is ``segrec.export``.
"""

from segrec.bundle.checksum import sha256_file
from segrec.bundle.reader import Bundle, read_bundle
from segrec.bundle.schema import (
    FORMAT_VERSION,
    LATEST,
    MANIFEST,
    FileEntry,
    Manifest,
    ManifestError,
    TowerInput,
)
from segrec.bundle.tower import TowerInputError, TowerSession
from segrec.bundle.verify import BundleError, resolve_bundle, verify_bundle
from segrec.bundle.write import BundleStaging, point_latest

__all__ = [
    "FORMAT_VERSION",
    "LATEST",
    "MANIFEST",
    "Bundle",
    "BundleError",
    "BundleStaging",
    "FileEntry",
    "Manifest",
    "ManifestError",
    "TowerInput",
    "TowerInputError",
    "TowerSession",
    "point_latest",
    "read_bundle",
    "resolve_bundle",
    "sha256_file",
    "verify_bundle",
]
