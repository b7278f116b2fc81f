"""Id maps reserve 0 for unknown; the split labels warm/cold customers and repeat/new items."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segrec.data import UNKNOWN, IdMap, SplitConfig, split_by_time


def test_id_map_is_sorted_stable_and_reserves_zero(tmp_path: Path) -> None:
    a = IdMap.from_values(pl.Series(["b", "a", "c", "a", None]))
    b = IdMap.from_values(pl.Series(["c", "b", "a"]))
    assert a.ids.to_list() == b.ids.to_list() == ["a", "b", "c"]
    assert a.encode(["c", "a", "zzz", None]).tolist() == [3, 1, UNKNOWN, UNKNOWN]
    assert a.decode(np.array([1, 0, 3])).tolist() == ["a", None, "c"]
    assert [a.index(v) for v in ["c", "a", "zzz", None]] == [3, 1, UNKNOWN, UNKNOWN]
    a.save(tmp_path / "m.parquet")
    assert IdMap.load(tmp_path / "m.parquet").encode(["b"]).tolist() == [2]
    assert len(a) == 3


def test_id_map_refuses_repeats() -> None:
    with pytest.raises(ValueError, match="unique"):
        IdMap(pl.Series(["a", "a"]))


def frame(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [datetime.fromisoformat(r[2]) for r in rows],
        }
    )


def test_split_and_labels() -> None:
    data = frame(
        [
            ("A", "x", "2024-01-01"),
            ("B", "y", "2024-01-02"),  # train
            ("A", "x", "2024-02-02"),
            ("C", "z", "2024-02-03"),  # validation
            ("A", "x", "2024-03-02"),
            ("A", "q", "2024-03-02"),  # test: repeat, new
            ("C", "z", "2024-03-03"),
            ("D", "x", "2024-03-04"),  # warm via validation; cold
        ]
    )
    split = split_by_time(data, SplitConfig(test_start="2024-03-01", validation_start="2024-02-01"))
    assert split.train.height == 2 and split.validation.height == 2 and split.test.height == 4
    assert split.validation.select("customer_id", "customer_status", "item_status").rows() == [
        ("A", "warm", "repeat"),
        ("C", "cold", "new"),
    ]
    assert split.test.select("customer_id", "item_id", "customer_status", "item_status").rows() == [
        ("A", "x", "warm", "repeat"),
        ("A", "q", "warm", "new"),
        ("C", "z", "warm", "repeat"),
        ("D", "x", "cold", "new"),
    ]
    assert split.before_test.height == 4
    assert split.test_end > datetime(2024, 3, 4)


def test_split_by_days_and_bad_dates() -> None:
    data = frame(
        [(c, "x", f"2024-01-{d:02d}") for c, d in [("A", 1), ("A", 10), ("B", 20), ("C", 30)]]
    )
    split = split_by_time(data, SplitConfig(test_days=5, validation_days=10))
    assert split.test_start == datetime(2024, 1, 25) and split.validation_start == datetime(
        2024, 1, 15
    )
    with pytest.raises(ValueError, match="test_start: '2024-31-01' is not an ISO date"):
        split_by_time(data, SplitConfig(test_start="2024-31-01"))
    with pytest.raises(ValueError, match="need first purchase"):
        split_by_time(data, SplitConfig(test_start="2025-01-01"))
