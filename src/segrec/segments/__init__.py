"""Segment families: every customer gets one label per family, as of a date.

Kinds: attribute (a column, or numeric bands), RFM (codes or named groups), rules
(first matching rule), learned (k-means over spend profiles or any customer vectors).
Declared in ``conf/segments/*.yaml``; ``unknown`` wherever a family lacks inputs.
"""

from segrec.segments.assign import Segmenter, assign_segments, check_segments
from segrec.segments.config import (
    AttributeFamilyConfig,
    LearnedFamilyConfig,
    RFMFamilyConfig,
    RFMGroup,
    RuleConfig,
    RulesFamilyConfig,
    SegmentReportConfig,
    SegmentsConfig,
)
from segrec.segments.errors import UNKNOWN_LABEL, SegmentConfigError
from segrec.segments.history import resolve_as_of
from segrec.segments.learned import CustomerVectors, LearnedModel
from segrec.segments.rfm import RFMEdges
from segrec.segments.vocab import SegmentVocabularies

__all__ = [
    "UNKNOWN_LABEL",
    "AttributeFamilyConfig",
    "CustomerVectors",
    "LearnedFamilyConfig",
    "LearnedModel",
    "RFMEdges",
    "RFMFamilyConfig",
    "RFMGroup",
    "RuleConfig",
    "RulesFamilyConfig",
    "SegmentConfigError",
    "SegmentReportConfig",
    "SegmentVocabularies",
    "Segmenter",
    "SegmentsConfig",
    "assign_segments",
    "check_segments",
    "resolve_as_of",
]
