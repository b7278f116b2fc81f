"""History-aware re-ranking of candidates (torch-free: numpy, scipy, polars, numba).

``HistoryRanker`` is a ``Recommender``: candidates from the customer's own purchases,
item-item neighbours, segment and overall best sellers and any retrieval models, scored by
gradient-boosted trees. ``rank`` ranks one customer (the service); ``score`` a block of
them (evaluation, batch scoring); both run the same code. The per-request loops (tree
walks, lookups, ranks, sums over item-item rows) are compiled with numba: for one
customer's ~160 candidates the cost of numpy is its number of calls, not their size.
"""

from segrec.ranking.candidates import DenseScores, RetrievedScores, SourceScores, SparseScores
from segrec.ranking.config import RankingConfig, ranking_config
from segrec.ranking.ranker import HistoryRanker
from segrec.ranking.state import RankingState
from segrec.ranking.trees import TreeEnsemble

__all__ = [
    "DenseScores",
    "HistoryRanker",
    "RankingConfig",
    "RankingState",
    "RetrievedScores",
    "SourceScores",
    "SparseScores",
    "TreeEnsemble",
    "ranking_config",
]
