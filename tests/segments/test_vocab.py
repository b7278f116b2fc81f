"""Segment vocabularies: index 0 for unknown and unseen labels, stable, saved and loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segrec.segments import SegmentVocabularies

ASSIGNED = pl.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4"],
        "rfm": ["R2-F1", "unknown", "R1-F1", "R2-F1"],
        "region/area": ["north", "south", "unknown", "north"],
    }
)


def test_labels_sorted_from_one_and_unknown_is_zero() -> None:
    vocab = SegmentVocabularies.fit(ASSIGNED)
    assert vocab.families == ["rfm", "region/area"]
    assert vocab.sizes() == {"rfm": 3, "region/area": 3}
    assert vocab["rfm"].ids.to_list() == ["R1-F1", "R2-F1"]
    expected = np.array([[2, 1], [0, 2], [1, 0], [2, 1]])
    np.testing.assert_array_equal(vocab.encode(ASSIGNED), expected)
    assert vocab.encode(ASSIGNED).dtype == np.int64


def test_unseen_labels_encode_to_zero_and_decode_to_unknown() -> None:
    vocab = SegmentVocabularies.fit(ASSIGNED)
    later = ASSIGNED.with_columns(pl.Series("rfm", ["R3-F3", "R1-F1", None, "unknown"]))
    codes = vocab.encode(later)
    np.testing.assert_array_equal(codes[:, 0], [0, 1, 0, 0])
    assert vocab.decode(codes)["rfm"].to_list() == ["unknown", "R1-F1", "unknown", "unknown"]


def test_stable_across_runs_whatever_the_row_order() -> None:
    one = SegmentVocabularies.fit(ASSIGNED)
    two = SegmentVocabularies.fit(ASSIGNED.reverse())
    np.testing.assert_array_equal(one.encode(ASSIGNED), two.encode(ASSIGNED))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vocab = SegmentVocabularies.fit(ASSIGNED)
    vocab.save(tmp_path / "vocab")
    loaded = SegmentVocabularies.load(tmp_path / "vocab")
    assert loaded.families == vocab.families
    np.testing.assert_array_equal(loaded.encode(ASSIGNED), vocab.encode(ASSIGNED))


def test_missing_family_is_named() -> None:
    vocab = SegmentVocabularies.fit(ASSIGNED)
    with pytest.raises(ValueError, match=r"lack \['region/area'\]"):
        vocab.encode(ASSIGNED.drop("region/area"))
