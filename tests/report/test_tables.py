"""The report's tables on the hand-made data set, where every number can be checked by hand.

Period 14 days before as_of 2024-03-01: this period is [02-16, 03-01), the previous one
[02-02, 02-16). In this period c1 spent 25 in 2 orders, c3 60 in 2, c5 an unknown amount
in 1; in the previous one only c1 bought (10).
"""

from __future__ import annotations

import polars as pl
import pytest

from segrec.report import SegmentReport, build_segment_report
from segrec.segments import (
    AttributeFamilyConfig,
    RFMFamilyConfig,
    SegmentConfigError,
    SegmentReportConfig,
    SegmentsConfig,
)
from tests.segments.tiny import AS_OF, tiny_data

CFG = SegmentsConfig(
    period_days=14,
    attribute={"region": AttributeFamilyConfig(column="region", unknown_values=["Unknown"])},
    rfm={"rfm": RFMFamilyConfig(recency_edges=[7, 30], frequency_edges=[1, 2], monetary=False)},
    report=SegmentReportConfig(min_buyers=1, top_n=2),
)


@pytest.fixture(scope="module")
def report() -> SegmentReport:
    return build_segment_report(CFG, tiny_data(), AS_OF)


def _row(report: SegmentReport, family: str, label: str) -> dict:
    rows = report.summary.filter((pl.col("family") == family) & (pl.col("label") == label))
    return rows.row(0, named=True)


def test_summary_by_hand(report: SegmentReport) -> None:
    north = _row(report, "region", "north")  # c1, c5
    assert (north["customers"], north["revenue"], north["orders"]) == (2, 25.0, 3)
    assert north["orders_per_customer"] == 1.5
    assert north["customer_share"] == pytest.approx(2 / 7)
    assert north["revenue_share"] == pytest.approx(25 / 85)
    assert (north["customers_prev"], north["revenue_prev"]) == (2, 10.0)
    assert north["customer_growth"] == 0.0 and north["revenue_growth"] == pytest.approx(1.5)
    unknown = _row(report, "region", "unknown")  # c3, c4, c7
    assert (unknown["customers"], unknown["revenue"]) == (3, 60.0)
    assert unknown["revenue_growth"] is None  # nothing to grow from
    assert report.totals["revenue"] == 85.0 and report.totals["revenue_prev"] == 10.0


def test_totals_reconcile(report: SegmentReport) -> None:
    per_family = report.summary.group_by("family").agg(
        pl.col("customers").sum(), pl.col("revenue_share").sum(), pl.col("customers_prev").sum()
    )
    assert per_family["customers"].to_list() == [7, 7]
    assert per_family["customers_prev"].to_list() == [7, 7]
    assert per_family["revenue_share"].to_list() == pytest.approx([1.0, 1.0])
    moved = report.migration.group_by("family").agg(pl.col("customers").sum())
    assert moved["customers"].to_list() == [7, 7]


def test_rfm_migration_follows_each_customer(report: SegmentReport) -> None:
    moves = {(a, b): n for f, a, b, n in report.migration.iter_rows() if f == "rfm"}
    # c1: on 02-16 last bought 02-10 (5.5 days, 1 order) -> R3-F1; now R3-F3.
    # c3: no purchase before 02-16 -> unknown; now R3-F2. c7: 14.5 days, R2-F1 -> 28.5, R2-F1.
    assert moves[("R3-F1", "R3-F3")] == 1
    assert moves[("unknown", "R3-F2")] == 1
    assert moves[("R2-F1", "R2-F1")] == 1
    assert report.migration.filter(pl.col("family") == "region")["from_label"].equals(
        report.migration.filter(pl.col("family") == "region")["to_label"]
    )


def test_top_items_and_categories_by_lift(report: SegmentReport) -> None:
    top = report.top.filter((pl.col("family") == "region") & (pl.col("label") == "north"))
    items = top.filter(pl.col("kind") == "item_id")
    # Shoppers of the period: c1, c3, c5; north's are c1 and c5. Both bought i3 (B), c1
    # also i1 (A), which no other shopper bought: lift (1/2) / (1/3) = 1.5 for i1, and
    # (2/2) / (2/3) = 1.5 for i3.
    assert items["value"].to_list() == ["i1", "i3"]
    assert items["lift"].to_list() == pytest.approx([1.5, 1.5])
    cats = top.filter(pl.col("kind") == "category")
    assert cats["value"].to_list() == ["A", "B"]


def test_rfm_grid_counts_active_customers(report: SegmentReport) -> None:
    grid = report.rfm_grids["rfm"]
    assert grid["customers"].sum() == 5  # c1, c2, c3, c5, c7 bought before as_of
    assert grid.filter((pl.col("r") == 3) & (pl.col("f") == 1))["label"].item() == "R3-F1"


def test_a_period_reaching_before_the_data_is_refused() -> None:
    cfg = SegmentsConfig(period_days=60, attribute=CFG.attribute)
    with pytest.raises(SegmentConfigError, match=r"segments\.period_days"):
        build_segment_report(cfg, tiny_data(), AS_OF)
