"""Reports rendered from stored results only: tables with units, plots, skipped reasons, provenance."""

from ailab.report.render import render_day, report_day, report_week, table_md

__all__ = ["render_day", "report_day", "report_week", "table_md"]
