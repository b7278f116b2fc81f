"""Training losses: full softmax over the catalog, or sampled softmax with logQ correction.

Both take baskets: customer vectors ``u`` (B, d), one per basket, and the T purchase lines
of those baskets as ``targets`` (T,) item indices with ``rows`` (T,) their basket's row
in ``u``. The loss is the mean over lines of -log p(item | customer), so a basket of
seven lines weighs seven times one line, exactly as one example per line would.

Full softmax is exact and, for catalogs up to some tens of thousands of items, cheap: one
(B, d) × (d, n_items) product per step. Beyond that, sampled softmax scores each basket
against the batch's own targets (in-batch negatives, drawn ∝ item frequency) plus a shared
set of extra negatives drawn from a mix of frequency^0.75 and uniform; every candidate's
logit is corrected by the log of its expected count in the sample (Yi et al. 2019), so the
model learns p(item | customer) rather than p(item | customer) / popularity. The uniform
share matters: an item nobody bought in training would otherwise never be a negative and
could keep an arbitrary, high score. The other items of the same basket are correct
answers too, so they are left out of a line's negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segrec.models.two_tower import TwoTower

NEG = -1e9


def full_softmax_loss(model: TwoTower, customers: Tensor, targets: Tensor, rows: Tensor) -> Tensor:
    """Mean cross-entropy of ``targets`` over every real item (the unknown item 0 is left
    out of the softmax)."""
    items = model.item_vectors()[1:]  # (n_items - 1, d)
    logits = (customers * model.logit_scale()) @ items.T  # (B, n_items - 1)
    log_p = torch.log_softmax(logits.float(), dim=1)
    return -log_p[rows, targets - 1].mean()


class SampledSoftmax(nn.Module):
    """Sampled softmax with in-batch + shared negatives and logQ correction.

    ``frequency`` (n_items,) counts each item as a training target; ``lines_per_batch`` is
    the nominal number of in-batch candidates T used for the expected counts.
    """

    def __init__(
        self,
        frequency: Tensor,
        lines_per_batch: int,
        n_negatives: int,
        uniform_share: float = 0.5,
    ):
        super().__init__()
        freq = frequency.double().clone()
        freq[0] = 0.0
        p_target = freq / freq.sum().clamp_min(1.0)
        smooth = freq.pow(0.75)
        smooth = smooth / smooth.sum().clamp_min(1e-12)
        uniform = torch.ones_like(freq)
        uniform[0] = 0.0
        uniform = uniform / uniform.sum()
        q = (1.0 - uniform_share) * smooth + uniform_share * uniform
        expected = lines_per_batch * p_target + n_negatives * q
        self.n_negatives = n_negatives
        self.register_buffer("negative_p", q.float(), persistent=False)
        self.register_buffer(
            "log_expected", expected.clamp_min(1e-12).log().float(), persistent=False
        )

    def forward(self, model: TwoTower, customers: Tensor, targets: Tensor, rows: Tensor) -> Tensor:
        negatives = torch.multinomial(self.negative_p, self.n_negatives, replacement=True)
        candidates = torch.cat([targets, negatives])  # (C,) = (T + M,)
        vectors = model.item_vectors(candidates)
        logits = (customers * model.logit_scale()) @ vectors.T  # (B, C)
        logits = logits.float() - self.log_expected[candidates]
        n_items = self.negative_p.shape[0]
        # A candidate is not a negative of basket b if its item is one of b's lines.
        basket_keys = rows * n_items + targets  # (T,)
        b = customers.shape[0]
        pair_keys = torch.arange(b, device=rows.device).unsqueeze(1) * n_items + candidates
        positive = torch.isin(pair_keys, basket_keys)  # (B, C)
        negative_lse = torch.logsumexp(logits.masked_fill(positive, NEG), dim=1)  # (B,)
        own = logits[rows, torch.arange(targets.shape[0], device=rows.device)]  # (T,)
        return (torch.logaddexp(own, negative_lse[rows]) - own).mean()
