"""A stand-in customer tower with the two-tower model's input signature, and tiny contents.

Tests of the export machinery must not depend on the real model's training code: this
tower takes the same kinds of inputs (customer id (B,), segment labels (B, F), recent items
(B, L) padded with 0 + a mask (B, L), numeric features (B, N)) and returns (B, d).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import Tensor, nn

from segrec.bundle import TowerInput
from segrec.data import IdMap
from segrec.export import BundleContents, KnownCustomers

N_ITEMS, N_CUSTOMERS, SEGMENT_SIZES, HISTORY, N_NUMERIC, DIM = 60, 40, (4, 6), 5, 3, 8


class StandInTower(nn.Module):
    """Embeddings + masked mean pooling + MLP; ``safe=False`` divides by the raw mask sum,
    so an empty history gives NaN (what the parity check must catch)."""

    def __init__(
        self,
        n_customers: int,
        n_items: int,
        segment_sizes: tuple[int, ...],
        n_numeric: int,
        dim: int,
        safe: bool = True,
    ) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ids = nn.Embedding(n_customers, dim)
        self.segments = nn.ModuleList(nn.Embedding(n, dim) for n in segment_sizes)
        self.items = nn.Embedding(n_items, dim)
        self.numeric = nn.Linear(n_numeric, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, dim))
        self.safe = safe

    def forward(
        self, customer: Tensor, segments: Tensor, items: Tensor, mask: Tensor, numeric: Tensor
    ) -> Tensor:
        x = self.ids(customer) + self.numeric(numeric)
        for f, table in enumerate(self.segments):
            x = x + table(segments[:, f])
        weights = mask.to(x.dtype)
        total = weights.sum(1, keepdim=True)
        total = total.clamp_min(1.0) if self.safe else total
        x = x + (self.items(items) * weights.unsqueeze(-1)).sum(1) / total
        return self.mlp(x)


def spec(n_customers: int = N_CUSTOMERS + 1, n_items: int = N_ITEMS + 1) -> list[TowerInput]:
    return [
        TowerInput("customer", "customer", "int64", ("batch",), (n_customers,)),
        TowerInput("segments", "segments", "int64", ("batch", len(SEGMENT_SIZES)), SEGMENT_SIZES),
        TowerInput("recent_items", "recent_items", "int64", ("batch", "history"), (n_items,)),
        TowerInput("recent_mask", "recent_mask", "bool", ("batch", "history")),
        TowerInput("numeric", "numeric", "float32", ("batch", N_NUMERIC)),
    ]


def make_contents(
    seed: int = 0, safe: bool = True, n_items: int = N_ITEMS, n_customers: int = N_CUSTOMERS
) -> BundleContents:
    """Small but complete contents: every optional part present."""
    rng = np.random.default_rng(seed)
    tower = StandInTower(n_customers + 1, n_items + 1, SEGMENT_SIZES, N_NUMERIC, DIM, safe)
    item_map = IdMap(pl.Series([f"i{j:04d}" for j in range(n_items)]))
    customer_map = IdMap(pl.Series([f"c{j:04d}" for j in range(n_customers)]))
    lengths = rng.integers(0, HISTORY + 1, n_customers)
    lengths[:3] = 0  # some known customers have no history at all
    mask = np.arange(HISTORY)[None, :] < lengths[:, None]
    items = np.where(mask, rng.integers(1, n_items + 1, (n_customers, HISTORY)), 0)
    inputs = {
        "customer": np.arange(1, n_customers + 1),
        "segments": np.stack([rng.integers(0, n, n_customers) for n in SEGMENT_SIZES], 1),
        "recent_items": items,
        "recent_mask": mask,
        "numeric": rng.standard_normal((n_customers, N_NUMERIC)).astype(np.float32),
    }
    vectors = rng.standard_normal((n_items + 1, DIM)).astype(np.float32)
    vectors[0] = 0.0
    ids = customer_map.ids
    return BundleContents(
        tower=tower,
        tower_inputs=spec(n_customers + 1, n_items + 1),
        item_map=item_map,
        item_vectors=vectors,
        customers=KnownCustomers(
            ids=customer_map,
            inputs=inputs,
            features=pl.DataFrame(
                {"customer_id": ids, "age_band": ["25-34"] * len(ids), "n_purchases": lengths}
            ),
            purchases=pl.DataFrame(
                {
                    "customer_id": ids,
                    "item_id": ["i0001"] * len(ids),
                    "count": np.ones(len(ids), np.int32),
                }
            ),
        ),
        item_attributes=pl.DataFrame(
            {"item_id": item_map.ids, "category": ["a", "b"] * (n_items // 2)}
        ),
        top_items=pl.DataFrame(
            {"family": ["age_band"], "label": ["25-34"], "rank": [1], "item_id": ["i0001"]}
        ),
        training_config={"model": {"dim": DIM}},
        metrics={"recall@20": 0.5},
    )
