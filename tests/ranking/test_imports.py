"""segrec.ranking stays light: no torch, Lightning, Hydra (nor scikit-learn) when ranking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.ranking.toy import habits, small_config

CHECK = """
import sys
from pathlib import Path
import polars as pl
from segrec.ranking import HistoryRanker
ranker = HistoryRanker.load(Path(sys.argv[1]))
ranker.rank("c000", {}, labels={"taste": "A"}, k=5)
ranker.score(pl.Series(["c000", "nobody"]))
heavy = [m for m in ("torch", "lightning", "hydra", "omegaconf", "sklearn") if m in sys.modules]
print(",".join(heavy))
"""


def run_on_saved_ranker(script: str, tmp_path: Path) -> str:
    """What ``script`` prints in a fresh process given a small saved ranker's directory."""
    from segrec.ranking import HistoryRanker

    HistoryRanker(small_config()).fit(habits(n_customers=60)).save(tmp_path / "ranker")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ranker")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_ranking_imports_no_heavy_library(tmp_path: Path) -> None:
    heavy = run_on_saved_ranker(CHECK, tmp_path)
    assert heavy == "", f"imported: {heavy}"


WARMED = """
import sys
from pathlib import Path
from segrec.ranking import HistoryRanker, candidates, features, new_items, trees
HistoryRanker.load(Path(sys.argv[1]))
kernels = [candidates._item_sums, candidates._top_per_row, candidates._union,
           candidates._values_at, features._fill, new_items._scores, trees._raw_scores]
print(",".join(k.__name__ for k in kernels if not k.signatures))
"""


def test_loading_compiles_the_ranking_loops(tmp_path: Path) -> None:
    """The service's first request must not compile (seconds without numba's cache):
    a fresh process has every loop of ``rank`` compiled once the ranker is loaded."""
    cold = run_on_saved_ranker(WARMED, tmp_path)
    assert cold == "", f"not compiled at load: {cold}"
