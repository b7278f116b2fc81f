"""The segment job end to end on a small synthetic set: files, report, vocabularies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from segrec.report.job import segment_job
from segrec.segments import SegmentVocabularies
from tests.helpers import SMALL, compose_config


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("segment_job")
    cfg = compose_config(tmp, SMALL)
    summary = segment_job(cfg, Console(quiet=True))
    return summary, Path(cfg.paths.output_dir) / "segments"


def test_writes_assignments_and_vocabularies(job: tuple[dict, Path]) -> None:
    summary, out = job
    families = [f["family"] for f in summary["families"]]
    assert families == ["age", "region", "income_band", "rfm", "rfm_group", "lifecycle", "taste"]
    assigned = pl.read_parquet(out / "segments.parquet")
    assert assigned.columns == ["customer_id", *families]
    assert assigned.height == summary["customers"] == 400
    vocab = SegmentVocabularies.load(out / "vocabularies")
    codes = vocab.encode(assigned)
    assert codes.shape == (400, len(families)) and codes.min() >= 0
    assert summary["as_of"] == "2024-04-15T00:00:00"  # the test cutoff of the SMALL split
    assert json.loads((out / "summary.json").read_text())["customers"] == 400


def test_report_tables_reconcile(job: tuple[dict, Path]) -> None:
    _, out = job
    summary = pl.read_parquet(out / "report" / "segment_summary.parquet")
    per_family = summary.group_by("family").agg(
        pl.col("customers").sum(), pl.col("revenue_share").sum(), pl.col("customer_share").sum()
    )
    assert set(per_family["customers"]) == {400}
    assert per_family["revenue_share"].to_list() == pytest.approx([1.0] * 7)
    assert per_family["customer_share"].to_list() == pytest.approx([1.0] * 7)
    migration = pl.read_parquet(out / "report" / "segment_migration.parquet")
    assert set(migration.group_by("family").agg(pl.col("customers").sum())["customers"]) == {400}
    grid = pl.read_parquet(out / "report" / "segment_rfm_grid.parquet")
    assert set(grid["family"]) == {"rfm", "rfm_group"}


def test_html_has_every_family_and_its_plots(job: tuple[dict, Path]) -> None:
    summary, out = job
    page = (out / "report" / "segments.html").read_text()
    for family in summary["families"]:
        assert f'<h2 id="{family["family"]}">' in page
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)"', page)
    # size vs revenue and growth for each family, migration for the 4 behavioural ones (no
    # customer changes age, region or income), and the grid of each RFM family
    assert len(images) == 2 * 7 + 4 + 2
    assert "age migration" not in images
    assert "rfm_group RFM grid" in images and "taste migration" in images
    assert "http://" not in page and "https://" not in page  # self-contained
    markdown = (out / "report" / "segments.md").read_text()
    assert all(f"## {f['family']} (" in markdown for f in summary["families"])
