"""The two-tower model behind the scoring contract (``segrec.recommender``).

``TwoTowerRecommender`` scores with a trained model: ``fit(history)`` does not train, it
binds the history whose purchases and segment labels feed the customer tower (the
evaluation calls it with the test period's history). ``TrainableTwoTower`` is the same
contract for model registries that expect ``fit`` to train (``bench/quality.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from segrec.models.two_tower import TwoTower
from segrec.recommender import NEVER, History, exclude, top_k
from segrec.training.examples import Batch, customer_inputs
from segrec.training.features import FeatureSpace
from segrec.training.sequences import PurchaseSequences

try:  # Python 3.11+
    from typing import Self
except ImportError:  # pragma: no cover - Python 3.10
    from typing_extensions import Self


def prior_head_first(
    scores: np.ndarray, prior: np.ndarray, purchased: sp.csr_matrix, head: int
) -> np.ndarray:
    """``scores`` (n, m) rewritten so that each row ranks first among the items new to the
    customer (not in ``purchased``), best first, the ``head`` of them with the highest
    ``prior``; every other item keeps its score. In place, returned.

    The head items take the next float32 values above the best score of a new item, so
    the result is still a finite score matrix that any top-k (the evaluation's, batch
    scoring's) ranks as the rule says, and an all-items ranking is the new-items ranking
    with the bought items placed by their own scores: a bought item above every new item
    stays above the head. (Lifted one apart instead, the head went over bought items
    scoring up to m above the best new one: Ta-Feng's all-items N@20 at head 5 was 0.0792
    that way, 0.0824 this way.) Ties of ``prior`` go to the smaller index, as in
    ``top_k``.
    """
    head = min(head, scores.shape[1])
    candidates = exclude(prior, purchased)  # in place: prior is the caller's scratch
    candidates[:, 0] = NEVER
    items, values = top_k(candidates, head)
    new = np.isfinite(candidates)  # a boolean mask: a quarter of a score matrix
    best_new = scores.max(axis=1, keepdims=True, where=new, initial=NEVER)
    lifted = just_above(best_new, head)
    rows = np.broadcast_to(np.arange(scores.shape[0])[:, None], items.shape)
    keep = np.isfinite(values)  # fewer new items than the head: those slots stay empty
    scores[rows[keep], items[keep]] = np.broadcast_to(lifted, items.shape)[keep]
    return scores


def just_above(values: np.ndarray, n: int) -> np.ndarray:
    """(rows, 1) float32 → (rows, n): the ``n`` float32 numbers next above each value,
    the largest first (all distinct, which ``value + k * spacing`` is not across a power
    of two)."""
    out = np.empty((values.shape[0], n), np.float32)
    current = values.astype(np.float32, copy=False)
    for j in range(n - 1, -1, -1):
        current = np.nextafter(current, np.float32(np.inf))
        out[:, j : j + 1] = current
    return out


class Setting(NamedTuple):
    """One way to rank with a trained model: the cosine's weight in the score and the
    length of the prior's head (``TwoTower.set_tower_weight``, ``set_prior_head``)."""

    tower_weight: float
    prior_head: int


class TwoTowerRecommender:
    """Scores customers as of ``history.as_of``: u(customer) · v(item) for every item.

    Cold customers (no purchase in the history, id unknown to the model) are scored
    natively from their segment labels, plus any recent purchases.
    """

    cold_start = "native"

    def __init__(
        self,
        model: TwoTower,
        features: FeatureSpace,
        name: str = "two_tower",
        remember_inputs_mb: float = 0.0,
    ):
        """``remember_inputs_mb``: keep each group of customers' tower inputs once built,
        up to this many MB in all, for a caller that scores the same customers again and
        again with new weights (training's validation: every epoch, and every setting
        chosen on it); 0: none kept."""
        self.model, self.features, self.name = model, features, name
        self._history: History | None = None
        self._remember_bytes = remember_inputs_mb * 2**20
        self._remembered: dict[tuple[str, ...], Batch] = {}
        self._remembered_bytes = 0

    def fit(self, history: History, sequences: PurchaseSequences | None = None) -> Self:
        """Bind ``history`` (no training); ``sequences`` may pass its prebuilt lines."""
        self._history = history
        self._sequences = sequences or PurchaseSequences.build(
            history.interactions, self.features.item_map
        )
        self._remembered, self._remembered_bytes = {}, 0  # inputs as of another history
        self.refresh()
        return self

    def refresh(self) -> None:
        """Recompute the item vectors (after the weights changed, e.g. during training)."""
        history = self.history
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            vectors = self.model.item_vectors().float().cpu().numpy()
            self.model.train(was_training)
        # Score columns follow the history's catalog; items the model never saw get the
        # unknown item's vector (a finite, low score).
        columns = self.features.item_map.encode(history.item_map.ids)
        self._item_vectors = np.ascontiguousarray(vectors[np.concatenate([[0], columns])].T)
        # The whole ranking's columns past the cosine's: all but those scoring the prior's
        # head only.
        d = self.model.cosine_dim
        self._rest_columns = np.setdiff1d(
            np.arange(d, vectors.shape[1]), self.model.head_only_columns
        )
        self._rest_vectors = np.ascontiguousarray(self._item_vectors[self._rest_columns])

    @property
    def history(self) -> History:
        if self._history is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        return self._history

    def inputs(self, customer_ids: pl.Series) -> Batch:
        """Customer tower inputs of ``customer_ids`` as of the history's cutoff.

        They depend on the history alone, not on the weights, and building them is a
        twelfth of a validation pass with ``experiment=new_items`` (Ta-Feng: 0.5 of 6 s, the
        100-item distinct histories), so ``remember_inputs_mb`` keeps them.
        """
        ids, h = customer_ids.cast(pl.Utf8), self.history
        key = tuple(ids.to_list()) if self._remember_bytes else None
        if key is not None and key in self._remembered:
            return self._remembered[key]
        batch = customer_inputs(self.features, self._sequences, ids, h.as_of, h.segments)
        if key is not None:
            size = sum(t.element_size() * t.nelement() for t in batch.values())
            if self._remembered_bytes + size <= self._remember_bytes:
                self._remembered[key] = batch
                self._remembered_bytes += size
        return batch

    @property
    def setting(self) -> Setting:
        """The model's own setting, the one ``score`` ranks by."""
        model = self.model
        weight = float(model.tower_weight) if model.cfg.tower_weights is not None else 1.0
        return Setting(weight, model.head_length)

    def customer_vectors(self, customer_ids: pl.Series, weighted: bool = True) -> np.ndarray:
        """(n, d) float32 customer vectors (``weighted``: see ``TwoTower.customer_vectors``)."""
        batch = self.inputs(customer_ids)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            u = self.model.customer_vectors(
                *(batch[k].to(device) for k in ("customer", "segments", "history", "numeric")),
                weighted=weighted,
            )
            self.model.train(was_training)
        return u.float().cpu().numpy()

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        return next(self.score_settings(customer_ids, [self.setting]))

    def score_settings(
        self, customer_ids: pl.Series, settings: Sequence[Setting]
    ) -> Iterator[np.ndarray]:
        """The scores of ``customer_ids`` under each setting in turn, as ``score`` gives
        them with the model set so, from one pass of the customer tower and one product
        per part of the vectors for all of them.

        Why: training's validation chooses the tower weight and then the head among
        several (``experiment=new_items``: four and five), and the tower and the products
        are half of a validation pass. A weight scales the cosine's product: exactly as
        it would scale the vectors when it is a power of two (0.25, 0.5, 1), within
        rounding otherwise. Each matrix yielded is the caller's, to change at will. Up to
        four chunk-sized matrices are alive at a time: the cosine's product, the rest's,
        the prior's (with a head and head-only columns) and the setting's own.
        """
        if not settings:
            return
        u = self.customer_vectors(customer_ids, weighted=False)
        v, d = self._item_vectors, self.model.cosine_dim
        cosine = u[:, :d] @ v[:d]
        rest = u[:, self._rest_columns] @ self._rest_vectors if self._rest_columns.size else None
        prior = purchased = None
        # Without head-only columns the prior is the rest of the whole score: one product.
        shared = rest is not None and not self.model.head_only_columns
        if any(s.prior_head for s in settings):
            prior = rest if shared else u[:, d:] @ v[d:]
            purchased = self.history.purchased(customer_ids)
        for i, (weight, head) in enumerate(settings):
            last = i == len(settings) - 1  # the last may take the shared products over
            scores = cosine if last else cosine.copy()
            if weight != 1.0:
                scores *= np.float32(weight)
            if rest is not None:
                scores += rest
            scores[:, 0] = NEVER
            if head:
                assert prior is not None and purchased is not None
                # prior_head_first excludes the bought items from the prior it is given,
                # in place: the same for every setting, so one prior serves them all,
                # unless it is also the rest, which later settings still add whole.
                own = prior.copy() if shared and not last else prior
                scores = prior_head_first(scores, own, purchased, head)
            yield scores

    def save(self, directory: Path) -> None:
        """Weights + hyper-parameters (``model/``) and vocabularies (``features/``)."""
        self.model.save(directory / "model")
        self.features.save(directory / "features")

    @classmethod
    def load(cls, directory: Path, name: str = "two_tower") -> TwoTowerRecommender:
        return cls(
            TwoTower.load(directory / "model"), FeatureSpace.load(directory / "features"), name
        )
