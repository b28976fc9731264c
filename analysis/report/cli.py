"""Command line: rebuild ``claims.md`` and ``index.html`` from a ``claims.json``, or compare two runs.

::

    python -m analysis.report reports/ci/claims.json
    python -m analysis.report --compare A.json B.json --out DIR

Bad input ends with one line on stderr and exit status 2; a failed write with
one line and status 1.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .compare import compare_reports, render_compare_markdown, write_compare
from .document import ReportError, load_report
from .publish import write_views

__all__ = ["main"]

PROG = "python -m analysis.report"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Rebuild claims.md and index.html from a claims.json (nothing is re-run), "
                    "or compare two runs side by side.",
    )
    parser.add_argument("report", nargs="?", type=Path,
                        help="claims.json to rebuild claims.md and index.html from (written next to it)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="compare two claims.json files; writes compare.md and compare.html, prints the Markdown")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for compare.md/compare.html (default: the current directory)")
    return parser


def _side_labels(a: Mapping, b: Mapping, path_a: Path, path_b: Path) -> list[str]:
    la, lb = str(a["run"].get("profile") or path_a), str(b["run"].get("profile") or path_b)
    return [la, lb] if la != lb else [str(path_a), str(path_b)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 done, 1 a write failed, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.compare and args.report:
        parser.error("give either a claims.json to rebuild or --compare A.json B.json, not both")
    if not args.compare and not args.report:
        parser.error("give a claims.json to rebuild, or --compare A.json B.json")
    if args.out is not None and not args.compare:
        parser.error("--out applies to --compare only (a rebuild writes next to the claims.json)")
    try:
        docs = [load_report(path) for path in (args.compare or [args.report])]
    except ReportError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    try:
        if args.compare:
            comparison = compare_reports(*docs, labels=_side_labels(*docs, *args.compare))
            paths = write_compare(comparison, args.out if args.out is not None else Path.cwd())
            sys.stdout.write(render_compare_markdown(comparison))
        else:
            paths = write_views(docs[0], args.report.parent)
    except OSError as error:
        print(f"{PROG}: error: could not write: {error}", file=sys.stderr)
        return 1
    print(f"wrote {paths['markdown']} and {paths['html']}", file=sys.stderr)
    return 0
