"""String id ↔ dense integer index, with 0 reserved for 'unknown'.

Embedding tables are indexed by these integers: slot 0 is where a customer or item that
training never saw lands, so every lookup has a defined answer.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

UNKNOWN = 0


class IdMap:
    """A frozen, sorted vocabulary of string ids; index i+1 is ``ids[i]``.

    Sorting makes the map a pure function of the set of ids, so two runs over the same data
    agree whatever order the rows came in.
    """

    def __init__(self, ids: pl.Series) -> None:
        ids = ids.cast(pl.Utf8)
        if ids.null_count():
            raise ValueError("IdMap: ids must not be null")
        if ids.n_unique() != ids.len():
            raise ValueError("IdMap: ids must be unique; build it with IdMap.from_values")
        self._table = pl.DataFrame({"id": ids}).sort("id").with_row_index("index", offset=1)

    @classmethod
    def from_values(cls, values: pl.Series) -> IdMap:
        """Build from any column of ids, repeats and nulls allowed."""
        return cls(values.cast(pl.Utf8).drop_nulls().unique())

    def __len__(self) -> int:
        """Number of known ids (the embedding table needs ``len(self) + 1`` rows)."""
        return self._table.height

    @property
    def ids(self) -> pl.Series:
        return self._table["id"]

    def encode(self, values: pl.Series | list[str]) -> np.ndarray:
        """Indices of ``values`` (int64, shape (n,)); unknown or null ids give 0."""
        frame = pl.DataFrame({"id": pl.Series(values, dtype=pl.Utf8)})
        joined = frame.join(self._table, on="id", how="left", maintain_order="left")
        return joined["index"].fill_null(UNKNOWN).cast(pl.Int64).to_numpy()

    def index(self, value: str | None) -> int:
        """Index of one id (0 if unknown or None), as ``encode`` gives it: a dict lookup,
        for per-request paths where a join per call costs milliseconds."""
        return self._positions.get(value, UNKNOWN) if value is not None else UNKNOWN

    @cached_property
    def _positions(self) -> dict[str, int]:
        return dict(zip(self.ids.to_list(), range(1, len(self) + 1), strict=True))

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Ids for ``indices``; index 0 decodes to None."""
        lookup = np.concatenate([np.array([None], dtype=object), self.ids.to_numpy()])
        return lookup[np.asarray(indices)]

    def save(self, path: Path) -> None:
        self._table.write_parquet(path)

    @classmethod
    def load(cls, path: Path) -> IdMap:
        table = pl.read_parquet(path)
        expected = np.arange(1, table.height + 1)
        if not np.array_equal(table["index"].to_numpy(), expected):
            raise ValueError(f"{path}: id map indices are not 1..n in order")
        return cls(table["id"])
