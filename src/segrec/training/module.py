"""The Lightning task: the two-tower model, its loss, its optimiser and its randomness.

Validation (Recall@K over the whole catalog, all items or new ones: ``trainer.validation_*``)
is not a Lightning validation loop: it is computed by ``RetrievalValidation`` with the
evaluation stage's own metric code, once per epoch, and logged (``val/new_recall@20`` by
default) for early stopping and checkpointing.
"""

from __future__ import annotations

import math
from dataclasses import replace

import lightning as L
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

from segrec.models.config import ModelConfig
from segrec.models.loss import SampledSoftmax, full_softmax_loss
from segrec.models.two_tower import TwoTower
from segrec.training.copurchase import CopurchaseFactors
from segrec.training.examples import Batch, Examples
from segrec.training.features import FeatureSpace

SPARSE_STATE = "sparse_optimizer_state"  # the checkpoint's key for the ids' lazy Adam


class TwoTowerTask(L.LightningModule):
    """Trains ``model`` on batches of ``Examples``.

    ``target_counts`` (n_items,) feeds the logQ correction of the sampled loss and
    ``lines_per_basket`` its expected number of in-batch candidates; ``examples``, the
    segment biases' support (``model.segment_bias_support``). Every step reseeds
    torch from (seed, global step, rank), so id dropout, dropout and negative sampling of a step
    are the same whether the run was interrupted before it or not.

    ``sparse_ids`` (``trainer.sparse_customer_ids``): the customer id table gets sparse
    gradients and torch's ``SparseAdam``, stepped beside Lightning's optimiser (one
    optimiser to Lightning, so a batch is still one global step) and checkpointed with it.
    """

    def __init__(
        self,
        model: TwoTower,
        target_counts: Tensor,
        lines_per_basket: float = 1.0,
        seed: int = 0,
        examples: Examples | None = None,
        sparse_ids: bool = False,
    ):
        super().__init__()
        self.model, self.cfg, self.seed = model, model.cfg, seed
        self.sparse_ids = sparse_ids and model.customer_tower.use_ids
        self._sparse_optimizer: torch.optim.SparseAdam | None = None
        self._sparse_state: dict | None = None  # a checkpoint's, until the optimiser exists
        if self.cfg.item_bias:
            init_item_bias(model, target_counts)
        if model.n_labels and self.cfg.segment_bias_support is not None:
            if examples is None:
                raise ValueError(
                    "TwoTowerTask: model.segment_bias_support is set, so the training "
                    "examples are needed to count each segment label's targets"
                )
            set_segment_bias_support(model, examples, self.cfg.segment_bias_support)
        self.loss_kind = self.cfg.loss_for(model.sizes.n_items - 1)
        self.sampled = (
            SampledSoftmax(
                target_counts,
                round(self.cfg.batch_size * lines_per_basket),
                self.cfg.n_negatives,
                self.cfg.negative_uniform_share,
            )
            if self.loss_kind == "sampled"
            else None
        )

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Under DDP each rank draws its own dropout and negatives (rank 0: as one process).
        seed = self.seed * 1_000_003 + self.global_step + (self.global_rank << 40)
        if self.device.type == "cpu":
            # Not torch.manual_seed, which also queues a seed for every accelerator
            # backend, with a stack trace each: 0.17 ms a step.
            torch.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)  # every backend's generators, this device's among them

    def loss(self, batch: Batch) -> Tensor:
        """Mean softmax loss of a batch of baskets, some of them with inputs hidden
        (``hidden_inputs``)."""
        customer, history, numeric = self.hidden_inputs(batch)
        u = self.model.customer_vectors(customer, batch["segments"], history, numeric)
        targets, rows, weights = batch["target"], batch["target_row"], batch["weight"]
        known = None if self.cfg.known_negatives else batch["history"]
        if self.sampled is not None:
            return self.sampled(self.model, u, targets, rows, weights, known)
        return full_softmax_loss(self.model, u, targets, rows, weights, known)

    def hidden_inputs(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Customer id, history and numeric features of the baskets, in training with the
        id hidden (0) for ``id_dropout`` of them and, for ``cold_dropout``, all three
        hidden as for a cold customer (no id, empty history, zero counts)."""
        customer, history, numeric = batch["customer"], batch["history"], batch["numeric"]
        if not self.training:
            return customer, history, numeric
        if self.cfg.id_dropout > 0:
            keep = torch.rand(customer.shape, device=customer.device) >= self.cfg.id_dropout
            customer = customer * keep
        if self.cfg.cold_dropout > 0:
            warm = torch.rand(customer.shape, device=customer.device) >= self.cfg.cold_dropout
            customer = customer * warm
            history = history * warm[:, None]
            numeric = numeric * warm[:, None]
        return customer, history, numeric

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        # Detached: the logged value and its epoch mean need no autograd graph.
        self.log(
            "train/loss",
            loss.detach(),
            prog_bar=True,
            on_step=True,
            on_epoch=True,
            batch_size=int(batch["target"].shape[0]),
        )
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        ids = self.model.customer_tower.ids if self.sparse_ids else None
        if ids is not None:
            ids.sparse = True  # until the fit ends (on_fit_end)
            # Lazy Adam, without weight decay: a customer's row moves when it is trained.
            self._sparse_optimizer = torch.optim.SparseAdam([ids.weight], lr=self.cfg.lr)
            if self._sparse_state is not None:
                self._sparse_optimizer.load_state_dict(self._sparse_state)
        dense = [p for p in self.model.parameters() if ids is None or p is not ids.weight]
        # fused: one kernel per parameter instead of a dozen elementwise passes over every
        # embedding table (the optimiser step was ~40% of a CPU training step).
        return torch.optim.AdamW(
            dense, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The customer ids' step, after the backward as Lightning's own step is."""
        if self._sparse_optimizer is not None:
            self._sparse_optimizer.step()
            self._sparse_optimizer.zero_grad(set_to_none=True)

    def on_fit_end(self) -> None:
        if self.sparse_ids:
            self.model.customer_tower.ids.sparse = False  # the trained model is plain again

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self._sparse_optimizer is not None:
            checkpoint[SPARSE_STATE] = self._sparse_optimizer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get(SPARSE_STATE)
        if state is not None and self._sparse_optimizer is not None:
            self._sparse_optimizer.load_state_dict(state)
        else:  # resumed before the optimisers exist (the usual order): configure_optimizers
            self._sparse_state = state


def init_item_bias(model: TwoTower, target_counts: Tensor) -> None:
    """Start each item's bias at its log share of the training targets (smoothed by one).

    Adam moves a parameter by about ``lr`` per step, so a bias starting at 0 would need
    thousands of steps to span the ten-odd logits between a staple and a rarity; starting
    at log popularity, the towers learn how customers differ from it from the first step.
    """
    counts = target_counts.double() + 1.0
    log_share = (counts / counts.sum()).log()
    log_share[0] = log_share[1:].min()
    with torch.no_grad():
        model.item_bias.weight.copy_((log_share - log_share[1:].mean()).float().unsqueeze(1))


def set_segment_bias_support(model: TwoTower, examples: Examples, pseudo: float) -> None:
    """Scale each (item, label) bias by e / (e + a): e = the label's weighted target lines
    x the item's share of them all, the evidence independence predicts for the pair.

    Why: a rare label (Complete Journey's demographics, known for a third of households)
    has a bias for every item, and its few baskets fit them to noise. Scaled, a pair moves
    as far as its evidence allows: Adam's steps do not grow with the gradient, so a pair
    scaled by s moves s times as far in a run of a few hundred steps. Segment popularity
    shrinks a small segment towards the overall shares in the same spirit.
    """
    line, basket = examples.basket_lines(torch.arange(len(examples)))
    line_weights = examples.weights[line].double()
    basket_weight = torch.zeros(len(examples), dtype=torch.float64).index_add_(
        0, basket, line_weights
    )
    labels = examples.segment_table[examples.snapshot, examples.rows] + model.label_offsets
    per_label = torch.zeros(model.n_labels, dtype=torch.float64)
    for family in range(labels.shape[1]):
        per_label.index_add_(0, labels[:, family], basket_weight)
    per_item = torch.zeros(model.sizes.n_items, dtype=torch.float64)
    per_item.index_add_(0, examples.items[line], line_weights)
    evidence = per_item[:, None] / per_item.sum().clamp_min(1e-12) * per_label[None, :]
    with torch.no_grad():
        model.segment_bias_scale.copy_((evidence / (evidence + pseudo)).float())


def make_model(
    cfg: ModelConfig,
    features: FeatureSpace,
    copurchase: CopurchaseFactors | None = None,
    examples: Examples | None = None,
) -> TwoTower:
    """A fresh ``TwoTower`` sized for ``features``, its item attribute table filled in, and
    its co-purchase prior's tables when given (scaled to fit ``examples``' targets)."""
    sizes = features.sizes()
    if copurchase is not None:
        sizes = replace(sizes, copurchase_items=copurchase.n_items)
    model = TwoTower(cfg, sizes, torch.from_numpy(features.item_attributes))
    if copurchase is not None:
        rows, history, items = (
            torch.from_numpy(a) for a in (copurchase.rows, copurchase.history, copurchase.items)
        )
        model.set_copurchase(rows, history, items, 1.0)
        if examples is not None:  # the calibration reads the tables through the model
            model.set_copurchase_scale(calibrate_copurchase(model, examples))
    return model


def calibrate_copurchase(model: TwoTower, examples: Examples, n_baskets: int = 1024) -> float:
    """The scale a of the co-purchase prior under which softmax(a · prior) over the
    modelled items best predicts the training targets (maximum likelihood on up to
    ``n_baskets`` baskets spread over the training period).

    Why: the scale is learned, but Adam moves its log by about ``lr`` a step, and one
    epoch is a few hundred steps: starting from an arbitrary value, the prior would be
    mis-weighted for most of the run. The likelihood is concave in a, so a bounded
    one-dimensional search finds its maximum; to 0.1% of a, in single precision, on a
    thousand baskets (several thousand targets), as a starting point needs (Ta-Feng, under
    load: 1.2 s, where 4,096 baskets in double precision took 16).
    """
    index = torch.linspace(0, len(examples) - 1, min(n_baskets, len(examples))).long().unique()
    batch = examples.batch(index)
    with torch.no_grad():
        scores = model.copurchase_sums(batch["history"]) @ model.copurchase_items[1:].T
        column = model.copurchase_rows[batch["target"]] - 1
        known = column >= 0
        rows, column = batch["target_row"][known], column[known]
        if not len(rows) or not scores.abs().max() > 0:
            return 1.0 / model.cfg.temperature

        def loss(log_a: float) -> float:
            logits = scores * math.exp(log_a)
            return float((logits.logsumexp(dim=1)[rows] - logits[rows, column]).mean())

        best = minimize_scalar(loss, bounds=(-5.0, 12.0), method="bounded", options={"xatol": 1e-3})
    return float(math.exp(best.x))
