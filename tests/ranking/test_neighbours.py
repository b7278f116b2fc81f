"""Item-item neighbours: EASE's weights, truncated per item, as the baseline computes them."""

from __future__ import annotations

import numpy as np
import pytest

from segrec.baselines import EASE
from segrec.ranking.config import NeighboursConfig
from segrec.ranking.neighbours import item_similarity
from tests.ranking.toy import habits


@pytest.mark.parametrize("k", [3, 50])
def test_ease_neighbours_are_each_items_largest_ease_weights(k: int) -> None:
    hist = habits()
    cfg = NeighboursConfig(method="ease", k=k, min_support=2, ease_l2=20.0)
    got = item_similarity(hist, cfg)
    ease = EASE(l2=20.0, min_support=2).fit(hist)
    weights, columns = ease._weights, ease._columns
    scale = weights.max()
    assert got.shape == (hist.n_columns, hist.n_columns) and got.dtype == np.float32
    for i, item in enumerate(columns):
        row = weights[i]
        positive = np.flatnonzero(row > 0)
        keep = positive[np.argsort(-row[positive], kind="stable")[:k]]
        start, stop = got.indptr[item], got.indptr[item + 1]
        assert set(got.indices[start:stop]) == set(columns[keep])
        expected = dict(zip(columns[keep], row[keep] / scale, strict=True))
        for j, v in zip(got.indices[start:stop], got.data[start:stop], strict=True):
            assert v == pytest.approx(expected[j], rel=1e-5)
    assert got.data.max() == pytest.approx(1.0) and (got.data > 0).all()


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ranking\.neighbours\.method: 'svd'"):
        item_similarity(habits(), NeighboursConfig(method="svd"))
