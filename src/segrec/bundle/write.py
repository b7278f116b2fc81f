"""Writing a bundle atomically: a temporary directory, fsync, then one rename.

A reader must never see half a bundle. Everything is written into ``.tmp-bundle-*`` in the
same parent (so the rename never crosses a filesystem), every file and directory is
fsynced, ``manifest.json`` is written last, and only then is the directory renamed to its
final name and the ``latest`` pointer replaced (``os.replace`` of a small file). A crash
at any point leaves either the previous state or the new complete bundle, plus at worst a
temporary directory that readers refuse by name. Torch-free: only files are written here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from segrec.bundle.checksum import content_version, hash_files, list_files
from segrec.bundle.schema import FORMAT_VERSION, LATEST, MANIFEST, TEMP_PREFIX, Manifest


class BundleStaging:
    """A bundle being written. Use as a context manager; ``commit`` publishes it.

    >>> with BundleStaging(root) as stage:          # doctest: +SKIP
    ...     np.save(stage.path("items/vectors.npy"), vectors)
    ...     final = stage.commit(tower=..., index=..., contents=...)

    Leaving the block without committing (an exception, a failed parity check) removes the
    temporary directory, so a failed export leaves nothing behind.
    """

    def __init__(self, root: Path, hash_workers: int | None = None) -> None:
        self.root = Path(root)
        self.hash_workers = hash_workers
        self.tmp: Path | None = None
        self.committed: Path | None = None

    def __enter__(self) -> BundleStaging:
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, rel: str) -> Path:
        """Where to write the bundle file ``rel`` (its parent directories are created)."""
        if self.tmp is None:
            raise RuntimeError("BundleStaging: use it as a context manager")
        full = self.tmp / rel
        full.parent.mkdir(parents=True, exist_ok=True)
        return full

    def directory(self, rel: str) -> Path:
        """Where to write the bundle directory ``rel`` (created, with its parents)."""
        full = self.path(rel)
        full.mkdir(exist_ok=True)
        return full

    def commit(
        self,
        *,
        tower: Mapping[str, Any],
        index: Mapping[str, Any],
        contents: Mapping[str, Any],
        training_config: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        export: Mapping[str, Any] | None = None,
        update_latest: bool = True,
    ) -> tuple[Path, Manifest]:
        """Hash, write the manifest, fsync, rename into place, point ``latest`` at it."""
        assert self.tmp is not None
        files, odd = list_files(self.tmp)
        if odd:
            raise ValueError(f"bundle: only regular files may be written, found {odd}")
        entries = hash_files(self.tmp, files, self.hash_workers)
        created = datetime.now(timezone.utc)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_version=content_version(entries),
            created_at=created.isoformat(timespec="seconds"),
            tower=dict(tower),
            index=dict(index),
            contents=dict(contents),
            files=entries,
            training_config=dict(training_config or {}),
            metrics=dict(metrics or {}),
            export=dict(export or {}),
        )
        text = json.dumps(manifest.to_json(), indent=2, default=str)
        (self.tmp / MANIFEST).write_text(text + "\n")
        _fsync_tree(self.tmp)
        final = self.root / f"{created:%Y%m%dT%H%M%SZ}-{manifest.model_version}"
        if final.exists():  # same content written within the same second: keep the first
            shutil.rmtree(self.tmp)
        else:
            os.rename(self.tmp, final)
        _fsync_dir(self.root)
        self.tmp = None
        if update_latest:
            point_latest(self.root, final.name)
        self.committed = final
        return final, manifest


def point_latest(root: Path, name: str) -> None:
    """Make ``root/latest`` name the bundle directory ``name``, atomically (``os.replace``)."""
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / LATEST)
    _fsync_dir(root)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` to disk before the rename publishes it.

    Without this, a power loss after the rename could leave a bundle whose manifest is on
    disk but whose arrays are not: the rename is only atomic for what has been flushed.
    """
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    """fsync a directory so that the names in it (a rename, a new file) are durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
