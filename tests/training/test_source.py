"""The trained model as the ranker's retrieval source: reused where that cannot leak."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from segrec.ranking.state import history_before
from segrec.training.candidates import TwoTowerSource
from segrec.training.loop import TrainingLength, train_two_tower
from segrec.training.recommender import TwoTowerRecommender
from tests.helpers import compose_config
from tests.training.common import SMALL, TINY_MODEL, TINY_TRAINER, periods, small_data


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory):
    work: Path = tmp_path_factory.mktemp("source")
    _, data, split = small_data(work)
    _, test = periods(data, split)
    cfg = compose_config(work, SMALL)
    cfg = replace(cfg, model=TINY_MODEL, trainer=TINY_TRAINER, segments=None)
    run = train_two_tower(TINY_MODEL, TINY_TRAINER, test.history, None, None, seed=3)
    trained = TwoTowerRecommender(run.model, run.features)
    early_before = split.test_start - timedelta(days=30)
    return (
        cfg,
        test.history,
        trained,
        TwoTowerSource(trained, TrainingLength(1, 4), split.test_start, early_before, cfg),
    )


def test_a_history_at_the_cutoff_binds_the_trained_weights(setting) -> None:
    _, history, trained, source = setting
    bound = source().fit(history)
    ids = history.customer_map.ids.head(20)
    np.testing.assert_array_equal(bound.score(ids), trained.fit(history).score(ids))


def test_every_window_shares_one_early_model_trained_before_all_windows(
    setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, history, trained, source = setting
    import segrec.training.loop as loop

    trained_on = []

    def spy(*args, **kwargs):
        trained_on.append(args[2].interactions["timestamp"].max())
        return train_two_tower(*args, **kwargs)

    monkeypatch.setattr(loop, "train_two_tower", spy)
    first = history_before(history, source.early_before + timedelta(days=7), history.segments)
    second = history_before(history, source.early_before + timedelta(days=14), history.segments)
    a, b = source().fit(first), source().fit(second)
    assert len(trained_on) == 1 and trained_on[0] < source.early_before
    assert a._fitted.model is b._fitted.model is not trained.model
    with pytest.raises(ValueError, match="no weights trained before"):
        source().fit(history_before(history, source.early_before - timedelta(days=1), None))
