"""Attribute families: values as they are, numeric bands, unknowns, and config errors."""

from __future__ import annotations

import polars as pl
import pytest

from segrec.segments import AttributeFamilyConfig, SegmentConfigError, SegmentsConfig
from segrec.segments import assign_segments as assign
from segrec.segments.attribute import band_labels
from tests.segments.tiny import AS_OF, labels, tiny_data


def _run(**families: AttributeFamilyConfig) -> pl.DataFrame:
    return assign(SegmentsConfig(attribute=dict(families)), tiny_data(), AS_OF)


def test_categorical_as_is_with_unknown_values_and_missing_customers() -> None:
    out = _run(region=AttributeFamilyConfig(column="region", unknown_values=["Unknown"]))
    assert labels(out, "region") == {
        "c1": "north",
        "c2": "south",
        "c3": "unknown",
        "c4": "unknown",
        "c5": "north",
        "c6": "east",
        "c7": "unknown",  # c7 buys but has no customer row
    }


def test_integer_bands_are_left_closed_with_readable_labels() -> None:
    out = _run(age=AttributeFamilyConfig(column="age", edges=[25, 40, 60]))
    assert labels(out, "age") == {
        "c1": "<25",
        "c2": "25-39",
        "c3": "unknown",
        "c4": "60+",
        "c5": "40-59",
        "c6": "25-39",
        "c7": "unknown",
    }


def test_configured_band_labels() -> None:
    cfg = AttributeFamilyConfig(column="age", edges=[30], labels=["young", "older"])
    out = _run(age=cfg)
    assert labels(out, "age")["c2"] == "older"  # 30 is the edge: it opens the upper band
    assert labels(out, "age")["c1"] == "young"


def test_band_labels_for_fractional_edges_and_single_values() -> None:
    assert band_labels([1.5, 2.5], integral=False) == ["<1.5", "[1.5, 2.5)", ">=2.5"]
    assert band_labels([1, 2, 5], integral=True) == ["<1", "1", "2-4", "5+"]


def test_numeric_text_column_is_parsed() -> None:
    data = tiny_data()
    data.customers = data.customers.with_columns(pl.col("age").cast(pl.Utf8))
    cfg = SegmentsConfig(attribute={"age": AttributeFamilyConfig(column="age", edges=[25, 40])})
    assert labels(assign(cfg, data, AS_OF), "age")["c2"] == "25-39"


def test_errors_name_the_family_and_the_field() -> None:
    cfg = SegmentsConfig(
        attribute={
            "a": AttributeFamilyConfig(column="agee"),
            "b": AttributeFamilyConfig(column="age", edges=[40, 25]),
            "c": AttributeFamilyConfig(column="region", edges=[1, 2]),
            "d": AttributeFamilyConfig(column="age", edges=[1], labels=["x"]),
        }
    )
    with pytest.raises(SegmentConfigError) as err:
        assign(cfg, tiny_data(), AS_OF)
    problems = "\n".join(err.value.problems)
    assert "segments.attribute.a.column: no customer attribute 'agee'" in problems
    assert "segments.attribute.b.edges: edges must be strictly increasing" in problems
    assert "segments.attribute.c.edges: column 'region' is not numeric" in problems
    assert "segments.attribute.d.labels: 1 edges make 2 bands, but 1 labels" in problems
