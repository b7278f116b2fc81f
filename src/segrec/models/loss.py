"""Training losses: full softmax over the catalog, or sampled softmax with logQ correction.

Both take baskets: customer vectors ``u`` (B, d), one per basket, and the T purchase lines
of those baskets as ``targets`` (T,) item indices with ``rows`` (T,) their basket's row
in ``u`` and ``weights`` (T,) how much each line counts. The loss is the weighted mean over
lines of -log p(item | customer), so a basket of seven lines weighs seven times one line,
exactly as one example per line would.

Full softmax is exact, but its cost is one (B, d) × (d, n_items) product per step *and*
a dense (B, n_items) gradient: per epoch it grows with baskets × catalog, whatever the
batch size. Sampled softmax scores each basket against the distinct items of the batch's
own targets (in-batch negatives, drawn ∝ item frequency) plus a shared set of extra
negatives drawn from a mix of frequency^0.75 and uniform, so its cost grows with the
batch's distinct items instead (Ta-Feng, 1024 baskets: ~6k of 24k items). Candidates are
deduplicated, so an item is one column however often it was drawn, and its logit is
corrected by the log of the probability that it is in the sample (Yi et al. 2019; with
distinct candidates the inclusion probability, 1 - exp(-expected count), as TensorFlow's
unique samplers use): the model then learns p(item | customer), not p / popularity. The
uniform share matters: an item nobody bought in training would otherwise never be a
negative and could keep an arbitrary, high score. The items of a line's own basket are
correct answers too, so they are left out of its negatives (in both losses); with
``known`` ((B, L) item indices, 0 = padding: the baskets' histories,
``model.known_negatives=false``) so are the items each customer had bought before.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segrec.models.two_tower import TwoTower

NEG = -1e9


def weighted_mean(losses: Tensor, weights: Tensor | None) -> Tensor:
    """Mean of per-line ``losses`` (T,) weighted by ``weights`` (T,); plain mean if None."""
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


def basket_softmax_loss(
    logits: Tensor, positive: Tensor, own: Tensor, rows: Tensor, weights: Tensor | None
) -> Tensor:
    """Weighted mean of -log p(own item) over lines, where each line's softmax holds its
    own item and the columns that are not ``positive`` (B, C) for its basket (``rows``):
    the same objective for the full and the sampled loss."""
    negative_lse = torch.logsumexp(logits.masked_fill(positive, NEG), dim=1)  # (B,)
    return weighted_mean(torch.logaddexp(own, negative_lse[rows]) - own, weights)


def full_softmax_loss(
    model: TwoTower,
    customers: Tensor,
    targets: Tensor,
    rows: Tensor,
    weights: Tensor | None = None,
    known: Tensor | None = None,
) -> Tensor:
    """Weighted mean cross-entropy of ``targets`` over every real item (the unknown item 0
    is left out of the softmax), the basket's other lines (and ``known``) no negatives."""
    items = model.item_vectors()[1:]  # (n_items - 1, d)
    logits = (customers * model.logit_scale()) @ items.T  # (B, n_items - 1)
    logits = logits.float()
    positive = torch.zeros(
        logits.shape[0], logits.shape[1] + 1, dtype=torch.bool, device=logits.device
    )
    if known is not None:
        positive.scatter_(1, known, True)  # padding (0) lands in column 0, dropped below
    positive[rows, targets] = True
    positive = positive[:, 1:]
    own = logits[rows, targets - 1]  # (T,)
    return basket_softmax_loss(logits, positive, own, rows, weights)


class SampledSoftmax(nn.Module):
    """Sampled softmax with in-batch + shared negatives and logQ correction.

    ``frequency`` (n_items,) counts each item as a training target; ``lines_per_batch`` is
    the nominal number of in-batch candidates T used for the inclusion probabilities.
    """

    negative_p: Tensor
    log_included: Tensor

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
        included = -torch.expm1(-expected)  # P(item among the distinct candidates)
        self.n_negatives = n_negatives
        self.register_buffer("negative_p", q.float(), persistent=False)
        self.register_buffer(
            "log_included", included.clamp_min(1e-12).log().float(), persistent=False
        )

    def forward(
        self,
        model: TwoTower,
        customers: Tensor,
        targets: Tensor,
        rows: Tensor,
        weights: Tensor | None = None,
        known: Tensor | None = None,
    ) -> Tensor:
        negatives = torch.multinomial(self.negative_p, self.n_negatives, replacement=True)
        candidates, column = torch.unique(torch.cat([targets, negatives]), return_inverse=True)
        own_column = column[: targets.shape[0]]  # (T,): each line's item among candidates
        vectors = model.item_vectors(candidates)  # (C, d), C distinct items
        logits = (customers * model.logit_scale()) @ vectors.T  # (B, C)
        logits = logits.float() - self.log_included[candidates]
        # A candidate is not a negative of basket b if its item is one of b's lines.
        positive = torch.zeros_like(logits, dtype=torch.bool)
        positive[rows, own_column] = True
        if known is not None:
            # Each history item's column among the candidates (sorted by torch.unique),
            # where it is one: a search per history item, where matching (basket,
            # candidate) keys against (basket, item) keys sorted all B x C of them (half
            # of a step at L = 100). Padding (0) never matches: item 0 is never a target
            # nor drawn as a negative.
            at = torch.searchsorted(candidates, known).clamp_max(candidates.shape[0] - 1)
            found = candidates[at] == known
            baskets = torch.arange(known.shape[0], device=known.device)[:, None].expand_as(known)
            positive[baskets[found], at[found]] = True
        return basket_softmax_loss(logits, positive, logits[rows, own_column], rows, weights)
