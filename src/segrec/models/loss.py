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

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from segrec.models.towers import NEG
from segrec.models.two_tower import TwoTower


def weighted_mean(losses: Tensor, weights: Tensor | None) -> Tensor:
    """Mean of per-line ``losses`` (T,) weighted by ``weights`` (T,); plain mean if None."""
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


class _NegativesLogSumExp(torch.autograd.Function):
    """Rows of ``logits`` (B, C) less ``column_bias`` (C,) or None, a constant: each row's
    log-sum-exp over its columns other than the ``masked`` (rows, columns) pairs, and the
    values at the ``picked`` pairs.

    Why by hand: in torch ops, the masked fill, the log-sum-exp, the gather of the picked
    logits and their backward passes are a dozen passes over the (B, C) matrix, and they
    cost more than the loss's three matrix products (Ta-Feng, 256 x 3,000: ~10 ms a step
    against ~6). Here the row maxima are subtracted and the exponentials taken in place,
    once, and kept as the softmax weights of the backward, which is one multiplication
    and a sparse add of the picked values' gradients: six passes in all.
    """

    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        column_bias: Tensor | None,
        masked_rows: Tensor,
        masked_columns: Tensor,
        picked_rows: Tensor,
        picked_columns: Tensor,
    ) -> tuple[Tensor, Tensor]:
        z = logits - column_bias if column_bias is not None else logits.clone()
        picked = z[picked_rows, picked_columns]
        # Finite: a row with every column masked gives a log-sum-exp of about NEG, no NaN.
        z[masked_rows, masked_columns] = NEG
        top = z.amax(dim=1, keepdim=True)
        weights = z.sub_(top).exp_()  # (B, C): softmax weights, unnormalised
        total = weights.sum(dim=1, keepdim=True)
        ctx.save_for_backward(weights, total, picked_rows, picked_columns)
        return (top + total.log()).squeeze(1), picked

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, lse_grad: Tensor, picked_grad: Tensor) -> tuple[Tensor | None, ...]:
        weights, total, picked_rows, picked_columns = ctx.saved_tensors
        # Masked columns weigh 0, except in a row masked whole, whose lse_grad is 0.
        grad = weights * (lse_grad[:, None] / total)
        grad.index_put_((picked_rows, picked_columns), picked_grad, accumulate=True)
        return grad, None, None, None, None, None


def basket_softmax_loss(
    logits: Tensor,
    column_bias: Tensor | None,
    positive: tuple[Tensor, Tensor],
    own: Tensor,
    rows: Tensor,
    weights: Tensor | None,
) -> Tensor:
    """Weighted mean of -log p(own item) over lines, where each line's softmax holds its
    own column ``own`` (T,) of ``logits - column_bias`` (B, C) and the columns of its
    basket (``rows`` (T,)) that are not among the ``positive`` (rows, columns) pairs: the
    same objective for the full and the sampled loss."""
    negative_lse, own_logits = _NegativesLogSumExp.apply(
        logits, column_bias, positive[0], positive[1], rows, own
    )
    return weighted_mean(torch.logaddexp(own_logits, negative_lse[rows]) - own_logits, weights)


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
    logits = ((customers * model.logit_scale()) @ items.T).float()  # (B, n_items - 1)
    positive_rows, positive_columns = rows, targets - 1
    if known is not None:
        real = known > 0  # padding (0) is no item
        baskets = torch.arange(known.shape[0], device=known.device)[:, None].expand_as(known)
        positive_rows = torch.cat([positive_rows, baskets[real]])
        positive_columns = torch.cat([positive_columns, known[real] - 1])
    return basket_softmax_loss(
        logits, None, (positive_rows, positive_columns), targets - 1, rows, weights
    )


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
        logits = ((customers * model.logit_scale()) @ vectors.T).float()  # (B, C)
        # A candidate is not a negative of basket b if its item is one of b's lines.
        positive_rows, positive_columns = rows, own_column
        if known is not None:
            # Each history item's column among the candidates (sorted by torch.unique),
            # where it is one: a search per history item, where matching (basket,
            # candidate) keys against (basket, item) keys sorted all B x C of them (half
            # of a step at L = 100). Padding (0) never matches: item 0 is never a target
            # nor drawn as a negative.
            at = torch.searchsorted(candidates, known).clamp_max(candidates.shape[0] - 1)
            found = candidates[at] == known
            baskets = torch.arange(known.shape[0], device=known.device)[:, None].expand_as(known)
            positive_rows = torch.cat([positive_rows, baskets[found]])
            positive_columns = torch.cat([positive_columns, at[found]])
        return basket_softmax_loss(
            logits,
            self.log_included[candidates],
            (positive_rows, positive_columns),
            own_column,
            rows,
            weights,
        )
