"""The reader, and everything it imports, works in a process without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_READ = """
import sys
import numpy as np
from segrec.bundle import read_bundle
bundle = read_bundle(sys.argv[1])
session = bundle.tower()
feeds = {k: np.asarray(v[:4]) for k, v in bundle.customer_inputs.items()}
assert np.abs(session(feeds) - bundle.customer_vectors[:4]).max() < 1e-4
cold = session.unknown_feeds(batch=2)
assert session(cold).shape == (2, bundle.dim)
items, scores = bundle.search(np.asarray(bundle.customer_vectors[:3]), 5)
assert items.shape == (3, 5) and (items > 0).all()
assert isinstance(bundle.item_vectors, np.memmap)
bundle.item_map, bundle.customer_features, bundle.purchases, bundle.top_items
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "hydra"))
print("HEAVY", heavy)
"""


def test_reader_imports_no_torch(pristine: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _READ, str(pristine)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_export_config_imports_no_torch() -> None:
    """The top-level config reads ExportConfig; composing it must not pull torch in."""
    code = (
        "import sys, segrec.config, segrec.export\n"
        "assert segrec.export.ExportConfig().index.kind == 'flat'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
