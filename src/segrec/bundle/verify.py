"""Refuse a bundle that is not exactly what its writer published.

Checks run cheapest first: the directory is not a temporary one, ``manifest.json`` exists
and parses, its format version is one this reader knows, no file is missing, extra or of
the wrong size, every sha256 matches, and the model version is the hash of those sha256.
Every problem found is listed in one ``BundleError``, whose ``file`` and ``reason`` name the
first one, so an operator sees the whole damage at once. A service keeps the bundle it has
when a new one is refused.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from segrec.bundle.checksum import content_version, hash_files, list_files
from segrec.bundle.schema import (
    FORMAT_VERSION,
    LATEST,
    MANIFEST,
    TEMP_PREFIX,
    Manifest,
    ManifestError,
)


class BundleError(ValueError):
    """A bundle refused: ``file`` (relative to the bundle) and ``reason`` of each problem."""

    def __init__(self, bundle: Path, problems: list[tuple[str, str]]) -> None:
        self.bundle = Path(bundle)
        self.problems = problems
        self.file, self.reason = problems[0]
        lines = [f"  {file}: {reason}" for file, reason in problems]
        super().__init__(f"bundle {self.bundle} refused:\n" + "\n".join(lines))


def resolve_bundle(path: str | Path) -> Path:
    """The bundle directory ``path`` designates: itself, or what a ``latest`` pointer names.

    ``path`` may be a bundle directory, the directory holding bundles and ``latest``, or the
    ``latest`` file itself.
    """
    path = Path(path)
    pointer = path if path.is_file() and path.name == LATEST else path / LATEST
    if path.is_dir() and (path / MANIFEST).exists():
        return path
    if pointer.is_file():
        name = pointer.read_text().strip()
        target = pointer.parent / name
        if not name or "/" in name or name in (".", "..") or not target.is_dir():
            raise BundleError(pointer.parent, [(LATEST, f"points to {name!r}, which is no bundle")])
        return target
    return path


def verify_bundle(path: str | Path, hash_workers: int | None = None) -> tuple[Path, Manifest]:
    """Check the bundle at ``path`` (see ``resolve_bundle``); its directory and manifest.

    Raises ``BundleError`` naming each bad file and why.
    """
    root = resolve_bundle(path)
    if root.name.startswith(TEMP_PREFIX):
        raise BundleError(
            root,
            [
                (
                    root.name,
                    "half-written: a temporary directory of an unfinished or interrupted "
                    "write; load the finished bundle or its 'latest' pointer",
                )
            ],
        )
    if not root.is_dir():
        raise BundleError(root, [(root.name, "not a directory")])
    manifest = read_manifest(root)
    problems = _file_problems(root, manifest, hash_workers)
    if problems:
        raise BundleError(root, problems)
    expected = content_version(manifest.files)
    if manifest.model_version != expected:
        raise BundleError(
            root,
            [
                (
                    MANIFEST,
                    f"model_version {manifest.model_version} is not the content hash of "
                    f"the listed files ({expected}): the manifest was edited",
                )
            ],
        )
    return root, manifest


def read_manifest(root: Path) -> Manifest:
    """Parse ``manifest.json``, checking the format version before anything else."""
    file = root / MANIFEST
    if not file.is_file():
        raise BundleError(
            root,
            [
                (
                    MANIFEST,
                    "missing: a half-written bundle (the manifest is written last) "
                    "or not a bundle directory",
                )
            ],
        )
    try:
        obj = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(root, [(MANIFEST, f"not valid JSON ({e})")]) from e
    version = obj.get("format_version") if isinstance(obj, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(
            root,
            [
                (
                    MANIFEST,
                    f"wrong format version: {version!r}, this reader supports "
                    f"{FORMAT_VERSION} (write the bundle again with a matching segrec)",
                )
            ],
        )
    try:
        return Manifest.from_json(obj)
    except ManifestError as e:
        raise BundleError(root, [(MANIFEST, f"malformed: {e}")]) from e


def _file_problems(
    root: Path, manifest: Manifest, hash_workers: int | None
) -> list[tuple[str, str]]:
    """Missing, unexpected, resized and tampered files, in that order of cost to find."""
    problems: list[tuple[str, str]] = []
    for rel in manifest.files:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or rel == MANIFEST:
            problems.append((rel, "unsafe path in the manifest"))
    if problems:
        return problems
    present, odd = list_files(root)
    problems += [(rel, "not a regular file (link or device)") for rel in odd]
    listed = set(manifest.files)
    problems += [(rel, "missing") for rel in sorted(listed - set(present))]
    problems += [
        (rel, "unexpected file, not listed in the manifest (modified after writing?)")
        for rel in sorted(set(present) - listed)
    ]
    candidates = []
    for rel in sorted(listed & set(present)):
        size = (root / rel).stat().st_size
        expected = manifest.files[rel].bytes
        if size != expected:
            problems.append(
                (rel, f"size {size} bytes, manifest says {expected} (truncated or modified)")
            )
        else:
            candidates.append(rel)
    if problems:
        return problems  # no point hashing gigabytes of a bundle already refused
    for rel, entry in hash_files(root, candidates, hash_workers).items():
        if entry.sha256 != manifest.files[rel].sha256:
            problems.append(
                (
                    rel,
                    f"checksum mismatch (tampered or corrupted): sha256 "
                    f"{entry.sha256[:12]}…, manifest says "
                    f"{manifest.files[rel].sha256[:12]}…",
                )
            )
    return problems
