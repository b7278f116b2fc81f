"""How items new to the customer are ordered, and placed against the customer's own items.

A pointwise model fitted on recent windows learns which new items those windows happened
to sell. Ta-Feng's windows before February hold Christmas and the Lunar New Year, and a
ranker that follows them orders February's new items worse than plain popularity does
(NDCG@20 on new items 0.044 against 0.051). On Complete Journey, whose windows are
ordinary autumn weeks, the same trees order new items better than any prior. So:

- ``model``: every candidate by the trees' log-odds;
- ``prior``: the customer's own items by the trees first, then the new items by their
  prior, the geometric mean of their shrunk shares in the customer's segments (the item's
  long-decayed overall share without segment families): the order of segment popularity,
  the strongest baseline on new items, which does not chase one season;
- ``blend`` (the default): new items by the mean of their log-odds and their log prior,
  interleaved with the customer's own items on the trees' scale. A geometric mean of the
  model's probability and the prior shrinks what the windows taught about new items
  towards what holds across seasons. Measured (test period, history-only ranker, NDCG@20
  all / new items): Ta-Feng model 0.114 / 0.044, prior 0.121 / 0.059, blend 0.121 / 0.059;
  Complete Journey model 0.446 / 0.071, prior 0.446 / 0.060, blend 0.446 / 0.067;
- ``auto``: whichever of the three wins on the ranker's most recent training window, with
  trees fitted on the other windows only, so that no window judges trees that learned
  from it (mean NDCG@``k`` over that window's customers, all candidates plus new ones
  alone). It cannot foresee a change of season: on Ta-Feng it picks ``model`` from the
  Lunar New Year window, which February then punishes, hence not the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from segrec.ranking.training import TrainingSet

STRATEGIES = ("auto", "model", "prior", "blend")
CHOICES = ("model", "prior", "blend")  # what ``auto`` chooses from
OFFSET = 100.0  # every candidate scores above every non-candidate (those are in [0, 1))
CLIP = 50.0  # log-odds are clipped to ±CLIP
PRIOR_SPAN = 40.0  # log priors are clipped to [-PRIOR_SPAN, 0]
EPS = 1e-9

Trees = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def check_strategy(value: str) -> None:
    if value not in STRATEGIES:
        raise ValueError(f"ranking.new_items: {value!r} is not one of {list(STRATEGIES)}")


def log_prior(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Per pair: mean log shrunk segment share of the item (log overall share without
    segment families), float64 (m,)."""
    columns = [j for j, n in enumerate(names) if n.startswith("seg_share:")]
    share = x[:, columns] if columns else x[:, [list(names).index("item_share")]]
    return np.log(share.astype(np.float64) + EPS).mean(axis=1)


def candidate_scores(
    strategy: str, raw: np.ndarray, x: np.ndarray, names: Sequence[str]
) -> np.ndarray:
    """float32 scores of candidate pairs from the trees' log-odds ``raw`` (m,)."""
    scores = OFFSET + np.clip(raw, -CLIP, CLIP)
    if strategy in ("prior", "blend"):
        new = x[:, list(names).index("is_new")] > 0.5
        if strategy == "prior":
            below = OFFSET - CLIP - 1.0 - PRIOR_SPAN  # under every repeat, over every filler
            prior = below + np.clip(log_prior(x, names) + PRIOR_SPAN, 0.0, PRIOR_SPAN)
        else:
            prior = OFFSET + np.clip((raw + log_prior(x, names)) / 2.0, -CLIP, CLIP)
        scores = np.where(new, prior, scores)
    return scores.astype(np.float32)


def mean_ndcg(group: np.ndarray, y: np.ndarray, score: np.ndarray, k: int) -> float:
    """Mean NDCG@k over the groups with at least one positive, each group's pairs ranked
    by ``score`` (ties: the order given)."""
    if len(group) == 0:
        return float("nan")
    order = np.lexsort((-score, group))
    g, hit = group[order], y[order] > 0
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    rank = np.arange(len(g)) - np.repeat(starts, sizes)
    gain = np.where(hit & (rank < k), 1.0 / np.log2(rank + 2.0), 0.0)
    dcg = np.add.reduceat(gain, starts)
    positives = np.add.reduceat(hit.astype(np.int64), starts)
    ideal = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))]
    valid = positives > 0
    return float(np.mean(dcg[valid] / ideal[np.minimum(positives[valid], k)]))


def choose_strategy(
    data: TrainingSet, names: Sequence[str], fit_trees: Trees, k: int = 20
) -> tuple[str, dict[str, Any]]:
    """``auto``'s choice (see the module docstring) and what it measured."""
    held_out = data.window == 0
    if held_out.all():
        return "model", {"reason": "one training window: nothing to hold out"}
    predict = fit_trees(data.x[~held_out], data.y[~held_out], data.w[~held_out])
    x, y, group = data.x[held_out], data.y[held_out], data.group[held_out]
    raw = predict(x)
    new = x[:, list(names).index("is_new")] > 0.5
    measured: dict[str, Any] = {}
    for strategy in CHOICES:
        scores = candidate_scores(strategy, raw, x, names)
        measured[strategy] = {
            "ndcg_all": round(mean_ndcg(group, y, scores, k), 5),
            "ndcg_new": round(mean_ndcg(group[new], y[new], scores[new], k), 5),
        }
    chosen = max(
        CHOICES,
        key=lambda s: np.nan_to_num(measured[s]["ndcg_all"] + measured[s]["ndcg_new"]),
    )
    return chosen, {"held_out_window": 0, "k": k, **measured}
