"""A minimum quality on real data (Ta-Feng, February 2001): the protocol and the cheap
baselines give the known picture, repeat buying first."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from segrec.evaluation import evaluate_candidates, load_candidates, make_periods
from segrec.evaluation.protocol import attribute_segments
from segrec.pipeline import prepare_data
from tests.helpers import compose_config


@pytest.mark.data
@pytest.mark.slow
def test_tafeng_personal_frequency_beats_popularity(real_datasets: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        tmp_path,
        [
            "data=tafeng",
            f"paths.datasets_dir={real_datasets}",
            "evaluation.tune=false",
            "baselines.als.enabled=false",
            "baselines.bpr.enabled=false",
            "baselines.ease.enabled=false",
            "baselines.segment_popularity.enabled=false",
            "baselines.cold_fallback=[]",
        ],
    )
    data, split = prepare_data(cfg.data, tmp_path, Console(quiet=True))
    validation, test = make_periods(data, split, lambda as_of: attribute_segments(data.customers))
    assert len(test.history.item_map) > 20_000 and test.truth.customer_ids.len() > 10_000
    table, *_ = evaluate_candidates(
        load_candidates(cfg, validation.families),
        validation,
        test,
        cfg.evaluation,
        cfg.baselines,
        Console(quiet=True),
    )
    overall = table.filter(
        (pl.col("group") == "overall")
        & (pl.col("items") == "all")
        & (pl.col("metric") == "recall")
        & (pl.col("k") == 20)
    )
    recall = dict(zip(overall["model"], overall["value"], strict=True))
    assert recall["personal_frequency"] > recall["popularity"] > 0.03
