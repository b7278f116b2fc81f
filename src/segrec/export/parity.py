"""The parity check: the exported ONNX tower must give the torch tower's vectors.

Serving answers unknown customers through ONNX Runtime and known ones from vectors torch
precomputed; both must agree, or the same customer would get different lists from the
batch job and the API depending on how they are looked up. The rows checked are chosen to
cover what a serving request can be: known customers, the same customers made cold
(unknown id), with an empty history (all padding: the division-by-zero trap of mean
pooling), both at once, random valid inputs, shorter histories (the dynamic axis) and
batches of one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from segrec.bundle.schema import TowerInput
from segrec.export.config import ParityConfig

Feeds = dict[str, np.ndarray]
Runner = Callable[[Mapping[str, np.ndarray]], np.ndarray]
HISTORY_ROLES = ("recent_items", "recent_mask", "recent_lengths")


@dataclass(frozen=True)
class ParityRows:
    """Parity inputs: ``feeds`` (name → (n, ...)), a ``group`` name per row, and the known
    customer row each came from (-1 for random rows)."""

    feeds: Feeds
    groups: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.groups)


@dataclass
class ParityReport:
    """What was compared and how far apart the two runtimes were (all JSON-able).

    ``n_rows`` distinct input rows; ``n_checks`` comparisons (some rows are run again with
    shorter histories or alone); ``groups``: rows and worst difference per kind of row."""

    n_rows: int
    n_checks: int
    tolerance: float
    max_abs_diff: float
    groups: dict[str, dict[str, float]]
    history_lengths: list[int]
    worst: list[dict[str, Any]] = field(default_factory=list)
    non_finite_rows: int = 0

    @property
    def passed(self) -> bool:
        return self.non_finite_rows == 0 and self.max_abs_diff <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ParityError(RuntimeError):
    """The ONNX tower disagrees with torch; the message lists the worst rows."""

    def __init__(self, report: ParityReport, hints: Sequence[str] = ()) -> None:
        self.report = report
        lines = [
            f"ONNX parity check failed: max |torch - onnx| = {report.max_abs_diff:.3g} over "
            f"{report.n_checks} checks of {report.n_rows} rows (tolerance {report.tolerance:g}); "
            f"{report.non_finite_rows} rows with NaN/inf outputs. Worst rows:",
            *(f"  {_describe(w)}" for w in report.worst),
        ]
        if hints:
            lines += ["Export warnings that may explain it:", *(f"  {h}" for h in hints)]
        super().__init__("\n".join(lines))


def _describe(w: Mapping[str, Any]) -> str:
    inputs = ", ".join(f"{k}={v}" for k, v in w["inputs"].items())
    return (
        f"row {w['row']} ({w['group']}, history {w['history']}, known row {w['source']}): "
        f"diff {w['diff']:.3g}; {inputs}"
    )


def parity_rows(
    spec: Sequence[TowerInput], known: Mapping[str, np.ndarray], cfg: ParityConfig
) -> ParityRows:
    """At least ``cfg.n_rows`` rows: known customers and their cold / empty-history variants,
    then random valid inputs. ``known`` holds the customers' inputs, row 0 all-unknown."""
    rng = np.random.default_rng(cfg.seed)
    n_known = len(next(iter(known.values())))
    take = (
        np.arange(n_known)
        if n_known <= cfg.max_known
        else np.sort(rng.choice(n_known, cfg.max_known, replace=False))
    )
    n_variant = max(cfg.n_rows // 10, 1)
    parts: list[tuple[str, Feeds, np.ndarray]] = [("known", _rows(known, take), take)]
    for group, cold, empty in (
        ("cold", True, False),
        ("empty_history", False, True),
        ("cold_empty_history", True, True),
    ):
        src = rng.choice(n_known, n_variant, replace=n_known < n_variant)
        parts.append((group, _variant(spec, _rows(known, src), cold, empty), src))
    n_random = max(cfg.n_rows - sum(len(p[2]) for p in parts), n_variant)
    parts.append(("random", random_feeds(spec, known, n_random, rng), np.full(n_random, -1)))
    feeds = {s.name: np.concatenate([p[1][s.name] for p in parts]) for s in spec}
    groups = np.concatenate([np.full(len(p[2]), p[0], dtype=object) for p in parts])
    return ParityRows(feeds, groups, np.concatenate([p[2] for p in parts]).astype(np.int64))


def _rows(feeds: Mapping[str, np.ndarray], rows: np.ndarray) -> Feeds:
    return {k: np.asarray(v[rows]) for k, v in feeds.items()}


def _variant(spec: Sequence[TowerInput], feeds: Feeds, cold: bool, empty: bool) -> Feeds:
    """The same rows with the customer id unknown (``cold``) and/or no history (``empty``)."""
    out = dict(feeds)
    for s in spec:
        if (cold and s.role == "customer") or (empty and s.role in HISTORY_ROLES):
            out[s.name] = np.zeros_like(feeds[s.name])
    return out


def history_width(spec: Sequence[TowerInput], feeds: Mapping[str, np.ndarray]) -> int:
    """L, the padded history length of ``feeds`` (1 when the tower has no history input)."""
    for s in spec:
        if s.role in ("recent_items", "recent_mask"):
            return int(feeds[s.name].shape[1])
    return 1


def random_feeds(
    spec: Sequence[TowerInput], like: Mapping[str, np.ndarray], n: int, rng: np.random.Generator
) -> Feeds:
    """``n`` random but valid rows: indices within each vocabulary, histories of random
    length (0..L) padded at the end, standard-normal numeric features."""
    width = history_width(spec, like)
    lengths = rng.integers(0, width + 1, n)
    filled = np.arange(width)[None, :] < lengths[:, None]
    out: Feeds = {}
    for s in spec:
        shape = (n, *like[s.name].shape[1:])
        if s.role == "numeric":
            out[s.name] = rng.standard_normal(shape).astype(s.dtype)
        elif s.role == "recent_mask":
            out[s.name] = filled.astype(s.dtype)
        elif s.role == "recent_lengths":
            out[s.name] = lengths.astype(s.dtype)
        else:
            high = _high(s, like[s.name], shape)
            low = 1 if s.role == "recent_items" else 0
            values = rng.integers(low, np.maximum(high, low + 1), size=shape)
            if s.role == "recent_items":
                values = np.where(filled, values, 0)
            out[s.name] = values.astype(s.dtype)
    return out


def _high(s: TowerInput, seen: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Exclusive upper bounds broadcastable to ``shape``: the declared ones, else the largest
    value seen + 1 (never beyond what the embedding tables are known to hold)."""
    if s.high:
        high = np.asarray(s.high, dtype=np.int64)
        return high if len(high) == 1 or len(shape) == 1 else high[None, :]
    return np.asarray(int(seen.max(initial=0)) + 1)


def truncate_history(spec: Sequence[TowerInput], feeds: Feeds, width: int) -> Feeds:
    """Keep the first ``width`` history positions (lengths clipped to match)."""
    out = dict(feeds)
    for s in spec:
        if s.role in ("recent_items", "recent_mask"):
            out[s.name] = np.ascontiguousarray(feeds[s.name][:, :width])
        elif s.role == "recent_lengths":
            out[s.name] = np.minimum(feeds[s.name], width).astype(feeds[s.name].dtype)
    return out


def torch_runner(tower: torch.nn.Module, spec: Sequence[TowerInput]) -> Runner:
    """``feeds → (n, d) float32`` through the torch tower, arguments in ``spec`` order."""

    def run(feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        args = [torch.from_numpy(np.require(feeds[s.name], requirements=["C", "W"])) for s in spec]
        with torch.inference_mode():
            return tower(*args).float().cpu().numpy()

    return run


def run_batched(runner: Runner, feeds: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    """``runner`` over ``feeds`` in chunks of ``batch`` rows, concatenated."""
    n = len(next(iter(feeds.values())))
    chunks = [runner({k: v[i : i + batch] for k, v in feeds.items()}) for i in range(0, n, batch)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def check_parity(
    reference: Runner,
    candidate: Runner,
    spec: Sequence[TowerInput],
    rows: ParityRows,
    cfg: ParityConfig,
    batch: int,
    hints: Sequence[str] = (),
) -> ParityReport:
    """Compare the two runtimes on every row, then on the random rows with shorter
    histories (the dynamic axis) and on a few rows one at a time (batch of one).

    Raises ``ParityError`` (carrying the report) on any difference above the tolerance or
    any non-finite output in either runtime.
    """
    width = history_width(spec, rows.feeds)
    shorter = sorted({max(1, width // 2), 1} - {width}, reverse=True)
    random_rows = np.flatnonzero(rows.groups == "random")
    passes: list[tuple[str | None, int, np.ndarray, int]] = [
        (None, width, np.arange(len(rows)), batch),
        *((f"random, history {w}", w, random_rows, batch) for w in shorter),
        ("batch of one", width, np.arange(min(16, len(rows))), 1),
    ]
    diffs, kinds, index, hist = [], [], [], []
    for label, w, pick, size in passes:
        feeds = _rows(rows.feeds if w == width else truncate_history(spec, rows.feeds, w), pick)
        ref, cand = run_batched(reference, feeds, size), run_batched(candidate, feeds, size)
        diffs.append(_row_diff(ref, cand))
        kinds.append(rows.groups[pick] if label is None else np.full(len(pick), label, object))
        index.append(pick)
        hist.append(np.full(len(pick), w))
    diff, kind = np.concatenate(diffs), np.concatenate(kinds)
    report = _report(diff, kind, len(rows), cfg.tolerance, sorted({width, *shorter}))
    if not report.passed:
        row, lengths = np.concatenate(index), np.concatenate(hist)
        order = np.argsort(-np.nan_to_num(diff, nan=np.inf), kind="stable")[: cfg.report_rows]
        report.worst = [
            _worst_row(spec, rows, int(row[i]), float(diff[i]), int(lengths[i])) for i in order
        ]
        raise ParityError(report, hints)
    return report


def _report(
    diff: np.ndarray, kind: np.ndarray, n_rows: int, tolerance: float, lengths: list[int]
) -> ParityReport:
    """Summary of per-check differences ``diff`` (NaN: non-finite) by kind of row."""
    finite = np.isfinite(diff)
    groups = {
        str(g): {
            "rows": int((kind == g).sum()),
            "max_abs_diff": float(np.nan_to_num(diff[kind == g], nan=np.inf).max()),
        }
        for g in dict.fromkeys(kind.tolist())
    }
    return ParityReport(
        n_rows=n_rows,
        n_checks=len(diff),
        tolerance=tolerance,
        max_abs_diff=float(np.where(finite, diff, 0.0).max(initial=0.0)),
        groups=groups,
        history_lengths=lengths,
        non_finite_rows=int((~finite).sum()),
    )


def _row_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Max |a - b| per row; NaN where either side is not finite."""
    if a.shape != b.shape:
        raise ValueError(f"parity: torch gives {a.shape}, ONNX gives {b.shape}")
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=1, initial=0.0)
    bad = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))
    diff[bad] = np.nan
    return diff


def _worst_row(
    spec: Sequence[TowerInput], rows: ParityRows, i: int, diff: float, history: int
) -> dict[str, Any]:
    inputs = {s.name: np.asarray(rows.feeds[s.name][i]).tolist() for s in spec}
    return {
        "row": i,
        "group": str(rows.groups[i]),
        "source": int(rows.source[i]),
        "history": history,
        "diff": diff,
        "inputs": inputs,
    }
