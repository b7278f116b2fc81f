"""Configuration problems, each naming the family and the field at fault.

A segment config is checked against the data before any work starts, and every problem is
reported at once, so that a user fixes a YAML file in one pass rather than one error a run.
"""

from __future__ import annotations

from itertools import pairwise

UNKNOWN_LABEL = "unknown"


class SegmentConfigError(ValueError):
    """A family's configuration does not fit the data; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("segment configuration:\n  - " + "\n  - ".join(problems))


def where(kind: str, family: str, field: str) -> str:
    """The config path of a field, as a user would type it: ``segments.rfm.rfm.bins``."""
    return f"segments.{kind}.{family}.{field}"


def check_edges(edges: list[float] | None, path: str) -> list[str]:
    """Bucket edges must be strictly increasing, or the buckets would overlap or be empty."""
    if edges is None:
        return []
    if not edges:
        return [f"{path}: give at least one edge, or null"]
    if any(b <= a for a, b in pairwise(edges)):
        return [f"{path}: edges must be strictly increasing, got {list(edges)}"]
    return []


def raise_if(problems: list[str]) -> None:
    if problems:
        raise SegmentConfigError(problems)
