"""The claim-status report: ``claims.json``, ``claims.md`` and ``index.html``, published as one unit.

The report is built from plain dicts (``Evidence.to_dict()`` records), never
from the statistics objects, so it can be rebuilt from the JSON alone
(``python -m analysis.report reports/ci/claims.json``). One module per job:

- :mod:`~analysis.report.document`: the document (schema version 2) —
  :func:`build_report`, its input checks, :func:`load_report`;
- :mod:`~analysis.report.markdown` and :mod:`~analysis.report.html`: the two
  views, worded once in ``_view``;
- :mod:`~analysis.report.compare`: two reports side by side;
- :mod:`~analysis.report.publish`: files that follow the umask, forest plots,
  the staging directory swapped in atomically, :func:`check_report_dir`;
- :mod:`~analysis.report.cli`: the command line.

A run uses it as::

    check_report_dir(report_dir)                  # before any work
    staging = new_staging_dir(report_dir)         # figures go to staging / "figures"
    ...
    doc = build_report(records, run=run, regression=regression)
    publish_report(doc, staging, report_dir)
"""
from __future__ import annotations

from ._view import format_number, format_p
from .cli import main
from .compare import compare_reports, render_compare_html, render_compare_markdown, write_compare
from .document import (
    PAPERS,
    REGRESSION_STATUSES,
    RUN_KEYS,
    SCHEMA_VERSION,
    VERDICTS,
    ReportError,
    ReportSchemaError,
    build_report,
    forest_rows,
    load_report,
    paper_of,
    pivot_tables,
)
from .html import render_html
from .markdown import render_markdown
from .publish import check_report_dir, new_staging_dir, publish_report, write_report

__all__ = [
    "PAPERS",
    "REGRESSION_STATUSES",
    "RUN_KEYS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "ReportError",
    "ReportSchemaError",
    "build_report",
    "check_report_dir",
    "compare_reports",
    "forest_rows",
    "format_number",
    "format_p",
    "load_report",
    "main",
    "new_staging_dir",
    "paper_of",
    "pivot_tables",
    "publish_report",
    "render_compare_html",
    "render_compare_markdown",
    "render_html",
    "render_markdown",
    "write_compare",
    "write_report",
]
