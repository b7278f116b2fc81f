"""Segment vocabularies: per family, label ↔ index, with 0 for ``unknown`` and unseen labels.

The customer tower has one embedding table per family, indexed by these integers, so the
vocabulary is fitted once, saved with the model, and reused to encode later assignments:
a label the model never saw lands in slot 0, like ``unknown``. Each vocabulary is an
``IdMap`` over the family's labels, sorted, so refitting on the same labels gives the same
indices whatever order the customers came in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from segrec.data import IdMap
from segrec.segments.errors import UNKNOWN_LABEL

_INDEX_FILE = "families.json"


class SegmentVocabularies:
    """family → ``IdMap`` of its labels, in a fixed family order (the columns of ``encode``)."""

    def __init__(self, maps: dict[str, IdMap]) -> None:
        self.maps = dict(maps)

    @property
    def families(self) -> list[str]:
        return list(self.maps)

    def __getitem__(self, family: str) -> IdMap:
        return self.maps[family]

    def sizes(self) -> dict[str, int]:
        """Embedding rows each family needs: its labels plus the unknown slot."""
        return {f: len(m) + 1 for f, m in self.maps.items()}

    @classmethod
    def fit(cls, assignments: pl.DataFrame) -> SegmentVocabularies:
        """One vocabulary per family column of ``assign_segments``'s output."""
        families = [c for c in assignments.columns if c != "customer_id"]
        return cls(
            {
                f: IdMap.from_values(assignments[f].filter(assignments[f] != UNKNOWN_LABEL))
                for f in families
            }
        )

    def _check_columns(self, assignments: pl.DataFrame) -> None:
        missing = [f for f in self.maps if f not in assignments.columns]
        if missing:
            given = [c for c in assignments.columns if c != "customer_id"]
            raise ValueError(
                f"segment vocabularies: assignments lack {missing}; expected families "
                f"{self.families}, given {given}"
            )

    def encode(self, assignments: pl.DataFrame) -> np.ndarray:
        """(n_customers, n_families) int64 indices, in row order; unknown/unseen labels → 0."""
        self._check_columns(assignments)
        out = np.zeros((assignments.height, len(self.maps)), dtype=np.int64)
        for j, (family, vocab) in enumerate(self.maps.items()):
            out[:, j] = vocab.encode(assignments[family])
        return out

    def decode(self, indices: np.ndarray) -> pl.DataFrame:
        """Labels for (n, n_families) indices; index 0 decodes to ``unknown``."""
        return pl.DataFrame(
            {
                f: pl.Series(m.decode(indices[:, j]).tolist(), dtype=pl.Utf8).fill_null(
                    UNKNOWN_LABEL
                )
                for j, (f, m) in enumerate(self.maps.items())
            }
        )

    def save(self, directory: str | Path) -> None:
        """``<family index>.parquet`` per family plus ``families.json`` keeping their order."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = {f: f"{i:02d}.parquet" for i, f in enumerate(self.maps)}  # names may hold '/'
        for family, vocab in self.maps.items():
            vocab.save(directory / files[family])
        (directory / _INDEX_FILE).write_text(json.dumps({"families": files}, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> SegmentVocabularies:
        directory = Path(directory)
        files = json.loads((directory / _INDEX_FILE).read_text())["families"]
        return cls({f: IdMap.load(directory / name) for f, name in files.items()})
