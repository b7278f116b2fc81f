"""RFM families: exact codes with fixed edges, quantile edges, named groups, as_of."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from segrec.segments import (
    RFMFamilyConfig,
    RFMGroup,
    SegmentConfigError,
    Segmenter,
    SegmentsConfig,
    assign_segments,
)
from segrec.segments.history import window
from segrec.segments.rfm import fit_rfm, rfm_measures
from tests.segments.tiny import AS_OF, labels, tiny_data

# recency: R3 <= 7 days < R2 <= 30 days < R1; frequency: F1 1 order, F2 2, F3 3+;
# monetary: M1 <= 20 < M2 <= 50 < M3.
FIXED = RFMFamilyConfig(recency_edges=[7, 30], frequency_edges=[1, 2], monetary_edges=[20, 50])


def _run(cfg: RFMFamilyConfig) -> dict[str, str]:
    return labels(assign_segments(SegmentsConfig(rfm={"rfm": cfg}), tiny_data(), AS_OF), "rfm")


def test_fixed_edges_give_exact_codes() -> None:
    assert _run(FIXED) == {
        "c1": "R3-F3-M2",  # 1.5 days, 3 orders, 35
        "c2": "R1-F1-M3",  # 45.5 days, 1 order, 100
        "c3": "R3-F2-M3",  # 3.5 days, 2 orders, 60
        "c4": "unknown",  # first purchase after as_of
        "c5": "unknown",  # bought, but revenue unknown: M cannot be scored
        "c6": "unknown",  # never bought
        "c7": "R2-F1-M1",  # 28.5 days, 1 order, 20 (an edge stays in the lower band)
    }


def test_without_monetary_revenue_is_not_needed() -> None:
    cfg = RFMFamilyConfig(recency_edges=[7, 30], frequency_edges=[1, 2], monetary=False)
    out = _run(cfg)
    assert out["c5"] == "R3-F1"
    assert out["c1"] == "R3-F3"


def test_quantile_edges_come_from_the_active_customers() -> None:
    data = tiny_data()
    measures = rfm_measures(window(data.interactions.lazy(), AS_OF), AS_OF, None)
    edges = fit_rfm(RFMFamilyConfig(bins=2), measures)
    # five active customers: recency 1.5, 45.5, 3.5, 0.5, 28.5 -> median 3.5
    assert edges.recency == [3.5]
    assert edges.frequency == [1.0]
    assert edges.monetary == pytest.approx([47.5])  # 20, 35, 60, 100 (c5's is unknown)
    codes = _run(RFMFamilyConfig(bins=2))
    assert codes["c1"] == "R2-F2-M1"  # 1.5 <= 3.5 days: recent; 3 orders > 1; 35 <= 47.5
    assert codes["c2"] == "R1-F1-M2"


def test_named_groups_cover_the_grid() -> None:
    groups = [
        RFMGroup("active_regular", r=[3, 3], f=[2, 3]),
        RFMGroup("active_new", r=[3, 3], f=[1, 1]),
        RFMGroup("fading", r=[1, 2], f=[1, 3]),
    ]
    cfg = RFMFamilyConfig(recency_edges=[7, 30], frequency_edges=[1, 2], named=True, groups=groups)
    assert _run(cfg) == {
        "c1": "active_regular",
        "c2": "fading",
        "c3": "active_regular",
        "c4": "unknown",
        "c5": "active_new",
        "c6": "unknown",
        "c7": "fading",
    }


def test_classic_groups_on_five_bins() -> None:
    out = _run(RFMFamilyConfig(bins=5, named=True))
    assert set(out.values()) <= {g.label for g in RFMFamilyConfig().groups} | {"unknown"}
    assert out["c6"] == "unknown"


def test_as_of_is_respected_and_later_rows_change_nothing() -> None:
    data = tiny_data()
    cfg = SegmentsConfig(rfm={"rfm": FIXED})
    before = assign_segments(cfg, data, AS_OF)
    later = data.interactions.with_columns(pl.col("timestamp") + timedelta(days=400))
    data.interactions = pl.concat([data.interactions, later])
    assert assign_segments(cfg, data, AS_OF).equals(before)
    # One day earlier, c1's last purchase (02-28 noon) is in the future: 02-20 is its last.
    earlier = labels(assign_segments(cfg, tiny_data(), AS_OF - timedelta(days=2)), "rfm")
    assert earlier["c1"] == "R2-F2-M1"  # 8.5 days, 2 orders, 20


def test_window_days_limits_the_history() -> None:
    cfg = RFMFamilyConfig(recency_edges=[7], frequency_edges=[1], monetary=False, window_days=30)
    out = _run(cfg)
    assert out["c2"] == "unknown"  # its only purchase is 45 days old
    assert out["c7"] == "R1-F1"


def test_segmenter_reuses_fitted_edges_at_another_date() -> None:
    data = tiny_data()
    cfg = SegmentsConfig(rfm={"rfm": RFMFamilyConfig(bins=2)})
    segmenter = Segmenter.fit(cfg, data, AS_OF)
    again = segmenter.assign(data, AS_OF - timedelta(days=2))
    refit = assign_segments(cfg, data, AS_OF - timedelta(days=2))
    assert segmenter.rfm_edges["rfm"].recency == [3.5]
    assert labels(again, "rfm")["c3"] == "R2-F2-M2"  # 1.5 days, 2 orders, 60 > 47.5
    assert not again.equals(refit)  # refitting moves the edges with the population


def test_config_errors_name_the_family_and_the_field() -> None:
    data = tiny_data()
    data.interactions = data.interactions.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("revenue")
    )
    cfg = SegmentsConfig(
        rfm={
            "a": RFMFamilyConfig(bins=1),
            "b": RFMFamilyConfig(recency_edges=[30, 7]),
            "c": RFMFamilyConfig(),
            "d": RFMFamilyConfig(bins=5, named=True, groups=[RFMGroup("x", r=[1, 5], f=[1, 4])]),
        }
    )
    with pytest.raises(SegmentConfigError) as err:
        assign_segments(cfg, data, AS_OF)
    problems = "\n".join(err.value.problems)
    assert "segments.rfm.a.bins: need at least 2 bands" in problems
    assert "segments.rfm.b.recency_edges: edges must be strictly increasing" in problems
    assert "segments.rfm.c.monetary: the data has no revenue" in problems
    assert "segments.rfm.d.groups: no group covers R1F5" in problems
