"""Matrix factorisation baselines from ``implicit``: ALS and BPR, on CPU or GPU.

Both learn one vector per customer and per item from the customer × item matrix of the
history; the score is their dot product, computed here chunk by chunk as one matrix
product (faster than ``implicit.recommend`` and full-catalog by construction). Customers
absent from the history have no vector and go to the fallback.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segrec.baselines.base import FallbackRecommender
from segrec.recommender import History, Recommender

WEIGHTINGS = ("none", "log", "bm25")


def weigh(matrix: sp.csr_matrix, weighting: str, bm25_k1: float, bm25_b: float) -> sp.csr_matrix:
    """Reweight purchase counts before factorisation.

    ``log`` (log1p) and ``bm25`` damp customers' heavy staples so they do not dominate the
    factors; ``bm25`` also discounts items everybody buys (the usual best on grocery).
    """
    if weighting == "none":
        return matrix
    if weighting == "log":
        out = matrix.copy()
        out.data = np.log1p(out.data)
        return out
    if weighting == "bm25":
        from implicit.nearest_neighbours import bm25_weight

        return bm25_weight(matrix, K1=bm25_k1, B=bm25_b).tocsr().astype(np.float32)
    raise ValueError(f"weighting: {weighting!r} is not one of {WEIGHTINGS}")


def resolve_gpu(use_gpu: bool | None) -> bool:
    """``None`` means: the GPU when implicit was built with CUDA and one is present."""
    import implicit.gpu

    if use_gpu and not implicit.gpu.HAS_CUDA:
        raise RuntimeError("use_gpu=true but implicit has no CUDA support on this machine")
    return bool(implicit.gpu.HAS_CUDA) if use_gpu is None else use_gpu


class _Factorisation(FallbackRecommender):
    """Shared fitting and scoring: subclasses only build the implicit model."""

    def __init__(self, fallback: Recommender | None, use_gpu: bool | None, seed: int) -> None:
        super().__init__(fallback)
        self.use_gpu = use_gpu
        self.seed = seed

    def _build(self, use_gpu: bool):  # -> implicit.recommender_base.RecommenderBase
        raise NotImplementedError

    def _input(self, history: History) -> sp.csr_matrix:
        return history.matrix()

    def _fit(self, history: History) -> None:
        from threadpoolctl import threadpool_limits

        # implicit parallelises over customers itself; a multi-threaded BLAS under it only
        # oversubscribes the cores (implicit warns about exactly this).
        with threadpool_limits(1, "blas"):
            model = self._build(resolve_gpu(self.use_gpu))
            model.fit(self._input(history), show_progress=False)
        if hasattr(model, "to_cpu") and not isinstance(model.user_factors, np.ndarray):
            model = model.to_cpu()
        self._users = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self._items_t = np.ascontiguousarray(model.item_factors.T, dtype=np.float32)

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._users[rows] @ self._items_t


class ImplicitALS(_Factorisation):
    """implicit's AlternatingLeastSquares (Hu, Koren & Volinsky 2008) on weighted counts."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        weighting: str = "bm25",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        use_gpu: bool | None = None,
        seed: int = 42,
        fallback: Recommender | None = None,
    ) -> None:
        super().__init__(fallback, use_gpu, seed)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"als.weighting: {weighting!r} is not one of {WEIGHTINGS}")
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.weighting = iterations, weighting
        self.bm25_k1, self.bm25_b = bm25_k1, bm25_b
        self.name = "als"

    def _input(self, history: History) -> sp.csr_matrix:
        return weigh(history.matrix(), self.weighting, self.bm25_k1, self.bm25_b)

    def _build(self, use_gpu: bool):
        from implicit.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            use_gpu=use_gpu,
            random_state=self.seed,
        )


class ImplicitBPR(_Factorisation):
    """implicit's BayesianPersonalizedRanking (Rendle et al. 2009) on binary purchases.

    BPR samples (customer, bought, not bought) triples, so counts do not matter; its item
    factors carry a bias column that the customer factors meet with a 1.
    """

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        use_gpu: bool | None = None,
        seed: int = 42,
        fallback: Recommender | None = None,
    ) -> None:
        super().__init__(fallback, use_gpu, seed)
        self.factors, self.learning_rate = factors, learning_rate
        self.regularization, self.iterations = regularization, iterations
        self.name = "bpr"

    def _input(self, history: History) -> sp.csr_matrix:
        return history.binary()

    def _build(self, use_gpu: bool):
        from implicit.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            use_gpu=use_gpu,
            random_state=self.seed,
        )
