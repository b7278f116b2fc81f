"""A small history with planted habits, for fitting a ranker in about a second."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from segrec.ranking.config import RankingConfig
from segrec.recommender import History
from tests.evaluation.toy import history

ITEMS = [f"i{j:02d}" for j in range(30)]


def habits(n_customers: int = 120, days: int = 90, seed: int = 0) -> History:
    """Each customer has 3 staples bought every 5-15 days, plus a few items of their
    taste block (i00-i14 or i15-i29) now and then; labels: ``taste`` A / B; items come in
    categories of five (k0: i00-i04, ...)."""
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    for c in range(n_customers):
        name = f"c{c:03d}"
        block = c % 2
        labels[name] = "AB"[block]
        staples = rng.choice(15, size=3, replace=False) + 15 * block
        for item in staples:
            every = int(rng.integers(5, 16))
            for day in range(int(rng.integers(1, every + 1)), days, every):
                rows.append((name, ITEMS[item], day))
        for _ in range(4):
            rows.append(
                (name, ITEMS[int(rng.integers(15)) + 15 * block], int(rng.integers(1, days)))
            )
    labels["newcomer"] = "B"
    hist = history(rows, ITEMS, {"taste": labels})
    categories = pl.DataFrame({"item_id": ITEMS, "category": [f"k{j // 5}" for j in range(30)]})
    return dataclasses.replace(hist, items=categories)


def small_config() -> RankingConfig:
    """Few candidates, two short windows and a small model: fits in about a second."""
    cfg = RankingConfig()
    cfg.candidates.own = 10
    cfg.candidates.neighbours = 5
    cfg.candidates.segment = 5
    cfg.candidates.popular = 5
    cfg.neighbours.min_support = 1
    cfg.windows.n = 2
    cfg.windows.label_days = 14
    cfg.windows.stride_days = 7
    cfg.windows.max_customers = 80
    cfg.model.max_iter = 20
    cfg.model.min_samples_leaf = 20
    cfg.model.n_threads = 1
    return cfg
