"""The contract of ``assign_segments`` that the model, evaluation and report rely on."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from segrec.segments import (
    AttributeFamilyConfig,
    LearnedFamilyConfig,
    RFMFamilyConfig,
    RuleConfig,
    RulesFamilyConfig,
    SegmentConfigError,
    SegmentsConfig,
    assign_segments,
    resolve_as_of,
)
from tests.segments.tiny import AS_OF, tiny_data

ALL = SegmentsConfig(
    attribute={"region": AttributeFamilyConfig(column="region")},
    rfm={"rfm": RFMFamilyConfig(bins=2)},
    rules={"life": RulesFamilyConfig(rules=[RuleConfig("prospect", never_purchased=True)])},
    learned={"taste": LearnedFamilyConfig(k=2)},
)


def test_one_row_per_customer_and_one_text_column_per_family() -> None:
    out = assign_segments(ALL, tiny_data(), AS_OF)
    assert out.columns == ["customer_id", "region", "rfm", "life", "taste"]
    assert all(dtype == pl.Utf8 for dtype in out.dtypes)
    # c1..c6 from the customers table, c7 because it bought; sorted, no nulls.
    assert out["customer_id"].to_list() == [f"c{i}" for i in range(1, 8)]
    assert out.null_count().sum_horizontal().item() == 0


def test_interactions_argument_replaces_the_history() -> None:
    data = tiny_data()
    extra = data.interactions.head(1).with_columns(pl.lit("c9").alias("customer_id"))
    out = assign_segments(ALL, data, AS_OF, interactions=pl.concat([data.interactions, extra]))
    row = out.filter(pl.col("customer_id") == "c9").row(0, named=True)
    assert row["region"] == "unknown" and row["life"] == "other" and row["rfm"] != "unknown"
    no_learned = SegmentsConfig(attribute=ALL.attribute, rfm=ALL.rfm, rules=ALL.rules)
    only_c1 = data.interactions.filter(pl.col("customer_id") == "c1")
    only_c1 = assign_segments(no_learned, data, AS_OF, only_c1)
    assert only_c1.filter(pl.col("customer_id") == "c2")["life"].item() == "prospect"


def test_no_peeking_past_as_of() -> None:
    data = tiny_data()
    before = assign_segments(ALL, data, AS_OF)
    moved = data.interactions.with_columns(
        pl.when(pl.col("timestamp") >= AS_OF)
        .then(pl.col("timestamp") + timedelta(days=30))
        .otherwise(pl.col("timestamp"))
    )
    data.interactions = pl.concat([moved, moved.filter(pl.col("timestamp") >= AS_OF)])
    assert assign_segments(ALL, data, AS_OF).equals(before)


@pytest.mark.parametrize("as_of", [datetime(2024, 1, 15, 12), datetime(2024, 3, 7)])
def test_as_of_outside_the_data_is_refused(as_of: datetime) -> None:
    with pytest.raises(SegmentConfigError, match=r"segments\.as_of: .* is outside the data"):
        assign_segments(ALL, tiny_data(), as_of)


def test_as_of_the_day_after_the_data_is_accepted() -> None:
    out = assign_segments(ALL, tiny_data(), datetime(2024, 3, 6))
    assert out.filter(pl.col("customer_id") == "c4")["life"].item() == "other"


def test_a_name_used_by_two_families_is_refused() -> None:
    cfg = SegmentsConfig(
        attribute={"rfm": AttributeFamilyConfig(column="region")}, rfm={"rfm": RFMFamilyConfig()}
    )
    with pytest.raises(SegmentConfigError, match=r"segments\.rfm\.rfm: the name is also used"):
        assign_segments(cfg, tiny_data(), AS_OF)


def test_resolve_as_of() -> None:
    last = datetime(2024, 3, 5, 12)
    assert resolve_as_of(None, last, AS_OF) == AS_OF
    assert resolve_as_of("end", last, AS_OF) == datetime(2024, 3, 6)
    assert resolve_as_of("2024-02-01", last, AS_OF) == datetime(2024, 2, 1)
    with pytest.raises(ValueError, match=r"segments\.as_of: 'soon'"):
        resolve_as_of("soon", last, AS_OF)


def test_no_families_gives_the_customers_only() -> None:
    out = assign_segments(SegmentsConfig(), tiny_data(), AS_OF)
    assert out.columns == ["customer_id"] and out.height == 7
