"""From a trained two-tower model (``segrec.training``) to ``BundleContents``.

The exported graph is ``TwoTower.customer_vectors`` (tower + L2 normalisation), the exact
function that training and evaluation score with, wrapped so that its ONNX inputs are only
the inputs the model uses: the exporter drops an input the forward never reads (an ablation
with ``use_numeric: false``), and the manifest must not promise one the graph lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from segrec.bundle.schema import TowerInput
from segrec.data.ids import IdMap
from segrec.export.contents import BundleContents, KnownCustomers, Saveable
from segrec.export.features import customer_summary, purchase_table

if TYPE_CHECKING:
    from segrec.models.two_tower import TwoTower
    from segrec.training.recommender import TwoTowerRecommender

ARGS = ("customer", "segments", "history", "numeric")  # CustomerTower.forward, in order


class CustomerEncoder(nn.Module):
    """``model.customer_vectors`` taking only the inputs the model uses, in ``ARGS`` order."""

    def __init__(self, model: TwoTower) -> None:
        super().__init__()
        self.model = model
        t = model.customer_tower
        used = {
            "customer": t.use_ids,
            "segments": t.use_segments,
            "history": t.use_history,
            "numeric": t.use_numeric,
        }
        self.names = [name for name in ARGS if used[name]]

    def forward(self, *inputs: Tensor) -> Tensor:
        given = dict(zip(self.names, inputs, strict=True))
        unused = inputs[0].new_zeros(0)  # never read: the tower ignores switched-off inputs
        return self.model.customer_vectors(*(given.get(n, unused) for n in ARGS))

    def input_spec(self) -> list[TowerInput]:
        s = self.model.sizes
        spec = {
            "customer": TowerInput("customer", "customer", "int64", ("batch",), (s.n_customers,)),
            "segments": TowerInput(
                "segments",
                "segments",
                "int64",
                ("batch", len(s.segment_sizes)),
                tuple(s.segment_sizes),
            ),
            "history": TowerInput(
                "history", "recent_items", "int64", ("batch", "history"), (s.n_items,)
            ),
            "numeric": TowerInput("numeric", "numeric", "float32", ("batch", s.n_numeric)),
        }
        return [spec[n] for n in self.names]


def two_tower_contents(
    recommender: TwoTowerRecommender,
    *,
    customer_ids: pl.Series | None = None,
    ranker: Saveable | None = None,
    top_items: pl.DataFrame | None = None,
    training_config: Any = None,
    metrics: Mapping[str, Any] | None = None,
    chunk: int = 100_000,
) -> BundleContents:
    """Contents of a bundle for ``recommender`` after ``fit(history)``.

    The known customers are ``customer_ids`` (default: everyone in the history's
    interactions, customers table and segment labels), with their tower inputs as of
    ``history.as_of`` (the precomputed vectors are frozen at that date). The catalog and
    the segment vocabularies are the model's own (``FeatureSpace``).
    """
    history = recommender.history
    if customer_ids is None:
        customer_ids = _everyone(history.interactions, history.customers, history.segments)
    ids = IdMap.from_values(customer_ids)
    encoder = CustomerEncoder(recommender.model)
    inputs = _inputs(recommender, ids.ids, encoder.names, chunk)
    model = recommender.model
    with torch.no_grad():
        was_training = model.training
        model.eval()
        item_vectors = model.item_vectors().float().cpu().numpy()
        model.train(was_training)
    return BundleContents(
        tower=encoder,
        tower_inputs=encoder.input_spec(),
        item_map=recommender.features.item_map,
        item_vectors=item_vectors,
        customers=KnownCustomers(
            ids=ids,
            inputs=inputs,
            features=customer_summary(history, ids.ids),
            purchases=purchase_table(history),
        ),
        item_attributes=history.items,
        ranker=ranker,
        segment_vocabularies=recommender.features.segments,
        top_items=top_items,
        training_config=training_config or {},
        metrics=metrics or {},
        prior_head=model.head_length,
        cosine_dim=model.cosine_dim,
        head_only_columns=model.head_only_columns,
    )


def _everyone(*frames: pl.DataFrame | None) -> pl.Series:
    columns = [f["customer_id"].cast(pl.Utf8) for f in frames if f is not None]
    return pl.concat(columns).unique() if columns else pl.Series("customer_id", [], pl.Utf8)


def _inputs(
    recommender: TwoTowerRecommender, ids: pl.Series, names: list[str], chunk: int
) -> dict[str, np.ndarray]:
    """The tower inputs of ``ids`` as the model computes them, chunk by chunk (memory)."""
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, max(ids.len(), 1), chunk):
        batch = recommender.inputs(ids.slice(start, chunk))
        for n in names:
            parts[n].append(batch[n].cpu().numpy())
    return {n: np.concatenate(p) for n, p in parts.items()}
