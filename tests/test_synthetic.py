"""The synthetic generator must be deterministic and plant exactly the structure it claims.

Later stages (segments, models, evaluation) are tested against this planted structure, so a
generator that quietly stops planting it would make those tests meaningless.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from segrec.synthetic import (
    AGE_BANDS,
    INCOME_BANDS,
    SyntheticConfig,
    SyntheticPaths,
    ensure_generated,
    generate,
)

SMALL = SyntheticConfig(n_customers=1500, n_items=300, n_brands=30, chunk_customers=400)


def _read(paths: SyntheticPaths) -> dict[str, pl.DataFrame]:
    names = ("interactions", "customers", "items", "planted")
    return {name: pl.read_parquet(getattr(paths, name)) for name in names}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return _read(generate(SMALL, tmp_path_factory.mktemp("synthetic"), progress=False))


@pytest.fixture(scope="module")
def lines(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Interactions joined with item categories and the planted truth."""
    items = data["items"].select("item_id", "category")
    return data["interactions"].join(items, on="item_id").join(data["planted"], on="customer_id")


def _category_shares(frame: pl.DataFrame, by: str) -> np.ndarray:
    """(groups, categories) share of lines per category within each group."""
    wide = frame.pivot(on="category", index=by, values="len", aggregate_function="sum")
    counts = wide.sort(by).drop(by).fill_null(0).to_numpy().astype(float)
    return counts / counts.sum(1, keepdims=True)


def _chi2(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson chi-square statistic of the contingency table of two label arrays."""
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


def test_same_seed_same_tables_and_other_seed_differs(tmp_path: Path) -> None:
    first = _read(generate(SMALL, tmp_path / "a", progress=False))
    again = _read(generate(SMALL, tmp_path / "b", progress=False))
    other = _read(generate(replace(SMALL, seed=SMALL.seed + 1), tmp_path / "c", progress=False))
    for name, frame in first.items():
        assert frame.equals(again[name]), name
    assert not first["interactions"].equals(other["interactions"])
    assert not first["planted"].equals(other["planted"])


def test_schema_and_dtypes(data: dict[str, pl.DataFrame]) -> None:
    assert dict(data["interactions"].schema) == {
        "customer_id": pl.String,
        "item_id": pl.String,
        "timestamp": pl.Datetime("us"),
        "quantity": pl.Int64,
        "revenue": pl.Float64,
        "basket_id": pl.String,
    }
    assert dict(data["customers"].schema) == {
        "customer_id": pl.String,
        "age": pl.Int64,
        "age_band": pl.String,
        "region": pl.String,
        "income_band": pl.String,
    }
    assert dict(data["items"].schema) == {
        "item_id": pl.String,
        "category": pl.String,
        "brand": pl.String,
        "price": pl.Float64,
    }
    assert dict(data["planted"].schema) == {
        "customer_id": pl.String,
        "taste_cluster": pl.Int64,
        "is_new": pl.Boolean,
        "staples": pl.List(pl.String),
    }


def test_values_are_plausible(data: dict[str, pl.DataFrame]) -> None:
    inter, cust, items = data["interactions"], data["customers"], data["items"]
    assert cust["customer_id"][0] == "C0000001" and items["item_id"][0] == "I000001"
    assert cust["customer_id"].is_unique().all() and cust.height == SMALL.n_customers
    assert items["item_id"].is_unique().all() and items.height == SMALL.n_items
    assert (inter["quantity"] >= 1).all() and (inter["revenue"] > 0).all()
    assert (items["price"] > 0).all()
    assert inter.null_count().sum_horizontal().item() == 0
    first, last = inter.select(a=pl.col("timestamp").min(), b=pl.col("timestamp").max()).row(0)
    assert first >= datetime(2024, 1, 1) and last < datetime(2024, 7, 1)  # 182 days
    assert cust["age"].is_between(18, 85).all()
    assert set(cust["age_band"]) <= set(AGE_BANDS)
    assert set(cust["income_band"].drop_nulls()) <= set(INCOME_BANDS)
    for column in ("region", "income_band"):  # some missing, as in real data, but few
        assert 0.01 < cust[column].null_count() / cust.height < 0.06
    assert cust["region"].n_unique() == 7  # six regions and null
    # a basket belongs to one customer at one moment: ids unique across chunks
    per_basket = inter.group_by("basket_id").agg(pl.col("customer_id", "timestamp").n_unique())
    assert (per_basket["customer_id"] == 1).all() and (per_basket["timestamp"] == 1).all()
    unit = inter.join(items, on="item_id").select(pl.col("revenue") / pl.col("quantity") / "price")
    assert unit.to_series().is_between(0.7, 1.4).all()  # price times small noise


def test_every_customer_buys(data: dict[str, pl.DataFrame]) -> None:
    buyers = data["interactions"]["customer_id"].unique()
    assert set(buyers) == set(data["customers"]["customer_id"])


def test_items_zipf_inside_category(data: dict[str, pl.DataFrame]) -> None:
    joined = data["interactions"].join(data["items"], on="item_id")
    counts = joined.group_by("category", "item_id").len()
    counts = counts.with_columns(share=pl.col("len") / pl.col("len").sum().over("category"))
    top = counts.group_by("category").agg(
        head=pl.col("share").max(), median=pl.col("share").median(), n_items=pl.len()
    )
    top = top.filter(pl.col("n_items") >= 10)
    ratio = top.select(
        low=(pl.col("head") / pl.col("median")).min(),
        mean=(pl.col("head") / pl.col("median")).mean(),
    )
    assert top.height >= 5
    assert ratio["low"].item() > 1.5 and ratio["mean"].item() > 3  # a few items carry each category


def test_staples_repeat(lines: pl.DataFrame) -> None:
    hits = lines.select("customer_id", "item_id", hit=pl.col("item_id").is_in(pl.col("staples")))
    own = float(hits.select(pl.col("hit").mean()).item())
    planted = lines.select("customer_id", "taste_cluster", "staples").unique("customer_id")
    planted = planted.sort("taste_cluster", "customer_id")
    # baselines: the staples of another customer, of any cluster and of the same cluster
    anyone = planted.with_columns(pl.col("staples").shuffle(seed=0))
    same = planted.with_columns(pl.col("staples").shift(1).over("taste_cluster"))
    for other, factor in ((anyone, 4), (same, 2)):
        joined = lines.select("customer_id", "item_id").join(
            other.select("customer_id", "staples"), on="customer_id"
        )
        assert (
            own > factor * joined.select(pl.col("item_id").is_in(pl.col("staples")).mean()).item()
        )
    assert own > 0.4
    repeats = hits.filter("hit").group_by("customer_id", "item_id").len()
    repeaters = repeats.filter(pl.col("len") >= 3)["customer_id"].n_unique()
    assert repeaters / lines["customer_id"].n_unique() > 0.7  # most buy some staple 3+ times


def test_staples_distinct_and_from_cluster_favourites(data: dict[str, pl.DataFrame]) -> None:
    planted = data["planted"]
    full = planted.select(pl.col("staples").list.len() == SMALL.staples_per_customer).mean()
    assert full.item() > 0.95
    assert (planted["staples"].list.n_unique() == planted["staples"].list.len()).all()


def test_clusters_differ_in_category_mix(lines: pl.DataFrame) -> None:
    by_cluster = _category_shares(
        lines.group_by("taste_cluster", "category").len(), "taste_cluster"
    )
    k = len(by_cluster)
    tv = [0.5 * np.abs(by_cluster[i] - by_cluster[j]).sum() for i in range(k) for j in range(i)]
    rng = np.random.default_rng(0)
    customers = lines["customer_id"].unique().sort()
    half = dict(zip(customers, rng.random(len(customers)) < 0.5, strict=True))
    halves = lines.with_columns(half=pl.col("customer_id").replace_strict(half))
    by_half = _category_shares(halves.group_by("half", "category").len(), "half")
    random_tv = 0.5 * np.abs(by_half[0] - by_half[1]).sum()
    assert k == SMALL.n_clusters
    assert min(tv) > 0.2 and min(tv) > 4 * random_tv


def test_cluster_depends_partly_on_attributes(data: dict[str, pl.DataFrame]) -> None:
    frame = data["customers"].join(data["planted"], on="customer_id")
    cluster = frame["taste_cluster"].to_numpy()
    rng = np.random.default_rng(0)
    for column, labels in (("age_band", AGE_BANDS), ("income_band", INCOME_BANDS)):
        known = frame.filter(pl.col(column).is_not_null())
        code = known[column].replace_strict(list(labels), list(range(len(labels)))).to_numpy()
        clusters = known["taste_cluster"].to_numpy()
        observed = _chi2(code, clusters)
        null = [_chi2(rng.permutation(code), clusters) for _ in range(100)]
        assert observed > max(null), column
    shares = (
        frame.group_by("age_band", "taste_cluster")
        .len()
        .with_columns(share=pl.col("len") / pl.col("len").sum().over("age_band"))
    )
    assert shares.select(pl.col("share").max()).item() < 0.85  # no band decides the cluster
    assert (shares.group_by("age_band").len()["len"] >= 3).all()
    assert len(np.unique(cluster)) == SMALL.n_clusters


def test_growing_clusters_grow(lines: pl.DataFrame) -> None:
    mid = datetime(2024, 4, 1)  # halfway through 182 days from 2024-01-01
    halves = lines.with_columns(late=pl.col("timestamp") >= mid, grows=pl.col("taste_cluster") < 2)
    stats = halves.group_by("grows", "late").agg(
        pl.col("customer_id").n_unique().alias("customers"), pl.col("revenue").sum()
    )

    def ratio(grows: bool, column: str) -> float:
        rows = stats.filter(pl.col("grows") == grows).sort("late")[column]
        return rows[1] / rows[0]

    for column in ("customers", "revenue"):
        assert ratio(True, column) > 1.3, column
        assert ratio(True, column) > ratio(False, column) + 0.25, column


def test_new_customers_start_late(data: dict[str, pl.DataFrame]) -> None:
    first = data["interactions"].group_by("customer_id").agg(pl.col("timestamp").min())
    frame = first.join(data["planted"], on="customer_id")
    cutoff = datetime(2024, 6, 3)
    assert (frame.filter("is_new")["timestamp"] >= cutoff).all()
    assert (frame.filter(~pl.col("is_new"))["timestamp"] < cutoff).all()
    share = frame["is_new"].mean()
    assert share == pytest.approx(SMALL.new_customer_share, abs=0.025)


def test_chunking_covers_customers_once(tmp_path: Path) -> None:
    cfg = replace(SMALL, n_customers=350, chunk_customers=100)  # last chunk is partial
    out = _read(generate(cfg, tmp_path, progress=True))
    ids = out["customers"]["customer_id"]
    assert ids.is_unique().all() and ids.to_list() == [f"C{i:07d}" for i in range(1, 351)]
    assert out["planted"]["customer_id"].equals(ids)
    assert out["interactions"]["customer_id"].n_unique() == 350


def test_no_staples_and_no_growth_still_work(tmp_path: Path) -> None:
    cfg = replace(SMALL, n_customers=200, staples_per_customer=0, growing_clusters=0)
    out = _read(generate(cfg, tmp_path, progress=False))
    assert (out["planted"]["staples"].list.len() == 0).all()
    assert out["interactions"]["customer_id"].n_unique() == 200


def test_ensure_generated_reuses_and_regenerates(tmp_path: Path) -> None:
    cfg = replace(SMALL, n_customers=200)
    paths = ensure_generated(cfg, tmp_path, progress=False)
    stamp = paths.interactions.stat().st_mtime_ns
    assert ensure_generated(cfg, tmp_path, progress=False) == paths
    assert paths.interactions.stat().st_mtime_ns == stamp  # same config: untouched
    changed = replace(cfg, seed=99)
    ensure_generated(changed, tmp_path, progress=False)
    assert paths.interactions.stat().st_mtime_ns != stamp
    fresh = _read(generate(changed, tmp_path / "fresh", progress=False))
    assert pl.read_parquet(paths.interactions).equals(fresh["interactions"])
    paths.planted.unlink()  # a missing table also forces regeneration
    assert ensure_generated(changed, tmp_path, progress=False).planted.exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"n_customers": 0},
        {"n_items": 5, "n_categories": 10},
        {"staple_share": 1.5},
        {"growing_clusters": 9},
        {"new_customers_from": "2025-01-01"},
        {"staples_per_customer": -1},
    ],
)
def test_bad_config_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="SyntheticConfig"):
        SyntheticConfig(**bad)
