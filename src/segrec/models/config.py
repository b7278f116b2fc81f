"""Hyper-parameters of the two-tower model (``conf/model/*.yaml``).

A plain dataclass with no torch import, so that the top-level config, the bundle manifest
and the serving path can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POOLINGS = ("mean", "attention")
HISTORY_ITEMS = ("lines", "distinct")
LOSSES = ("auto", "full", "sampled")


@dataclass
class ModelConfig:
    """What the towers look like, how they are trained, and which inputs they may use.

    The three ``use_*`` switches are the ablation (ids only / + segments / + history):
    switching an input off removes its layers, it is not just zeroed.
    """

    name: str = "two_tower"
    dim: int = 64  # output vector size of both towers
    hidden: int = 256  # width of the customer tower's MLP
    segment_dim: int = 16  # embedding size of each segment family
    history_len: int = 20  # L: recent purchase lines (or distinct items) pooled
    # lines: the last L purchase lines; distinct: the last L distinct items, each at its
    # latest purchase, found among the last history_scan lines (the purchase set, as EASE
    # reads it: staples count once).
    history_items: str = "lines"
    history_scan: int = 400
    pooling: str = "attention"  # mean | attention (learned query, recency positions)
    # History items are embedded by the item tower (ids + attributes) rather than a table of
    # their own: an item seen only in histories still lands near its category, and half the
    # parameters are gone.
    share_item_embeddings: bool = True
    use_ids: bool = True
    use_segments: bool = True
    use_history: bool = True
    use_numeric: bool = True  # log purchase count, log basket count, log days since last
    segment_families: list[str] | None = None  # null: every family in the segment labels
    # Item attributes embedded by the item tower; null: every categorical item attribute with
    # at most max_attribute_values values.
    item_attributes: list[str] | None = None
    max_attribute_values: int = 50_000
    price_bands: int = 10  # quantile bands of unit price (0: no price band)
    id_dropout: float = 0.5  # share of training examples whose customer id is hidden
    # Share shown as a cold customer is: id, history and numeric features all hidden, so
    # that the segments-only answer (what the cold start gives) is trained, not only
    # reached by customers' first baskets.
    cold_dropout: float = 0.0
    dropout: float = 0.1
    normalize: bool = True  # L2-normalise both towers; logits = cosine / temperature
    temperature: float = 0.05
    item_bias: bool = False  # a learned popularity bias per item (one more vector column)
    # A learned bias per (item, segment label) of every family: one more vector column per
    # label (see TwoTower). Off with the segments (use_segments false, or data without
    # segment families): an ablation that drops the segments drops their biases too.
    segment_bias: bool = False
    # Pseudo-count a of the segment biases' support: each (item, label) bias is scaled by
    # e / (e + a), e = the label's target lines x the item's share of all targets (the
    # lines independence predicts), so pairs with little evidence stay near 0. null: none.
    segment_bias_support: float | None = None
    # Families whose segment biases score the whole ranking; the other families' biases
    # score only the prior's head (prior_heads) and, without a head, only training. null:
    # every family. Why: a behavioural label (RFM, taste) is 'unknown' in a customer's
    # first baskets, so its biases learn what first baskets hold: sure bets for the first
    # places, but over a whole ranking they crowd out the broader hits of ranks 10-20
    # (bench/results/quality_tafeng.md, "behavioural biases in the head only").
    # list[str] | None, typed Any: new_items names the attribute families by interpolation
    # (${oc.dict.keys:segments.attribute}), and a typed list field would be resolved when
    # Hydra merges the experiment file, before the segments config is in reach.
    ranking_bias_families: Any = None
    # auto: full softmax when the catalog has at most full_softmax_max_items items, else
    # sampled softmax (in-batch + n_negatives shared negatives, logQ corrected).
    loss: str = "auto"
    full_softmax_max_items: int = 10_000
    n_negatives: int = 2048
    negative_uniform_share: float = 0.5  # of the shared negatives, drawn uniformly
    lr: float = 0.003
    weight_decay: float = 0.0
    batch_size: int = 256  # baskets per batch (each basket: all its purchase lines)
    # Weight of a target line whose item the customer bought in an earlier basket (others
    # weigh 1). Below 1 the model spends itself on what is new to the customer, which the
    # ranker cannot get from the customer's own history; 0 drops repeats as targets.
    repeat_weight: float = 1.0
    # false: the items of the customer's history are no negatives of its baskets, so that
    # with repeat_weight 0 the towers learn to rank what is new to the customer among what
    # is new to them (the column the model is judged on; the ranker handles repeats).
    known_negatives: bool = True
    # Co-purchase prior (segrec.training.copurchase): EASE's item-item weights over the
    # copurchase_items best-supported items (each bought by >= copurchase_min_support
    # customers, ridge copurchase_l2), truncated to rank copurchase_rank, kept fixed; the
    # score adds scale * sum over the history of h_i . v_j, scale learned. 0: no prior.
    copurchase_rank: int = 0
    copurchase_items: int = 6000
    copurchase_min_support: int = 5
    copurchase_l2: float = 500.0
    # Candidate weights of the towers' cosine in the score (the biases and the co-purchase
    # prior keep weight 1), chosen after training on the validation period's Recall@K:
    # the smallest within one standard error of the best; null: 1. Why: the cosine,
    # trained on the training period, can over-rule the prior and biases on new items
    # (see TwoTower), and a larger weight should win by more than the month's noise.
    tower_weights: list[float] | None = None
    # Candidate head lengths m, the best on the validation period's NDCG@K chosen after the
    # tower weight; null: 0. The first m places of a customer's ranking of items new to
    # them go to the m best by the biases and the co-purchase prior alone (the score
    # without the cosine), the rest follow the whole score. Why: on both Ta-Feng months
    # the cosine lifts hits at ranks 10-20 but costs them at ranks 1-5, where the prior
    # is surer (bench/results/quality_tafeng.md, "the prior's head").
    prior_heads: list[int] | None = None
    # Behavioural segments are re-assigned every N days of the training period so that each
    # example sees the labels it would have had then (null: the labels as of the cutoff).
    segment_snapshot_days: int | None = 14

    def check(self) -> None:
        """Refuse settings that cannot work, naming the key."""
        if self.pooling not in POOLINGS:
            raise ValueError(f"model.pooling: {self.pooling!r}, expected one of {POOLINGS}")
        if self.history_items not in HISTORY_ITEMS:
            raise ValueError(
                f"model.history_items: {self.history_items!r}, expected one of {HISTORY_ITEMS}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"model.loss: {self.loss!r}, expected one of {LOSSES}")
        if not (self.use_ids or self.use_segments or self.use_history or self.use_numeric):
            raise ValueError(
                "model: at least one of use_ids/use_segments/use_history/use_numeric must be true"
            )
        for key in ("dim", "hidden", "segment_dim", "history_len", "history_scan", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("id_dropout", "cold_dropout", "negative_uniform_share"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"model.{key} must be in [0, 1], got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.n_negatives < 1:
            raise ValueError(f"model.n_negatives must be >= 1, got {self.n_negatives}")
        if self.lr <= 0:
            raise ValueError(f"model.lr must be > 0, got {self.lr}")
        if self.use_numeric and self.batch_size < 2:
            # The numeric features' BatchNorm cannot train on a batch of one customer.
            raise ValueError(
                f"model.batch_size must be >= 2 with model.use_numeric, got {self.batch_size}"
            )
        if self.segment_snapshot_days is not None and self.segment_snapshot_days < 1:
            raise ValueError(
                f"model.segment_snapshot_days must be null or >= 1, got "
                f"{self.segment_snapshot_days}"
            )
        if self.segment_bias_support is not None and self.segment_bias_support <= 0:
            raise ValueError(
                f"model.segment_bias_support must be null or > 0, got {self.segment_bias_support}"
            )
        if self.repeat_weight < 0:
            raise ValueError(f"model.repeat_weight must be >= 0, got {self.repeat_weight}")
        if self.copurchase_rank < 0:
            raise ValueError(f"model.copurchase_rank must be >= 0, got {self.copurchase_rank}")
        if self.copurchase_rank and not self.use_history:
            raise ValueError("model.copurchase_rank > 0 reads the history: needs use_history")
        if self.copurchase_rank and self.copurchase_l2 <= 0:
            raise ValueError(f"model.copurchase_l2 must be > 0, got {self.copurchase_l2}")
        if self.tower_weights is not None and (
            not self.tower_weights or min(self.tower_weights) < 0
        ):
            raise ValueError(
                f"model.tower_weights: {self.tower_weights}, expected null or weights >= 0"
            )
        if self.prior_heads is not None:
            if not self.prior_heads or min(self.prior_heads) < 0:
                raise ValueError(
                    f"model.prior_heads: {self.prior_heads}, expected null or lengths >= 0"
                )
            if not (self.item_bias or self.segment_bias or self.copurchase_rank):
                raise ValueError(
                    "model.prior_heads ranks by the biases and the co-purchase prior: needs "
                    "item_bias, segment_bias or copurchase_rank"
                )
        families = self.ranking_bias_families
        if families is not None and (
            not isinstance(families, list) or not all(isinstance(f, str) for f in families)
        ):
            raise ValueError(
                f"model.ranking_bias_families: {families!r}, expected null or a list of "
                "segment family names"
            )
        if self.temperature <= 0:
            raise ValueError(f"model.temperature must be > 0, got {self.temperature}")

    def loss_for(self, n_items: int) -> str:
        """The loss actually used for a catalog of ``n_items``: full or sampled."""
        if self.loss != "auto":
            return self.loss
        return "full" if n_items <= self.full_softmax_max_items else "sampled"
