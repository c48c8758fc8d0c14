"""Reports: one self-contained HTML file (plots embedded) or Markdown with PNGs beside it."""

from xsched_ops.report.build import FORMATS, write_report

__all__ = ["FORMATS", "write_report"]
