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
- ``blend``: new items by the mean of their log-odds and their log prior,
  interleaved with the customer's own items on the trees' scale. A geometric mean of the
  model's probability and the prior shrinks what the windows taught about new items
  towards what holds across seasons. Measured (test period, history-only ranker, NDCG@20
  all / new items): Ta-Feng model 0.114 / 0.044, prior 0.121 / 0.059, blend 0.121 / 0.059;
  Complete Journey model 0.446 / 0.071, prior 0.446 / 0.060, blend 0.446 / 0.067;
- ``linear``: new items by a logistic regression, fitted on the windows' new-item pairs,
  over a handful of features whose meaning does not change with the season: the log
  shrunk segment shares, the log overall share, the neighbour affinity and each retrieval
  source's score. Trees can single out the few items a holiday window sold (by their age,
  trend and category share together); a linear model over these features can only say how
  much popularity, segment taste and item-item affinity weigh, which carries over. Its
  log-odds are on the trees' scale (both are fitted to the same labels), so new items
  interleave with the customer's own. Measured on Ta-Feng (test period, ranker with an
  EASE source, NDCG@20 all / new; recall new): blend 0.1199 / 0.0572 / 0.0696, linear
  0.1220 / 0.0632 / 0.0709;
- ``ensemble``: new items by the mean of three views of their log-odds: the trees', the
  ``linear`` model's and the log prior (a geometric mean of three probabilities). Each
  view errs differently: the trees follow what the windows sold, the prior ignores the
  customer, the linear model knows only a handful of features; averaged, the errors
  partly cancel. Measured (test period, ranker with an EASE source, recall / NDCG@20 on
  new items): Ta-Feng model NDCG 0.040 (trees fitted on new-item pairs alone 0.0694 /
  0.0434), blend 0.0719 / 0.0628, linear 0.0700 / 0.0632, ensemble 0.0746 / 0.0637; Complete
  Journey model 0.0683 / 0.0761, blend 0.0658 / 0.0697, linear 0.0638 / 0.0693,
  ensemble 0.0664 / 0.0702: the best but one where the trees win, the best where they
  fail; what ``auto`` answers when no window can judge;
- ``auto``: whichever of the five wins on the ranker's most recent training window, with
  the trees and the linear model fitted only on the windows whose labels end before it
  begins, so that no judge learned the purchases it is judged on (mean NDCG@``k`` over
  that window's customers, all candidates plus new ones alone). The default. It cannot
  foresee a change of season, but with judges that never saw the held-out labels it no
  longer rewards the trees for remembering them: while they did (window 1's labels cover
  half of window 0's), it picked ``model`` on Ta-Feng from the Lunar New Year window, which
  February punished. Measured with the fix (bench/quality.py, ranker with the two_tower
  and ease sources, recall / NDCG@20 on new items): Ta-Feng 0.0741 / 0.0659 (ensemble
  0.0737 / 0.0661), Complete Journey 0.0769 / 0.0833 (ensemble 0.0714 / 0.0746). The
  history-only ranker of the same runs shows its limit: on Ta-Feng auto picked the trees
  for it, and its new-item NDCG fell to 0.0441 (0.0609 with ensemble).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from numba import njit

from segrec.ranking.config import WindowsConfig
from segrec.ranking.training import TrainingSet

STRATEGIES = ("auto", "model", "prior", "blend", "linear", "ensemble")
FITS_LINEAR = ("linear", "ensemble")  # the strategies that need ``LinearNewItems``
CHOICES = ("model", "prior", "blend", "linear", "ensemble")  # what ``auto`` chooses from
DEFAULT = "ensemble"  # ``auto``'s answer when no window can judge
OFFSET = 100.0  # every candidate scores above every non-candidate (those are in [0, 1))
CLIP = 50.0  # log-odds are clipped to ±CLIP
PRIOR_SPAN = 40.0  # log priors are clipped to [-PRIOR_SPAN, 0]
EPS = 1e-9

Trees = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def check_strategy(value: str) -> None:
    if value not in STRATEGIES:
        raise ValueError(f"ranking.new_items: {value!r} is not one of {list(STRATEGIES)}")


@lru_cache(maxsize=64)
def _positions(names: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray:
    """Column of each of ``wanted`` in ``names``, int64: cached, since every request
    asks for the same columns of the same names again."""
    index = {n: j for j, n in enumerate(names)}
    return np.array([index[n] for n in wanted], np.int64)


@lru_cache(maxsize=64)
def _prior_positions(names: tuple[str, ...]) -> np.ndarray:
    """The columns ``log_prior`` averages: the segment shares, else the overall share."""
    shares = tuple(n for n in names if n.startswith("seg_share:"))
    return _positions(names, shares or ("item_share",))


def log_prior(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Per pair: mean log shrunk segment share of the item (log overall share without
    segment families), float64 (m,)."""
    share = x[:, _prior_positions(tuple(names))]
    logs = np.log(share.astype(np.float64) + EPS)
    # The sum and division ``mean`` makes, without its Python wrapper (5 µs a request).
    return np.add.reduce(logs, axis=1) / logs.shape[1]


LINEAR_SHARES = ("seg_share:", "item_share")  # log-transformed
LINEAR_SCORES = ("nbr_score", "src_score:")  # log1p(100 · max(score, 0))


def linear_columns(names: Sequence[str]) -> list[str]:
    """The features the ``linear`` strategy reads, in ``names`` order."""
    return [n for n in names if n.startswith(LINEAR_SHARES + LINEAR_SCORES)]


def _linear_inputs(x: np.ndarray, names: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """float64 (m, len(columns)): log shares, log1p of scaled affinities and scores (all
    heavy-tailed; the logs make a linear model of them sensible). Each transform runs
    once on all its columns: per column, it was most of the ensemble's cost per request."""
    at, share, score = _linear_layout(tuple(names), tuple(columns))
    v = x[:, at].astype(np.float64)
    out = np.empty_like(v)
    out[:, share] = np.log(v[:, share] + 1e-7)
    out[:, score] = np.log1p(100.0 * np.maximum(v[:, score], 0.0))
    return out


@lru_cache(maxsize=64)
def _linear_layout(
    names: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``columns`` are in ``names``, and which of them are shares, which scores."""
    share = np.array([n.startswith(LINEAR_SHARES) for n in columns], bool)
    return _positions(names, columns), np.flatnonzero(share), np.flatnonzero(~share)


@lru_cache(maxsize=64)
def _flagged_layout(
    names: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Where ``columns`` are in ``names``, and int64 1 for each that is a share, 0 else."""
    at, share, _ = _linear_layout(names, columns)
    flags = np.zeros(len(at), np.int64)
    flags[share] = 1
    return at, flags


@dataclass(frozen=True)
class LinearNewItems:
    """The ``linear`` strategy's model: log-odds = ((f(x) - mean) / scale) · coef + bias."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(cls, data: TrainingSet, names: Sequence[str]) -> LinearNewItems:
        """Weighted logistic regression on the new-item pairs of ``data``."""
        from sklearn.linear_model import LogisticRegression

        columns = linear_columns(names)
        new = data.x[:, list(names).index("is_new")] > 0.5
        if not new.any() or len(np.unique(data.y[new])) < 2:
            raise ValueError(
                "ranking.new_items: linear needs bought and unbought new items in the "
                "training windows; use blend"
            )
        f = _linear_inputs(data.x[new], names, columns)
        mean, scale = f.mean(axis=0), f.std(axis=0) + 1e-9
        lr = LogisticRegression(C=1.0, max_iter=1000)
        lr.fit((f - mean) / scale, data.y[new], sample_weight=data.w[new])
        as_tuple = lambda a: tuple(float(v) for v in a)  # noqa: E731
        return cls(
            tuple(columns),
            as_tuple(mean),
            as_tuple(scale),
            as_tuple(lr.coef_[0]),
            float(lr.intercept_[0]),
        )

    def layout(
        self, names: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """``_scores``' view of the model on features ``names``: where its columns are,
        which are shares (int64 1/0), mean, scale, coef (float64) and the intercept."""
        return (*_flagged_layout(names, self.columns), *self._arrays, self.intercept)

    def log_odds(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """float64 (m,) log-odds of the pairs ``x`` (columns ``names``)."""
        mean, scale, coef = self._arrays
        return (_linear_inputs(x, names, self.columns) - mean) / scale @ coef + self.intercept

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """mean, scale and coef as float64 arrays, converted once, not per request."""
        return np.array(self.mean), np.array(self.scale), np.array(self.coef)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearNewItems:
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)


def candidate_scores(
    strategy: str,
    raw: np.ndarray,
    x: np.ndarray,
    names: Sequence[str],
    linear: LinearNewItems | None = None,
) -> np.ndarray:
    """float32 scores of candidate pairs from the trees' log-odds ``raw`` (m,); ``linear``
    is the fitted model of the ``linear`` and ``ensemble`` strategies.

    One compiled pass (``_scores``) computes what ``log_prior`` and
    ``LinearNewItems.log_odds`` define, row by row: as numpy, the ensemble's gathers,
    logs, product and clips were 25 array calls, 0.1 ms of a one-customer request."""
    if strategy in FITS_LINEAR and linear is None:
        raise ValueError(f"ranking.new_items: {strategy} needs its fitted linear model")
    names = tuple(names)
    is_new = int(_positions(names, ("is_new",))[0])
    at, share, mean, scale, coef, intercept = (linear or _NO_LINEAR).layout(names)
    out = np.empty(len(raw), np.float32)
    _scores(
        _CODES[strategy], raw, x, is_new, _prior_positions(names),
        at, share, mean, scale, coef, intercept, out,
    )  # fmt: skip
    return out


_NO_LINEAR = LinearNewItems((), (), (), (), 0.0)  # the strategies that read no linear model
_CODES = {name: code for code, name in enumerate(CHOICES)}
_MODEL, _PRIOR, _BLEND, _LINEAR, _ENSEMBLE = (_CODES[n] for n in CHOICES)
_BELOW = OFFSET - CLIP - 1.0 - PRIOR_SPAN  # prior: under every repeat, over every filler


@njit(cache=True, nogil=True)
def _scores(
    kind: int,
    raw: np.ndarray,
    x: np.ndarray,
    is_new: int,
    prior: np.ndarray,
    at: np.ndarray,
    share: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    coef: np.ndarray,
    intercept: float,
    out: np.ndarray,
) -> None:
    """``candidate_scores``' loop. A repeat (and every pair with ``model``) scores
    OFFSET + its clipped log-odds; a new item by the strategy's view of its log-odds:
    the log prior (``prior``'s columns, see ``log_prior``), the linear model's (columns
    ``at``, log of a share where ``share``, else log1p of 100 times the score; see
    ``_linear_inputs``), or their means with the trees' ``raw``, all in float64."""
    for j in range(raw.shape[0]):
        r = raw[j]
        out[j] = OFFSET + min(max(r, -CLIP), CLIP)
        if kind == _MODEL or not x[j, is_new] > 0.5:
            continue
        log_prior, linear = 0.0, 0.0  # each computed only where the strategy reads it
        if kind != _LINEAR:
            for c in prior:
                log_prior += np.log(np.float64(x[j, c]) + EPS)
            log_prior /= prior.shape[0]
        if kind in (_LINEAR, _ENSEMBLE):
            for k in range(at.shape[0]):
                v = np.float64(x[j, at[k]])
                f = np.log(v + 1e-7) if share[k] else np.log1p(100.0 * max(v, 0.0))
                linear += (f - mean[k]) / scale[k] * coef[k]
            linear += intercept
        if kind == _PRIOR:
            out[j] = _BELOW + min(max(log_prior + PRIOR_SPAN, 0.0), PRIOR_SPAN)
            continue
        if kind == _LINEAR:
            log_odds = linear
        elif kind == _BLEND:
            log_odds = (r + log_prior) / 2.0
        else:  # ensemble
            log_odds = (r + linear + log_prior) / 3.0
        out[j] = OFFSET + min(max(log_odds, -CLIP), CLIP)


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
    data: TrainingSet, names: Sequence[str], fit_trees: Trees, windows: WindowsConfig, k: int = 20
) -> tuple[str, dict[str, Any]]:
    """``auto``'s choice (see the module docstring) and what it measured.

    The judges are fitted only on the windows whose labels end before the held-out
    window's begin: with ``stride_days`` shorter than ``label_days`` the next window's
    labels cover part of the held-out period, and trees fitted on them would be judged
    on purchases they learned. Without such a window there is nothing to judge with, and
    the choice is ``DEFAULT``.
    """
    first_clean = math.ceil(windows.label_days / max(windows.stride_days, 1))
    held_out, kept_rows = data.window == 0, data.window >= first_clean
    if not kept_rows.any():
        return DEFAULT, {
            "reason": f"no training window ends before the held-out one starts "
            f"(windows {first_clean}+ of {windows.n}); raise ranking.windows.n"
        }
    kept = TrainingSet(*(getattr(data, f.name)[kept_rows] for f in fields(data)))
    predict = fit_trees(kept.x, kept.y, kept.w)
    linear = LinearNewItems.fit(kept, names)
    x, y, group = data.x[held_out], data.y[held_out], data.group[held_out]
    raw = predict(x)
    new = x[:, list(names).index("is_new")] > 0.5
    measured: dict[str, Any] = {}
    for strategy in CHOICES:
        scores = candidate_scores(strategy, raw, x, names, linear)
        measured[strategy] = {
            "ndcg_all": round(mean_ndcg(group, y, scores, k), 5),
            "ndcg_new": round(mean_ndcg(group[new], y[new], scores[new], k), 5),
        }
    chosen = max(
        CHOICES,
        key=lambda s: np.nan_to_num(measured[s]["ndcg_all"] + measured[s]["ndcg_new"]),
    )
    judged_on = sorted(int(w) for w in np.unique(kept.window))
    return chosen, {"held_out_window": 0, "judges_fitted_on": judged_on, "k": k, **measured}
