"""Open an input table lazily, whatever its format.

Everything is scanned with polars so that large files are never read row by row in
Python; only the columns a preset names are materialised.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

import polars as pl

from segrec.data.config import TableConfig


class DataFileError(ValueError):
    """An input file that cannot be opened, or lacks a column its preset names."""


def resolve_format(path: Path, declared: str) -> str:
    """Return ``parquet``, ``csv`` or ``zip`` from the declared format or the file suffix."""
    if declared != "auto":
        return declared
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".zip"):
        return "zip"
    if any(name.endswith(s) for s in (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".gz")):
        return "csv"
    raise DataFileError(f"{path}: cannot tell the format from the suffix; set format: csv|parquet")


def _cache_dir() -> Path:
    return Path(os.environ.get("SEGREC_CACHE", Path.home() / ".cache" / "segrec"))


def _extract_member(archive: Path, member: str | None) -> Path:
    """Extract one CSV from a zip once into the cache, so it can then be scanned lazily.

    polars cannot scan inside a zip; extracting to a cache keyed by the archive's size and
    modification time costs one copy per archive, after which reads are lazy and fast.
    """
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if member is None:
            if len(names) != 1:
                raise DataFileError(f"{archive}: holds {len(names)} files {names}; set member:")
            member = names[0]
        if member not in names:
            raise DataFileError(f"{archive}: no member {member!r}; it holds {names}")
        stat = archive.stat()
        key = hashlib.sha256(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        target = _cache_dir() / "unzipped" / key.hexdigest()[:16] / Path(member).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # A file of its own per process, renamed atomically: two jobs extracting the
            # same archive at once each write whole copies, and the last rename wins.
            with (
                zf.open(member) as src,
                tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as dst,
            ):
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
            Path(dst.name).replace(target)
    return target


def local_path(cfg: TableConfig) -> tuple[Path, str]:
    """The file to scan and its format (``csv`` or ``parquet``); a zip is extracted first."""
    path = Path(cfg.path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    fmt = resolve_format(path, cfg.format)
    if fmt == "zip":
        return _extract_member(path, cfg.member), "csv"
    return path, fmt


def scan_table(cfg: TableConfig, wanted: list[str]) -> pl.LazyFrame:
    """Scan ``cfg.path`` lazily, keeping the file columns in ``wanted`` (in that order).

    CSV is read with every column as text so that validation sees the raw values and can
    quote them back to the user; parquet keeps its native types. A column named in the
    preset but absent from the file raises a ``DataFileError`` naming both.
    """
    path, fmt = local_path(cfg)
    if fmt == "parquet":
        lf = pl.scan_parquet(path)
    elif fmt == "csv":
        lf = pl.scan_csv(path, separator=cfg.separator, infer_schema=False, encoding="utf8")
    else:
        raise DataFileError(f"{path}: unknown format {fmt!r} (csv | parquet | zip)")
    available = lf.collect_schema().names()
    # A UTF-8 byte order mark can cling to the first header name.
    clean = {name: name.lstrip("\ufeff").strip() for name in available}
    lf = lf.rename({k: v for k, v in clean.items() if k != v})
    available = list(clean.values())
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataFileError(f"{cfg.path}: missing column(s) {missing}; the file has {available}")
    return lf.select(list(dict.fromkeys(wanted)))
