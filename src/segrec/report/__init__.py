"""The segment report: size, revenue, growth, top items and migration per segment label.

``build_segment_report`` computes the tables; ``write_segment_report`` writes a
self-contained HTML page with plots, Markdown, and Parquet tables.
"""

from segrec.report.build import SegmentReport, build_segment_report, write_segment_report

__all__ = ["SegmentReport", "build_segment_report", "write_segment_report"]
