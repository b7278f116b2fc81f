"""Block-wise, threaded hashing gives hashlib's answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from segrec.bundle.checksum import content_version, hash_files, sha256_file


def test_blockwise_sha256_equals_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5_000  # 1.28 MB: many 64 KiB blocks and a partial one
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", block_bytes=65_536) == hashlib.sha256(data).hexdigest()


def test_threaded_hashing_equals_sequential(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"{i}.bin").write_bytes(bytes([i]) * (i * 1000))
    names = [f"{i}.bin" for i in range(6)]
    assert hash_files(tmp_path, names, workers=4) == hash_files(tmp_path, names, workers=1)
    entries = hash_files(tmp_path, names, workers=1)
    assert content_version(entries) == content_version(dict(reversed(entries.items())))
    assert entries["5.bin"].bytes == 5000
