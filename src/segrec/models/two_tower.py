"""The retrieval model: two towers and their dot product, with save/load.

Training (the loss) lives in ``segrec.models.loss`` and the Lightning task; retrieval
(top-k over the item vectors) in the recommender adapter and, later, FAISS. Only the towers
are exported.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segrec.models.config import ModelConfig
from segrec.models.towers import CustomerTower, ItemTower, TowerSizes

WEIGHTS, HPARAMS = "model.pt", "model.json"
FORMAT_VERSION = 1


class TwoTower(nn.Module):
    """Customer tower and item tower sharing one d-dim space; score = u · v (/ temperature).

    With ``cfg.normalize`` both vectors are L2-normalised, so a score is a cosine and the
    temperature sets how peaked the softmax is (Yi et al. 2019); ranking is unaffected by it.

    With ``cfg.item_bias`` every item also has a learned bias b, and the vectors gain one
    column: u' = [u, 1], v' = [v, τ·b], so u' · v' / τ = u · v / τ + b and retrieval stays
    one inner product (the ONNX tower, FAISS and batch scoring see a (d + 1)-dim space).
    Why: a cosine cannot say "bought by everyone" without pulling every customer towards
    the item; the bias carries popularity, and the cosine is left to what differs between
    customers.

    With ``cfg.segment_bias`` every (item, segment label) pair has a bias too, carried the
    same way: u' gains the one-hot of the customer's label in each family, v' the item's
    biases for every label, so the score adds b[i, label] per family. Why: a segment's
    best sellers (a region's stores stock what its customers buy) are a table of items by
    labels of full rank, which a d-dim cosine spreads thin; as biases they are learned as
    directly as segment popularity counts them, for cold customers as for warm ones.
    """

    def __init__(self, cfg: ModelConfig, sizes: TowerSizes, item_attributes: Tensor | None = None):
        super().__init__()
        cfg.check()
        self.cfg, self.sizes = cfg, sizes
        if item_attributes is None:
            shape = (sizes.n_items, len(sizes.attribute_sizes))
            item_attributes = torch.zeros(shape, dtype=torch.long)
        self.item_tower = ItemTower(sizes.n_items, item_attributes, sizes.attribute_sizes, cfg.dim)
        self.customer_tower = CustomerTower(cfg, sizes, self.item_tower)
        if cfg.item_bias:
            self.item_bias = nn.Embedding(sizes.n_items, 1)
            nn.init.zeros_(self.item_bias.weight)
        biased = cfg.segment_bias and self.customer_tower.use_segments
        self.n_labels = sum(sizes.segment_sizes) if biased else 0
        if self.n_labels:
            # Label l of family f is column offsets[f] + l of the one-hot (one Gather per
            # family in ONNX, no OneHot op).
            offsets = torch.tensor([0, *sizes.segment_sizes[:-1]]).cumsum(0)
            self.register_buffer("label_offsets", offsets, persistent=False)
            self.register_buffer("label_onehot", torch.eye(self.n_labels), persistent=False)
            self.segment_bias = nn.Embedding(sizes.n_items, self.n_labels)
            nn.init.zeros_(self.segment_bias.weight)

    def _finish(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.cfg.normalize else x

    @property
    def output_dim(self) -> int:
        """Size of the vectors both towers return: d, plus the bias columns."""
        return self.cfg.dim + int(self.cfg.item_bias) + self.n_labels

    def customer_vectors(
        self, customer: Tensor, segments: Tensor, history: Tensor, numeric: Tensor
    ) -> Tensor:
        """(B,), (B, F), (B, L), (B, N) → (B, output_dim); see ``CustomerTower``."""
        u = self._finish(self.customer_tower(customer, segments, history, numeric))
        if self.cfg.item_bias:
            u = torch.cat([u, torch.ones_like(u[:, :1])], dim=1)
        if self.n_labels:
            onehot = self.label_onehot[segments + self.label_offsets].sum(dim=1)  # (B, n_labels)
            u = torch.cat([u, onehot.to(u.dtype)], dim=1)
        return u

    def item_vectors(self, items: Tensor | None = None) -> Tensor:
        """Vectors of ``items`` ((M,) → (M, output_dim)); all ``n_items`` rows (0 included)
        when None."""
        if items is None:
            items = torch.arange(self.sizes.n_items, device=self.item_tower.ids.weight.device)
        v = self._finish(self.item_tower(items))
        if self.cfg.item_bias:
            v = torch.cat([v, self.item_bias(items) / self.logit_scale()], dim=1)
        if self.n_labels:
            v = torch.cat([v, self.segment_bias(items) / self.logit_scale()], dim=1)
        return v

    def logit_scale(self) -> float:
        """Multiplier of u · v in the loss: 1 / temperature when normalised, else 1."""
        return 1.0 / self.cfg.temperature if self.cfg.normalize else 1.0

    def save(self, directory: Path) -> None:
        """``model.pt`` (state dict) + ``model.json`` (config and sizes): reloadable alone."""
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / WEIGHTS)
        meta = {
            "format_version": FORMAT_VERSION,
            "config": asdict(self.cfg),
            "sizes": self.sizes.to_dict(),
        }
        (directory / HPARAMS).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path, map_location: str = "cpu") -> TwoTower:
        meta = json.loads((directory / HPARAMS).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{directory / HPARAMS}: format version {meta.get('format_version')}, "
                f"this segrec reads {FORMAT_VERSION}"
            )
        model = cls(ModelConfig(**meta["config"]), TowerSizes(**meta["sizes"]))
        state = torch.load(directory / WEIGHTS, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
        return model.eval()
