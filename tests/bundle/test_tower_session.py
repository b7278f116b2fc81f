"""The ONNX tower session refuses wrong inputs with expected vs given, never a 500."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segrec.bundle import TowerInputError, TowerSession, read_bundle


@pytest.fixture(scope="module")
def session(pristine: Path) -> TowerSession:
    return read_bundle(pristine).tower(threads=1)


def _feeds(session: TowerSession) -> dict[str, np.ndarray]:
    return session.unknown_feeds(batch=3)


def test_unknown_feeds_give_the_all_unknown_vector(pristine: Path, session: TowerSession) -> None:
    out = session(_feeds(session))
    np.testing.assert_allclose(
        out, np.repeat(read_bundle(pristine).customer_vectors[:1], 3, 0), atol=1e-5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("numeric"), r"expected \['customer', 'segments'"),
        (lambda f: f.update(numeric=np.zeros((3, 2), np.float32)), "expected float32"),
        (lambda f: f.update(customer=np.array([0, 1, 41])), "value 41 at"),
        (lambda f: f.update(segments=np.array([[4, 0]] * 3)), r"high=\[4, 6\]"),
        (lambda f: f.update(segments=np.array([[3, 0]] * 3)), None),  # in range: accepted
        (lambda f: f.update(customer=np.array([0.5, 1, 2])), "expected int64"),
        (lambda f: f.update(recent_items=np.zeros((3, 9), np.int64)), "at most 5"),
        (lambda f: f.update(customer=np.zeros(2, np.int64)), "batch 3, other inputs have 2"),
        (lambda f: f.update(numeric=np.full((3, 3), np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_inputs_are_refused(session: TowerSession, change, message) -> None:  # type: ignore[no-untyped-def]
    feeds = _feeds(session)
    change(feeds)
    if message is None:
        assert session(feeds).shape == (3, 8)
        return
    with pytest.raises(TowerInputError, match=message):
        session(feeds)
