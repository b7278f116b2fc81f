"""The retrieval model: two towers and their dot product, with save/load.

Training (the loss) lives in ``segrec.models.loss`` and the Lightning task; retrieval
(top-k over the item vectors) in the recommender adapter and, for serving, the FAISS index
of ``segrec.export``. Only the towers are exported.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segrec.models.config import ModelConfig
from segrec.models.towers import CustomerTower, ItemTower, Lookup, TowerSizes

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

    With ``cfg.copurchase_rank`` k the score also adds the co-purchase prior
    (``segrec.training.copurchase``): a · Σ_{i in history} h_i · w_j, from two fixed item
    tables h, w (rank-k EASE) and a learned scale a. It is carried the same way: u' gains
    the k-dim Σ h_i, v' gains a · w_j / logit_scale. Why fixed: fine-tuned on
    next-purchase targets, the tables drift to what the towers learn alone, which is worse
    on new items; kept, they leave the towers to learn what co-purchase does not say.

    With ``cfg.tower_weights`` the cosine u · v is multiplied by a weight (a buffer, saved
    with the model) that training chooses on the validation period. Why: trained on the
    training period, the cosine can over-rule the biases and the prior on new items
    (Ta-Feng: new N@20 0.0535 with it, 0.0640 without).

    With ``cfg.ranking_bias_families`` the biases of the other segment families score only
    the prior's head: a scorer drops their columns (``head_only_columns``) from the
    whole ranking's product and keeps them in the head's.

    With ``cfg.prior_heads`` the model also keeps a head length m (a buffer, chosen on
    validation like the weight): the scoring adapter puts the m best new items by the
    score without the cosine (the first ``cfg.dim`` columns, ``cosine_dim``) first. A
    ranking rule, not a vector: one inner product cannot express it, so a consumer of the
    vectors applies it with a second search over the other columns.
    """

    # Buffers (registered in __init__ when their option is on).
    label_offsets: Tensor
    label_onehot: Tensor
    segment_bias_scale: Tensor
    tower_weight: Tensor
    prior_head: Tensor
    copurchase_rows: Tensor
    copurchase_history: Tensor
    copurchase_items: Tensor

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
            self.item_bias = Lookup(sizes.n_items, 1)
            nn.init.zeros_(self.item_bias.weight)
        biased = cfg.segment_bias and self.customer_tower.use_segments
        self.n_labels = sum(sizes.segment_sizes) if biased else 0
        if self.n_labels:
            # Label l of family f is column offsets[f] + l of the one-hot (one Gather per
            # family in ONNX, no OneHot op).
            offsets = torch.tensor([0, *sizes.segment_sizes[:-1]]).cumsum(0)
            self.register_buffer("label_offsets", offsets, persistent=False)
            self.register_buffer("label_onehot", torch.eye(self.n_labels), persistent=False)
            self.segment_bias = Lookup(sizes.n_items, self.n_labels)
            nn.init.zeros_(self.segment_bias.weight)
            if cfg.segment_bias_support is not None:
                shape = (sizes.n_items, self.n_labels)
                self.register_buffer("segment_bias_scale", torch.ones(shape))
        self.head_only_columns = self._head_only_columns()
        if cfg.tower_weights is not None:
            # Persistent: the weight chosen on validation is part of the saved model.
            self.register_buffer("tower_weight", torch.ones(()))
        if cfg.prior_heads is not None:
            self.register_buffer("prior_head", torch.zeros((), dtype=torch.long))
        self.copurchase_rank = cfg.copurchase_rank
        if self.copurchase_rank:
            if not sizes.copurchase_items:
                raise ValueError(
                    "TwoTower: model.copurchase_rank > 0 but sizes.copurchase_items is 0 "
                    "(fit the prior with segrec.training.copurchase first)"
                )
            shape = (sizes.copurchase_items + 1, cfg.copurchase_rank)
            self.register_buffer("copurchase_rows", torch.zeros(sizes.n_items, dtype=torch.long))
            self.register_buffer("copurchase_history", torch.zeros(shape))
            self.register_buffer("copurchase_items", torch.zeros(shape))
            self.copurchase_log_scale = nn.Parameter(torch.zeros(()))
        if cfg.prior_heads is not None and self.output_dim == cfg.dim:
            raise ValueError(
                "model.prior_heads ranks by the biases and the co-purchase prior, and this "
                "model has none: item_bias and copurchase_rank are off, and segment_bias "
                "has no labels to read (use_segments false, or no segment families in the "
                f"data: {sizes.segment_families})"
            )

    def _head_only_columns(self) -> list[int]:
        """The vectors' columns of the segment biases outside ``cfg.ranking_bias_families``
        (their product scores the prior's head only), in increasing order."""
        kept, families = self.cfg.ranking_bias_families, self.sizes.segment_families
        if kept is None:
            return []
        unknown = sorted(set(kept) - set(families))
        if unknown:
            raise ValueError(
                f"model.ranking_bias_families: {unknown} not among the model's segment "
                f"families {families}"
            )
        if not self.n_labels:
            return []
        start = self.cfg.dim + int(self.cfg.item_bias)
        columns: list[int] = []
        for family, size in zip(families, self.sizes.segment_sizes, strict=True):
            if family not in kept:
                columns.extend(range(start, start + size))
            start += size
        return columns

    def _finish(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.cfg.normalize else x

    @property
    def output_dim(self) -> int:
        """Size of the vectors both towers return: d, plus the bias columns."""
        return self.cfg.dim + int(self.cfg.item_bias) + self.n_labels + self.copurchase_rank

    def set_copurchase(self, rows: Tensor, history: Tensor, items: Tensor, scale: float) -> None:
        """Fill the co-purchase prior's tables (see ``CopurchaseFactors``) and its scale."""
        with torch.no_grad():
            self.copurchase_rows.copy_(rows)
            self.copurchase_history.copy_(history)
            self.copurchase_items.copy_(items)
        self.set_copurchase_scale(scale)

    def set_copurchase_scale(self, scale: float) -> None:
        """The co-purchase prior's scale a (its starting point; training learns it)."""
        with torch.no_grad():
            self.copurchase_log_scale.fill_(math.log(scale))

    def set_tower_weight(self, weight: float) -> None:
        """Weight of the towers' cosine in the score (``cfg.tower_weights``)."""
        if self.cfg.tower_weights is None:
            raise ValueError("TwoTower.set_tower_weight: model.tower_weights is null")
        self.tower_weight.fill_(weight)

    def set_prior_head(self, length: int) -> None:
        """How many first places go to the prior's best new items (``cfg.prior_heads``)."""
        if self.cfg.prior_heads is None:
            raise ValueError("TwoTower.set_prior_head: model.prior_heads is null")
        self.prior_head.fill_(length)

    @property
    def head_length(self) -> int:
        """The prior's head length m (0 without ``cfg.prior_heads``)."""
        return int(self.prior_head) if self.cfg.prior_heads is not None else 0

    @property
    def cosine_dim(self) -> int:
        """The vectors' first columns, whose product is the (weighted) cosine; the rest
        carry the biases and the co-purchase prior."""
        return self.cfg.dim

    def copurchase_sums(self, history: Tensor) -> Tensor:
        """(B, L) history item indices → (B, k): Σ h_i over the history (padding: row 0,
        zeros)."""
        return self.copurchase_history[self.copurchase_rows[history]].sum(dim=1)

    def customer_vectors(
        self,
        customer: Tensor,
        segments: Tensor,
        history: Tensor,
        numeric: Tensor,
        *,
        weighted: bool = True,
    ) -> Tensor:
        """(B,), (B, F), (B, L), (B, N) → (B, output_dim); see ``CustomerTower``.
        ``weighted=False``: the cosine's columns without the tower weight, for a scorer
        that weighs the cosine itself (several weights from one product)."""
        u = self._finish(self.customer_tower(customer, segments, history, numeric))
        if self.cfg.tower_weights is not None and weighted:
            u = u * self.tower_weight
        if self.cfg.item_bias:
            u = torch.cat([u, torch.ones_like(u[:, :1])], dim=1)
        if self.n_labels:
            onehot = self.label_onehot[segments + self.label_offsets].sum(dim=1)  # (B, n_labels)
            u = torch.cat([u, onehot.to(u.dtype)], dim=1)
        if self.copurchase_rank:
            u = torch.cat([u, self.copurchase_sums(history).to(u.dtype)], dim=1)
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
            bias = self.segment_bias(items)
            if self.cfg.segment_bias_support is not None:
                bias = bias * self.segment_bias_scale[items]
            v = torch.cat([v, bias / self.logit_scale()], dim=1)
        if self.copurchase_rank:
            scale = self.copurchase_log_scale.exp() / self.logit_scale()
            v = torch.cat([v, self.copurchase_items[self.copurchase_rows[items]] * scale], dim=1)
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
