"""The presets read the real datasets with the counts their README gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from segrec.pipeline import prepare_data
from tests.helpers import compose_config

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_tafeng(real_datasets: Path, tmp_path: Path) -> None:
    cfg = compose_config(tmp_path, ["data=tafeng", f"paths.datasets_dir={real_datasets}"])
    data, split = prepare_data(cfg.data, tmp_path, console=None)
    assert data.interactions.height == 817_741
    assert data.customers.height == data.interactions["customer_id"].n_unique() == 32_266
    assert data.items.height == 23_812
    assert data.interactions["customer_id"].str.starts_with("0").any()  # leading zeros kept
    assert set(data.customers.columns) == {"customer_id", "age_group", "region"}
    assert split.test["timestamp"].min() >= split.test_start
    assert split.test_start.isoformat()[:10] == "2001-02-01"


def test_complete_journey(real_datasets: Path, tmp_path: Path) -> None:
    cfg = compose_config(tmp_path, ["data=completejourney", f"paths.datasets_dir={real_datasets}"])
    data, split = prepare_data(cfg.data, tmp_path, console=None)
    report = data.tables[0]
    assert report.rows_read == 1_469_307
    # Transactions naming products absent from products.parquet are quarantined, not lost.
    assert report.rejected == {"item_id not in the items table": 4_836}
    rejects = pl.read_csv(report.rejects_file, infer_schema=False)
    assert rejects.height == 4_836
    assert data.interactions.height == 1_469_307 - 4_836
    assert data.interactions["customer_id"].n_unique() == 2_469
    with_demographics = data.customers.filter(pl.col("age").is_not_null()).height
    assert with_demographics == 801
    assert split.validation["timestamp"].min().month == 10
