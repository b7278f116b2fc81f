"""sha256 of a bundle's files, fast enough to run on every load.

Files are read in 4 MiB blocks into one reused buffer (no per-block allocation), and
several files are hashed at once on threads: hashlib releases the GIL on large updates, so
a multi-core machine verifies a bundle of large arrays at close to disk speed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from segrec.bundle.schema import MANIFEST, FileEntry

BLOCK_BYTES = 4 * 2**20


def sha256_file(path: Path, block_bytes: int = BLOCK_BYTES) -> str:
    """Hex sha256 of one file, read block by block (memory stays at one block)."""
    digest = hashlib.sha256()
    buffer = bytearray(block_bytes)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def hash_files(
    root: Path, paths: Iterable[str], workers: int | None = None
) -> dict[str, FileEntry]:
    """``FileEntry`` of every relative path under ``root``, hashed on ``workers`` threads."""
    paths = sorted(paths)
    workers = workers or min(8, os.cpu_count() or 1)

    def entry(rel: str) -> FileEntry:
        full = root / rel
        return FileEntry(sha256=sha256_file(full), bytes=full.stat().st_size)

    if workers <= 1 or len(paths) <= 1:
        return {p: entry(p) for p in paths}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(paths, pool.map(entry, paths), strict=True))


def list_files(root: Path) -> tuple[list[str], list[str]]:
    """Relative POSIX paths of the regular files under ``root`` except the manifest, and of
    anything that is not a regular file or directory (links, sockets): a bundle holds plain
    files only, so the second list is always a reason to refuse it."""
    files, odd = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in [*filenames, *dirnames]:
            full = here / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not (full.is_file() or full.is_dir()):
                odd.append(rel)
            elif full.is_file() and rel != MANIFEST:
                files.append(rel)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return sorted(files), sorted(odd)


def content_version(files: dict[str, FileEntry]) -> str:
    """The model version: a hash of every (path, sha256), independent of when it was written."""
    digest = hashlib.sha256()
    for path, entry in sorted(files.items()):
        digest.update(f"{path}\0{entry.sha256}\n".encode())
    return digest.hexdigest()[:16]
