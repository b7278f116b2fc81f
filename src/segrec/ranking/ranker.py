"""``HistoryRanker``: candidates from history, segments and retrieval, re-ranked by trees.

The one ranking function: evaluation and batch scoring call ``score`` (the Recommender
contract), the service calls ``rank`` for one customer; both go through ``rank_block``.

Why gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``, log-loss):
the signals interact in ways a linear model cannot express (a repurchase interval matters
only for items bought at least twice; popularity matters for new items, the customer's own
share for repeats), trees need no feature scaling across windows of different lengths, and
a few hundred shallow trees evaluate in a compiled loop in well under a millisecond
(``segrec.ranking.trees``). A pointwise log-loss gives calibrated purchase probabilities,
so one score can rank repeat and new items against each other; scikit-learn is already a
training dependency, whereas LightGBM's lambdarank would add one for a gain we did not
measure. Where the windows' new items do not carry over to the next period, new items are
ordered by their segment prior instead (``segrec.ranking.new_items``, chosen per data set
on a held-out window).

Scores (``candidate_scores``): candidates score above 1, every other catalog item its
long-decayed popularity scaled into [0, 1), so the ranking stays full-catalog and finite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segrec.ranking.candidates import Block, DenseScores, SourceScores
from segrec.ranking.config import RankingConfig, own_sources, ranking_config
from segrec.ranking.features import names_for
from segrec.ranking.new_items import (
    FITS_LINEAR,
    LinearNewItems,
    candidate_scores,
    check_strategy,
    choose_strategy,
)
from segrec.ranking.sources import block_sources
from segrec.ranking.state import RankingState, history_before
from segrec.ranking.training import (
    SegmentsAt,
    SourceFactory,
    block_features,
    build_tables,
    make_block,
    training_set,
)
from segrec.ranking.trees import TreeEnsemble
from segrec.recommender import NEVER, History, Recommender, chunk_size_for, iter_chunks
from segrec.segments.crossing import label_of


class HistoryRanker:
    """Re-ranks candidates of the customer's history, segments and retrieval sources.

    ``sources``: retrieval models by name (the keys of ``cfg.candidates.sources`` but the
    ranker's own, ``OWN_SOURCES``, which its state builds), each a factory returning an
    unfitted ``Recommender``; ``fit`` fits one per training window and one on the full
    history. A model whose fit is expensive (the two-tower model) can
    be given as a factory whose ``fit`` only binds a history to already trained weights.
    ``segments_at(date)``: segment labels as of a date, for the training windows; without
    it the history's own labels are used, which is right only for families that do not
    change with behaviour (attributes).
    """

    def __init__(
        self,
        cfg: RankingConfig,
        sources: Mapping[str, SourceFactory] | None = None,
        segments_at: SegmentsAt | None = None,
        name: str = "ranker",
    ) -> None:
        sources = dict(sources or {})
        external = [k for k in cfg.candidates.sources if k not in own_sources(cfg.candidates)]
        missing = sorted(set(external) - set(sources))
        if missing:
            raise ValueError(f"ranking.candidates.sources: no model given for {missing}")
        self.cfg = cfg
        self.sources = {k: sources[k] for k in external}
        self.segments_at = segments_at
        self.name = name
        self.cold_start = "native (segment and overall best sellers, retrieval sources)"
        self.model: TreeEnsemble | None = None
        self.state: RankingState | None = None
        self.models: dict[str, Recommender] = {}
        self._segments: pl.DataFrame | None = None
        check_strategy(cfg.new_items)
        self.new_items: str = "model" if cfg.new_items == "auto" else cfg.new_items
        self.new_items_choice: dict[str, Any] = {}
        self.linear: LinearNewItems | None = None  # for the ``linear`` and ``ensemble`` strategies

    def fit(self, history: History) -> HistoryRanker:
        """Fit the trees on the training windows, choose how new items are ordered
        (``ranking.new_items``), then build the state on all the history.

        Purchases at or after ``history.as_of`` are ignored, whoever built the history.
        """
        history = history_before(history, history.as_of, history.segments)
        data = training_set(history, self.cfg, self.sources, self.segments_at)
        self.rebind(history)
        assert self.state is not None
        names = names_for(self.state, list(self.cfg.candidates.sources))
        self.new_items, self.new_items_choice = self.cfg.new_items, {}
        if self.cfg.new_items == "auto":
            self.new_items, self.new_items_choice = choose_strategy(
                data, names, self._trees, self.cfg.windows
            )
        fits_linear = self.new_items in FITS_LINEAR
        self.linear = LinearNewItems.fit(data, names) if fits_linear else None
        self.model = TreeEnsemble.from_sklearn(self._fit_trees(data.x, data.y, data.w), names)
        self.training_rows = len(data.y)
        return self

    def _fit_trees(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
        """scikit-learn's gradient-boosted trees on (x, y) weighted by w."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        m = self.cfg.model
        clf = HistGradientBoostingClassifier(
            max_iter=m.max_iter,
            learning_rate=m.learning_rate,
            max_depth=m.max_depth,
            max_leaf_nodes=m.max_leaf_nodes,
            min_samples_leaf=m.min_samples_leaf,
            l2_regularization=m.l2_regularization,
            early_stopping=False,
            random_state=self.cfg.seed,
        )
        with threadpool_limits(m.n_threads):
            return clf.fit(x, y, sample_weight=w)

    def _trees(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Any:
        """Trees fitted on (x, y, w), as a function from features to log-odds."""
        return self._fit_trees(x, y, w).decision_function

    def rebind(self, history: History) -> HistoryRanker:
        """Keep the trees; rebuild the state and refit the sources on ``history``.

        ``fit`` ends with it; the main job calls it again with all the data, so that the
        bundle ranks with every customer's purchases up to the end, as trained on the
        windows before the test cutoff.
        """
        history = history_before(history, history.as_of, history.segments)
        self.state = RankingState.build(history, self.cfg)
        self.models = {name: make().fit(history) for name, make in self.sources.items()}
        self._segments = history.segments
        return self

    @property
    def fitted(self) -> tuple[RankingState, TreeEnsemble]:
        if self.state is None or self.model is None:
            raise RuntimeError(f"{self.name}: call fit(history) before score()")
        return self.state, self.model

    def score(self, customer_ids: pl.Series) -> np.ndarray:
        """Full-catalog scores (n, n_columns) float32, following the Recommender contract."""
        state, _ = self.fitted
        customer_ids = customer_ids.cast(pl.Utf8)
        out = np.empty((customer_ids.len(), state.n_columns), np.float32)
        out[:] = self.filler()
        start = 0
        for chunk in iter_chunks(customer_ids, chunk_size_for(state.n_columns, 64.0)):
            block = make_block(state, self.models, chunk, self._segments, self.cfg.candidates)
            b, items, scores = self.rank_block(block)
            out[start + b, items] = scores
            start += chunk.len()
        out[:, 0] = NEVER
        return out

    def filler(self) -> np.ndarray:
        """Scores of non-candidates: long-decayed popularity in [0, 1), float32 (n_columns,)."""
        state, _ = self.fitted
        share = state.global_share.astype(np.float64)
        top = share.max() if share.size else 0.0
        out = (0.999 * share / top if top > 0 else np.zeros_like(share)).astype(np.float32)
        out[0] = NEVER
        return out

    def rank_block(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of a block with their scores: (block position, item, float32 score)."""
        state, model = self.fitted
        b, items, x = block_features(state, block, self.cfg)
        raw = model.predict_raw(x)
        return b, items, candidate_scores(self.new_items, raw, x, model.features, self.linear)

    def rank(
        self,
        customer_id: str,
        sources: Mapping[str, SourceScores],
        labels: Mapping[str, str] | None = None,
        k: int = 20,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (items, scores) of one customer, best first: what the service calls.

        ``sources``: each retrieval source's scores for this one customer (block of 1),
        but the ranker's own (``OWN_SOURCES``: it scores them from its state);
        ``labels``: the customer's segment label per family (unknown where absent;
        crossed families are made from their parts);
        ``exclude``: item columns never to return (e.g. already purchased).
        """
        state, _ = self.fitted
        row = np.array([state.customers.index(customer_id)], np.int64)
        label_index = np.zeros((1, len(state.segments)), np.int64)
        for j, seg in enumerate(state.segments):
            label_index[0, j] = seg.vocabulary.index(label_of(labels or {}, seg.family))
        block = Block(row, label_index, block_sources(state, row, sources, self.cfg.candidates))
        _, items, scores = self.rank_block(block)
        if exclude is not None and len(exclude):
            keep = ~np.isin(items, exclude)
            items, scores = items[keep], scores[keep]
        order = np.lexsort((items, -scores))[:k]
        return items[order], scores[order]

    def importances(self) -> dict[str, float]:
        """Share of the trees' splits on each feature, largest first."""
        _, model = self.fitted
        return dict(sorted(model.importances().items(), key=lambda kv: -kv[1]))

    def save(self, directory: Path) -> None:
        """The trees, the state and the config; retrieval sources are the bundle's business."""
        state, model = self.fitted
        directory.mkdir(parents=True, exist_ok=True)
        model.save(directory / "trees.npz")
        state.save(directory)
        meta: dict[str, Any] = {
            "name": self.name,
            "config": asdict(self.cfg),
            "new_items": self.new_items,
            "new_items_choice": self.new_items_choice,
            "linear_new_items": self.linear.to_dict() if self.linear else None,
        }
        (directory / "ranker.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(
        cls,
        directory: Path,
        models: Mapping[str, Recommender] | None = None,
        segments: pl.DataFrame | None = None,
    ) -> HistoryRanker:
        """A fitted ranker from ``save``'s directory (numpy, scipy and polars only).

        ``models``: the fitted retrieval sources by name, needed by ``score`` (``rank``
        takes their scores directly); ``segments``: labels of the customers to score.
        """
        meta = json.loads((directory / "ranker.json").read_text())
        cfg = ranking_config(meta["config"])
        out = cls(
            cfg, {name: _unavailable(name) for name in cfg.candidates.sources}, name=meta["name"]
        )
        out.model = TreeEnsemble.load(directory / "trees.npz")
        out.new_items, out.new_items_choice = meta["new_items"], meta["new_items_choice"]
        linear = meta.get("linear_new_items")
        out.linear = LinearNewItems.from_dict(linear) if linear else None
        out.state = RankingState.load(directory)
        build_tables(out.state)
        out.models = dict(models or {})
        out._segments = segments
        out._warm_up()
        return out

    def _warm_up(self) -> None:
        """Rank an unknown customer once (zero scores from every retrieval source), so
        that ``rank``'s compiled loops are compiled, or read from numba's disk cache
        (0.1 s), at load: loading is the service's start-up, and its first request
        would otherwise pay for them (seconds where nothing is cached)."""
        state, _ = self.fitted
        zeros = DenseScores(np.zeros((1, state.n_columns), np.float32))
        self.rank("", {name: zeros for name in self.sources})


def _unavailable(name: str) -> SourceFactory:
    """A factory for a loaded ranker's sources: refitting needs the real models."""

    def make() -> Recommender:
        raise RuntimeError(f"a loaded ranker cannot refit its source {name!r}; fit a new one")

    return make
