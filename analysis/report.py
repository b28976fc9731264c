"""The claim-status report: ``claims.json``, ``claims.md`` and ``index.html``.

The report is built from plain dicts (``Evidence.to_dict()`` records), never
from the statistics objects themselves, so it can be rebuilt from the JSON
alone::

    python -m analysis.report reports/ci/claims.json        # rebuild md + html
    python -m analysis.report --compare A.json B.json --out DIR

``claims.json`` is the document returned by :func:`build_report` (versioned by
``schema_version``); ``claims.md`` renders on a code host; ``index.html`` is
self-contained: CSS inline, every figure embedded as a ``data:`` URI, a
Content-Security-Policy that forbids any network request, and an optional
inline self-check script (the page reads fine without JavaScript) that records
on ``<html>`` whether every figure decoded (``data-figures-ok``) and any page
error (``data-page-errors``) for the browser test.

Rendering is a pure function of the document (plus the figure files it
names), so the CLI rebuild is byte-identical to :func:`write_report`'s output.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import os
import platform
import re
import sys
import shutil
import tempfile
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from analysis._validation import invalid

__all__ = [
    "PAPERS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "ReportError",
    "ReportSchemaError",
    "build_report",
    "check_report_dir",
    "new_staging_dir",
    "publish_report",
    "collect_environment",
    "compare_reports",
    "format_number",
    "format_p",
    "load_report",
    "main",
    "paper_of",
    "render_compare_html",
    "render_compare_markdown",
    "render_html",
    "render_markdown",
    "write_compare",
    "write_report",
]

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (2,)

VERDICTS = ("supported", "refuted", "inconclusive", "error")

#: Paper key (claim-id prefix) -> short citation, in report order (CLAIMS.md).
PAPERS: dict[str, str] = {
    "MW": "Mason-Williams, Neural Network Compression: The Functional Perspective",
    "GC": "Garcia Caño, Investigating the orthogonality of model compression by pruning and knowledge distillation",
    "MH": "Malihi & Heidemann, Matching the Ideal Pruning Method with Knowledge Distillation for Optimal Compression",
    "SH": "Saeed, Haroon & Khan, Deep Models Compression",
}

_VERDICT_MARK = {"supported": "✅", "refuted": "❌", "inconclusive": "❔", "error": "⚠️"}
_VERDICT_COLOUR = {"supported": "#1a7f37", "refuted": "#cf222e", "inconclusive": "#9a6700", "error": "#6e7781"}
_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".gif": "image/gif", ".webp": "image/webp"}
_REQUIRED_RECORD_KEYS = ("claim_id", "instance_id", "verdict")
_PACKAGES = (("torch", "torch"), ("torchvision", "torchvision"), ("numpy", "numpy"), ("scipy", "scipy"),
             ("statsmodels", "statsmodels"), ("sklearn", "scikit-learn"), ("matplotlib", "matplotlib"))
DASH = "—"


class ReportSchemaError(ValueError):
    """A report JSON that is not a claims report of a supported schema version."""


class ReportError(OSError):
    """The report directory cannot be used or the report cannot be published; the message names the path."""


# ---------------------------------------------------------------- formatting

def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def format_p(p: object) -> str:
    """Format a p-value: 3 significant digits, scientific below 0.001, ``—`` for None.

    Examples
    --------
    >>> format_p(0.04321), format_p(0.5), format_p(1.234e-7), format_p(None)
    ('0.0432', '0.500', '1.23e-07', '—')
    """
    value = _finite(p)
    if value is None:
        return DASH if p is None else str(p)
    if value == 0.0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:#.3g}".rstrip(".")


def format_number(x: object, digits: int = 4) -> str:
    """Format a statistic, effect or measured value for the report.

    ``None`` → ``—``; floats to ``digits`` significant digits (scientific
    when very small or large); ints, strings and bools as they are; lists as
    ``a / b``; dicts as ``k=v, …``.
    """
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == 0.0:
            return "0"
        return f"{x:.{digits}g}"
    if isinstance(x, Mapping):
        return ", ".join(f"{k}={format_number(v, digits)}" for k, v in x.items()) or DASH
    if isinstance(x, (list, tuple)):
        return " / ".join(format_number(v, digits) for v in x) or DASH
    return str(x)


def _format_ci(record: Mapping) -> str:
    ci = record.get("ci")
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or all(v is None for v in ci):
        return ""
    level = _finite(record.get("ci_level"))
    prefix = f"{level * 100:g} % CI " if level is not None and level <= 1 else (
        f"{level:g} % CI " if level is not None else "CI ")
    return f"{prefix}[{format_number(ci[0])}, {format_number(ci[1])}]"


def _format_effect(record: Mapping, *, with_name: bool = True) -> str:
    effect = record.get("effect")
    text = format_number(effect)
    if record.get("scale") == "log ratio" and _finite(effect) is not None:
        text += f" (ratio {format_number(math.exp(effect), 3)})"
    name = record.get("effect_name")
    if with_name and name and effect is not None:
        text = f"{name} = {text}"
    ci = _format_ci(record)
    return f"{text} ({ci})" if ci else text


def _format_params(params: object) -> str:
    if not isinstance(params, Mapping) or not params:
        return ""
    return ", ".join(f"{k}={format_number(v)}" for k, v in params.items())


# ---------------------------------------------------------------- JSON safety

def _jsonable(value: object) -> object:
    """Plain JSON types only: numpy scalars/arrays, tuples and Paths converted; NaN/inf → None.

    Browsers' ``JSON.parse`` and strict parsers reject NaN, so non-finite
    floats are written as null (the report shows them as ``—``).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, CPU tensors
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


# ---------------------------------------------------------------- building

def paper_of(claim_id: str) -> str:
    """Paper key of a claim id: the prefix before the first ``-`` (``"MW-3"`` → ``"MW"``)."""
    return str(claim_id).split("-", 1)[0]


def _claim_number(claim_id: str) -> float:
    tail = str(claim_id).split("-", 1)[-1]
    digits = "".join(ch for ch in tail if ch.isdigit() or ch == ".")
    try:
        return float(digits)
    except ValueError:
        return math.inf


def _paper_order(paper: str) -> tuple[int, str]:
    order = list(PAPERS)
    return (order.index(paper), paper) if paper in order else (len(order), paper)


def _record_key(record: Mapping) -> tuple:
    return (_paper_order(paper_of(record["claim_id"])), _claim_number(record["claim_id"]),
            str(record["claim_id"]), str(record["instance_id"]))


def _anchor(label: str) -> str:
    # HTML ids must not contain spaces; the hash keeps "α=0.1" and "β=0.1" apart.
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
    return f"claim-{slug}-{hashlib.sha1(label.encode('utf-8')).hexdigest()[:6]}"


def _label(record: Mapping) -> str:
    instance = str(record.get("instance_id", ""))
    claim = str(record.get("claim_id", ""))
    return instance if instance.startswith(claim) else f"{claim} {instance}".strip()


def collect_environment(device_name: str | None = None) -> dict:
    """Versions of Python and the numerical stack, the platform and the device.

    Package versions come from installed distribution metadata (nothing is
    imported). ``device_name`` defaults to the CUDA device's name when torch is
    already imported and a GPU is visible, else the CPU's.
    """
    from importlib import metadata

    env: dict[str, object] = {"python": platform.python_version()}
    for key, dist in _PACKAGES:
        try:
            env[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[key] = None
    env["platform"] = platform.platform()
    if device_name is None:
        torch = sys.modules.get("torch")
        try:
            if torch is not None and torch.cuda.is_available():
                device_name = torch.cuda.get_device_name()
        except Exception:  # a broken CUDA setup must not break the report
            device_name = None
        device_name = device_name or platform.processor() or platform.machine() or "cpu"
    env["device_name"] = device_name
    return env


def _check_record(index: int, record: object) -> dict:
    owner = "build_report"
    if not isinstance(record, Mapping):
        raise invalid(f"records[{index}]", owner, "a dict (Evidence.to_dict())", type(record).__name__)
    for key in _REQUIRED_RECORD_KEYS:
        if not isinstance(record.get(key), str) or not record.get(key):
            raise invalid(f"records[{index}][{key!r}]", owner, "a non-empty str", record.get(key))
    if record["verdict"] not in VERDICTS:
        raise invalid(f"records[{index}]['verdict']", owner, "one of " + ", ".join(map(repr, VERDICTS)),
                      record["verdict"])
    figures = record.get("figures") or []
    if not isinstance(figures, (list, tuple)) or not all(isinstance(f, (str, Path)) for f in figures):
        raise invalid(f"records[{index}]['figures']", owner, "a list of paths relative to the report folder",
                      figures)
    return dict(_jsonable(record))


def _check_tables(tables: Iterable[Mapping]) -> list[dict]:
    owner = "build_report"
    checked = []
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping) or "title" not in table or "columns" not in table:
            raise invalid(f"tables[{i}]", owner, "a dict with 'title', 'columns', 'rows' (and optional 'note')",
                          table)
        columns = list(table["columns"])
        rows = [list(row) for row in table.get("rows", [])]
        for j, row in enumerate(rows):
            if len(row) != len(columns):
                raise invalid(f"tables[{i}]['rows'][{j}]", owner, f"a row of {len(columns)} cells",
                              f"{len(row)} cells")
        checked.append({"title": str(table["title"]), "columns": [str(c) for c in columns],
                        "rows": _jsonable(rows), "note": table.get("note")})
    return checked


def _check_figures(figures: Iterable[Mapping]) -> list[dict]:
    checked = []
    for i, figure in enumerate(figures):
        if not isinstance(figure, Mapping) or not isinstance(figure.get("path"), (str, Path)):
            raise invalid(f"figures[{i}]", "build_report", "a dict with 'title' and 'path'", figure)
        checked.append({"title": str(figure.get("title") or Path(figure["path"]).stem),
                        "path": Path(figure["path"]).as_posix()})
    return checked


def _pivot_tables(records: Sequence[Mapping]) -> list[dict]:
    """Turn every record's ``details['table_rows']`` into tables (rows × columns, cells 'ours (paper)')."""
    cells: dict[str, dict[str, dict[str, str]]] = {}
    columns: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    for r in records:
        for row in (r.get("details") or {}).get("table_rows", []):
            t = row["table"]
            cols = columns.setdefault(t, [])
            if row["column"] not in cols:
                cols.append(row["column"])
            fmt = row.get("format", "+.2f")
            paper = DASH if row.get("paper") is None else format(row["paper"], fmt)
            cells.setdefault(t, {}).setdefault(row["row"], {})[row["column"]] = f"{format(row['ours'], fmt)} ({paper})"
            notes.setdefault(t, row.get("note", ""))
    return [{"title": t, "columns": ["experiment", *columns[t]],
             "rows": [[exp, *[rows[exp].get(c, DASH) for c in columns[t]]] for exp in sorted(rows)],
             "note": " ".join(x for x in ("Each cell: ours (paper).", notes[t]) if x)} for t, rows in cells.items()]


def _claim_figures(claims: Sequence[Mapping]) -> dict[str, list[str]]:
    """Every claim's figures, each once, in first-mention order."""
    out: dict[str, list[str]] = {}
    for r in claims:
        seen = out.setdefault(r["claim_id"], [])
        for f in r.get("figures") or []:
            if Path(f).as_posix() not in seen:
                seen.append(Path(f).as_posix())
    return out


def _summary(records: Sequence[Mapping], regression: Mapping | None) -> dict:
    counts = {verdict: 0 for verdict in VERDICTS}
    per_paper: dict[str, dict[str, int]] = {}
    for record in records:
        counts[record["verdict"]] += 1
        paper = per_paper.setdefault(paper_of(record["claim_id"]), {verdict: 0 for verdict in VERDICTS})
        paper[record["verdict"]] += 1
    for paper in per_paper.values():
        paper["total"] = sum(paper[v] for v in VERDICTS)
    asserted = [r for r in records if r.get("asserted", True) and r["verdict"] != "error" and r.get("power") is not None]
    powered = sum(1 for r in asserted if r["power"] >= 0.8)
    return {
        "total": len(records),
        "verdicts": counts,
        "per_paper": {paper: per_paper[paper] for paper in sorted(per_paper, key=_paper_order)},
        "asserted_tested": len(asserted),
        "powered": powered,
        "powered_share": (powered / len(asserted)) if asserted else None,
        "underpowered": sum(1 for r in records if r.get("underpowered")),
        "cannot_decide": sum(1 for r in records if r.get("cannot_decide")),
        "fragile": sum(1 for r in records if r.get("fragile")),
        "not_asserted": sum(1 for r in records if not r.get("asserted", True)),
        "regression": None if regression is None else regression.get("summary"),
    }


def build_report(
    records: Sequence[Mapping],
    *,
    run: Mapping,
    regression: Mapping | None = None,
    tables: Iterable[Mapping] | None = None,
) -> dict:
    """Assemble the claims report document (what ``claims.json`` holds).

    Parameters
    ----------
    records : sequence of dict
        One ``Evidence.to_dict()`` per claim instance (analysis/evidence.py
        lists the fields); sorted by paper, claim number and instance id.
    run : dict
        The run: profile, environment, baseline, deviations, seeds, wall time, artifacts.
    regression : dict, optional
        ``Comparison.as_report()``: the findings regression (None: not compared).
    tables : iterable of dict, optional
        Paper-vs-ours tables; default: pivoted from the records' ``details['table_rows']``.

    Returns
    -------
    dict
        ``{"schema_version", "run", "summary", "claims", "tables", "figures", "regression"}``;
        ``figures`` maps each claim id to its figures (each once); JSON-safe.
    """
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        raise invalid("records", "build_report", "a list of dicts", type(records).__name__)
    if not isinstance(run, Mapping):
        raise invalid("run", "build_report", "a dict describing the run", type(run).__name__)
    claims = sorted((_check_record(i, r) for i, r in enumerate(records)), key=_record_key)
    seen: set[tuple[str, str]] = set()
    for record in claims:
        key = (record["claim_id"], record["instance_id"])
        if key in seen:
            raise invalid("records", "build_report", "unique (claim_id, instance_id) pairs", f"{key[1]!r} twice")
        seen.add(key)
    run_doc = dict(run)
    if not run_doc.get("environment"):
        run_doc["environment"] = collect_environment()
    return {
        "schema_version": SCHEMA_VERSION,
        "run": _jsonable(run_doc),
        "summary": _summary(claims, regression),
        "claims": claims,
        "tables": _check_tables(_pivot_tables(claims) if tables is None else tables),
        "figures": _claim_figures(claims),
        "regression": None if regression is None else _jsonable(regression),
    }


# ---------------------------------------------------------------- shared text

def _verdict_line(summary: Mapping) -> str:
    counts = summary["verdicts"]
    parts = [f"{counts.get(v, 0)} {v}" for v in VERDICTS]
    return " · ".join(parts) + f" ({summary['total']} claim instances)"


def _changes_line(summary: Mapping) -> str:
    return summary.get("regression") or "no findings baseline compared"


def _power_line(summary: Mapping) -> str:
    share = summary.get("powered_share")
    if share is None:
        return "no asserted tested instance"
    return (f"{summary['powered']} of {summary['asserted_tested']} asserted instances ({share:.0%}) reach power 0.8 "
            f"at their effect of interest; {summary['underpowered']} underpowered, {summary['cannot_decide']} cannot "
            f"decide, {summary['fragile']} fragile, {summary['not_asserted']} reported only")


def _labels(record: Mapping) -> list[str]:
    """Warnings a reader must see beside the verdict."""
    out = []
    if not record.get("asserted", True):
        out.append("not asserted: " + (record.get("not_asserted_reason") or "reported only"))
    if record.get("cannot_decide"):
        out.append("cannot decide")
    elif record.get("underpowered"):
        out.append("underpowered")
    if record.get("fragile"):
        out.append("fragile")
    if record.get("conditional_on"):
        out.append(f"conditional on {record['conditional_on']}")
    return out


def _decision(record: Mapping) -> str:
    """The p that decided the verdict (adjusted; both when inconclusive)."""
    by = record.get("decided_by")
    if by == "support":
        return f"support p_adj = {format_p(record.get('p_adjusted'))}"
    if by == "refute":
        return f"refute p_adj = {format_p(record.get('p_refute_adjusted'))}"
    if record.get("p_adjusted") is None and record.get("p_refute_adjusted") is None:
        return record.get("form") or DASH
    return (f"support p_adj = {format_p(record.get('p_adjusted'))}; "
            f"refute p_adj = {format_p(record.get('p_refute_adjusted'))}")


def _power_text(record: Mapping) -> str:
    if record.get("power") is None:
        return DASH
    mde = record.get("mde")
    if mde is None and (record.get("power_detail") or {}).get("mde"):
        mde = "none"
    eoi = record.get("effect_of_interest")
    return (f"{format_number(record['power'], 2)} at {format_number(eoi, 3)}; MDE {format_number(mde, 3)}"
            if eoi is not None else f"{format_number(record['power'], 2)}")


def _title(doc: Mapping) -> str:
    profile = doc.get("run", {}).get("profile")
    return f"Claim-status report — profile {profile}" if profile else "Claim-status report"


def _claims_by_paper(doc: Mapping) -> dict[str, list[Mapping]]:
    grouped: dict[str, list[Mapping]] = {}
    for record in doc.get("claims", []):
        grouped.setdefault(paper_of(record["claim_id"]), []).append(record)
    return grouped


def _environment_rows(run: Mapping) -> list[tuple[str, str]]:
    artifacts = run.get("artifacts") or {}
    rows = [
        ("profile", format_number(run.get("profile"))),
        ("profile hash", format_number(run.get("profile_hash"))),
        ("seeds", ", ".join(format_number(s) for s in run["seeds"]) if isinstance(run.get("seeds"), list)
         else format_number(run.get("seeds"))),
        ("device", format_number(run.get("device"))),
        ("wall time (s)", format_number(run.get("wall_time_s"))),
        ("artifacts built / loaded",
         f"{format_number(artifacts.get('built'))} / {format_number(artifacts.get('loaded'))}"),
    ]
    known = {"profile", "profile_hash", "seeds", "device", "wall_time_s", "artifacts", "environment", "baseline",
             "deviations"}
    rows += [(str(k), format_number(v)) for k, v in run.items() if k not in known]
    rows += [(str(k), format_number(v)) for k, v in (run.get("environment") or {}).items()]
    baseline = run.get("baseline")
    if isinstance(baseline, Mapping):
        rows.append(("baseline", f"{format_number(baseline.get('path'))}, recorded {format_number(baseline.get('recorded'))}"))
        rows.append(("baseline environment differs", "; ".join(baseline.get("differences") or []) or "no"))
    return rows


# ---------------------------------------------------------------- Markdown

def _md_cell(value: object) -> str:
    text = value if isinstance(value, str) else format_number(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def _md_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_link(path: str) -> str:
    return quote(Path(path).as_posix(), safe="/-_.~")


def _verdict_md(verdict: str) -> str:
    return f"{_VERDICT_MARK.get(verdict, '')} {verdict}".strip()


_CLAIM_COLUMNS = ("Instance", "Verdict", "Form", "Deciding p", "Effect [CI]", "Units", "Power / MDE", "Stability",
                  "Baseline")


def _regression_text(record: Mapping, regression: Mapping | None) -> str:
    if not regression:
        return DASH
    entry = (regression.get("instances") or {}).get(record["instance_id"])
    if not entry:
        return DASH
    status = entry.get("status", DASH)
    return f"{status} (FAILS)" if entry.get("failed") else status


def _claim_row(record: Mapping, regression: Mapping | None = None) -> list[str]:
    verdict = _verdict_md(record["verdict"]) + "".join(f" *{x}*" for x in _labels(record))
    units = (record.get("n") or {}).get("units") if isinstance(record.get("n"), Mapping) else record.get("n")
    return [
        _label(record), verdict, format_number(record.get("form")), _decision(record),
        _format_effect(record, with_name=False), format_number(units), _power_text(record),
        format_number(record.get("stability"), 2), _regression_text(record, regression),
    ]


def render_markdown(doc: Mapping) -> str:
    """Render the report document as Markdown (``claims.md``)."""
    summary = doc["summary"]
    run = doc.get("run", {})
    out = [f"# {_title(doc)}", ""]
    out += [f"**Verdicts:** {_verdict_line(summary)}  ", f"**Power:** {_power_line(summary)}  ",
            f"**Since baseline:** {_changes_line(summary)}", ""]

    out += ["## Summary", ""]
    rows = [[f"{paper} — {PAPERS.get(paper, paper)}" if paper in PAPERS else paper]
            + [counts[v] for v in VERDICTS] + [counts["total"]]
            for paper, counts in summary["per_paper"].items()]
    rows.append(["**all**"] + [summary["verdicts"][v] for v in VERDICTS] + [summary["total"]])
    out += _md_table(["Paper", *VERDICTS, "total"], rows) + [""]

    regression = doc.get("regression")
    out += ["## Findings regression", ""] + _regression_lines(doc) + [""]

    figures = doc.get("figures") or {}
    for paper, records in _claims_by_paper(doc).items():
        out += [f"## {paper} — {PAPERS.get(paper, paper)}", ""]
        out += _md_table(_CLAIM_COLUMNS, (_claim_row(r, regression) for r in records)) + [""]
        for claim_id, instances in _by_claim(records).items():
            out += [f"### {claim_id}", ""]
            if instances[0].get("sentence"):
                out += [f"> {' '.join(str(instances[0]['sentence']).split())}", ""]
            for path in figures.get(claim_id, []):
                out += [f"![{claim_id}]({_md_link(path)})", ""]
            for record in instances:
                out += _md_claim_section(record)

    if doc.get("tables"):
        out += ["## Tables", ""]
        for table in doc["tables"]:
            out += [f"### {table['title']}", ""] + _md_table(table["columns"], table["rows"]) + [""]
            if table.get("note"):
                out += [f"*{table['note']}*", ""]

    out += ["## Declared deviations from the papers", ""]
    out += _md_table(["Claims", "Setting", "Paper", "Ours", "Why"],
                     [[d.get("claims"), d.get("setting"), d.get("paper"), d.get("ours"), d.get("why") or DASH]
                      for d in run.get("deviations") or []]) + [""]
    out += ["## Environment", ""]
    out += _md_table(["", ""], _environment_rows(run)) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _by_claim(records: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    out: dict[str, list[Mapping]] = {}
    for r in records:
        out.setdefault(r["claim_id"], []).append(r)
    return out


def _regression_lines(doc: Mapping) -> list[str]:
    regression = doc.get("regression")
    if not regression:
        return ["No findings baseline was compared."]
    lines = [str(regression.get("summary"))]
    for diff in regression.get("environment_differences") or []:
        lines.append(f"- baseline recorded under another environment: {diff}")
    for iid, entry in sorted((regression.get("instances") or {}).items()):
        if entry.get("status") not in ("unchanged", None):
            lines.append(f"- {'**FAILS** ' if entry.get('failed') else ''}{entry.get('line') or iid}")
    return lines


_PART_COLUMNS = ("Part", "Form", "p support", "p refute", "Effect [CI]", "Effect of interest", "Decided")


def _part_rows(record: Mapping) -> list[list[str]]:
    return [[p.get("name"), p.get("form"), format_p(p.get("p_support")), format_p(p.get("p_refute")),
             _format_effect(p, with_name=False), format_number(p.get("effect_of_interest"), 3),
             "◀" if p.get("decided") else ""] for p in record.get("parts") or []]


def _instance_items(record: Mapping) -> list[tuple[str, str]]:
    """(label, text) pairs describing one instance, shared by the Markdown and HTML views."""
    items = [("Verdict", record["verdict"] + "".join(f"; {x}" for x in _labels(record)))]
    params = _format_params(record.get("params"))
    if params:
        items.append(("Parameters", params))
    items += [
        ("Paper", format_number(record.get("paper_value"))),
        ("Ours", format_number(record.get("ours_value"))),
        ("Unit", format_number(record.get("unit") or DASH) + f" (n = {format_number(record.get('n'))})"),
        ("Test", format_number(record.get("test"))),
        ("Decided by", _decision(record) + f" at α = {format_number(record.get('alpha'))}"),
        ("p raw (support / refute)", f"{format_p(record.get('p_value'))} / {format_p(record.get('p_refute'))}"),
        ("Effect", _format_effect(record)),
    ]
    if record.get("power") is not None:
        detail = record.get("power_detail") or {}
        items.append(("Power", f"{format_number(record['power'], 3)} at the effect of interest "
                               f"{format_number(record.get('effect_of_interest'), 3)} (level {format_number(detail.get('level'), 3)}, "
                               f"{format_number(detail.get('simulations'))} simulations); minimum detectable effect "
                               f"at 80 %: {detail.get('mde') or format_number(record.get('mde'), 3)}"))
    if record.get("stability") is not None:
        items.append(("Stability", f"{format_number(record['stability'], 3)} of unit resamples give the same verdict"))
    for d in record.get("deviations") or []:
        items.append(("Deviation", str(d)))
    items += [("Note", str(n)) for n in record.get("notes") or []]
    return items


def _md_claim_section(record: Mapping) -> list[str]:
    out = [f"#### {_label(record)}", ""]
    out += [f"- **{k}:** {v}" for k, v in _instance_items(record)] + [""]
    if len(record.get("parts") or []) > 1:
        out += _md_table(_PART_COLUMNS, _part_rows(record)) + [""]
    return out


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1.5rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
h3{margin-bottom:.3rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
.verdict{display:inline-block;padding:.05rem .45rem;border-radius:.8rem;color:#fff;font-weight:600;font-size:.82rem}
.supported{background:#1a7f37}.refuted{background:#cf222e}.inconclusive{background:#9a6700}.error{background:#6e7781}
.counts span{margin-right:.6rem}.claim{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}
.claim dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:.4rem 0}
.claim dt{font-weight:600}.claim dd{margin:0}
blockquote{margin:.4rem 0;padding:.2rem .8rem;border-left:4px solid #d0d7de;color:#57606a}
.warning{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.4rem .8rem;margin:.4rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #d0d7de}
figcaption{font-size:.85rem;color:#57606a}
.missing{color:#cf222e}.note{font-style:italic;color:#57606a}code{font-size:.85rem}
#verdicts table{font-size:.8rem}#verdicts td{word-break:break-word}
.label{display:inline-block;font-size:.72rem;background:#fff8c5;border:1px solid #d4a72c;border-radius:.6rem;padding:0 .35rem}.diff td.changed{background:#ffebe9}.diff td.moved{background:#fff8c5}
"""

# Optional self-check, run on load: did every figure decode, did anything on
# the page raise or log an error? The result lands on <html> as data-*
# attributes so a headless browser's --dump-dom can read it; nothing else
# depends on it.
_SELF_CHECK = """
(function(){
  var errors=[];
  function note(m){errors.push(String(m));}
  window.addEventListener('error',function(e){
    note(e.message||('failed to load '+((e.target&&(e.target.src||e.target.href))||'resource')));},true);
  window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+e.reason);});
  var consoleError=console.error;
  console.error=function(){note(Array.prototype.join.call(arguments,' '));
    return consoleError.apply(console,arguments);};
  document.addEventListener('securitypolicyviolation',function(e){note('CSP blocked '+e.blockedURI);});
  window.addEventListener('load',function(){
    var root=document.documentElement,imgs=document.images,ok=0;
    for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}
    root.setAttribute('data-figures-total',String(imgs.length));
    root.setAttribute('data-figures-decoded',String(ok));
    root.setAttribute('data-figures-ok',String(ok===imgs.length));
    root.setAttribute('data-page-errors',JSON.stringify(errors));
  });
})();
""".strip()


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SELF_CHECK.encode("utf-8")).digest()).decode("ascii")
    # Nothing may be fetched: images only from data: URIs, only our own script.
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def _e(value: object) -> str:
    return html.escape(value if isinstance(value, str) else format_number(value), quote=True)


def _verdict_html(verdict: str) -> str:
    css = verdict if verdict in VERDICTS else "error"
    return f'<span class="verdict {css}">{html.escape(verdict)}</span>'


def _html_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """Table; cells are escaped unless ``raw`` (then they are already HTML)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(base_dir: Path, relative: str) -> str | None:
    path = Path(relative)
    path = path if path.is_absolute() else base_dir / path
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_figure(base_dir: Path, path: str, caption: str) -> str:
    uri = _data_uri(base_dir, path)
    if uri is None:
        return f'<p class="missing">Figure not found: <code>{_e(path)}</code></p>'
    return (f'<figure><img src="{uri}" alt="{_e(caption)}" loading="eager">'
            f"<figcaption>{_e(caption)} (<code>{_e(path)}</code>)</figcaption></figure>")


def _html_claim(record: Mapping) -> str:
    labels = "".join(f' <span class="label">{_e(x)}</span>' for x in _labels(record))
    parts = [f'<article class="claim" id="{_anchor(_label(record))}"><h4>{_e(_label(record))} '
             f"{_verdict_html(record['verdict'])}{labels}</h4>"]
    parts.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _instance_items(record)) + "</dl>")
    if len(record.get("parts") or []) > 1:
        parts.append(_html_table(_PART_COLUMNS, _part_rows(record)))
    parts.append("</article>")
    return "".join(parts)


def _html_page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_csp()}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n"
        f"<script>{_SELF_CHECK}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def render_html(doc: Mapping, base_dir: str | Path) -> str:
    """Render the report document as one self-contained HTML page (``index.html``).

    Parameters
    ----------
    doc : dict
        The report document.
    base_dir : str or Path
        Folder the figure paths are relative to (the report folder); every
        figure found there is embedded as a base64 ``data:`` URI, a missing
        one is named in the page.
    """
    base_dir = Path(base_dir)
    summary = doc["summary"]
    run = doc.get("run", {})
    body = [f"<header><h1>{_e(_title(doc))}</h1>"]
    counts = "".join(f"<span>{_verdict_html(v)} {summary['verdicts'].get(v, 0)}</span>" for v in VERDICTS)
    body.append(f'<p class="counts">{counts} of {summary["total"]} claim instances</p>')
    body.append(f"<p><strong>Power:</strong> {_e(_power_line(summary))}</p>")
    body.append(f"<p><strong>Since baseline:</strong> {_e(_changes_line(summary))}</p></header>")

    body.append('<section id="summary"><h2>Summary</h2>')
    rows = [[_e(f"{paper} — {PAPERS[paper]}" if paper in PAPERS else paper)]
            + [_e(c[v]) for v in VERDICTS] + [_e(c["total"])] for paper, c in summary["per_paper"].items()]
    rows.append(["<strong>all</strong>"] + [_e(summary["verdicts"][v]) for v in VERDICTS] + [_e(summary["total"])])
    body.append(_html_table(["Paper", *VERDICTS, "total"], rows, raw=True))
    lines = _regression_lines(doc)
    body.append(f"<h3>Findings regression</h3><p>{_e(lines[0])}</p>")
    if len(lines) > 1:
        body.append("<ul>" + "".join(f"<li>{_e(line[2:])}</li>" for line in lines[1:]) + "</ul>")
    body.append("</section>")

    regression = doc.get("regression")
    body.append('<section id="verdicts"><h2>Verdicts</h2>')
    rows = []
    for record in doc.get("claims", []):
        cells = [_e(c) for c in _claim_row(record, regression)]
        cells[0] = f'<a href="#{_anchor(_label(record))}">{cells[0]}</a>'
        cells[1] = _verdict_html(record["verdict"]) + "".join(f'<br><span class="label">{_e(x)}</span>'
                                                              for x in _labels(record))
        rows.append(cells)
    body.append(_html_table(_CLAIM_COLUMNS, rows, raw=True) + "</section>")

    figures = doc.get("figures") or {}
    for paper, records in _claims_by_paper(doc).items():
        body.append(f'<section id="paper-{_e(paper)}"><h2>{_e(paper)} — {_e(PAPERS.get(paper, paper))}</h2>')
        for claim_id, instances in _by_claim(records).items():
            body.append(f"<h3>{_e(claim_id)}</h3>")
            if instances[0].get("sentence"):
                body.append(f"<blockquote>{_e(instances[0]['sentence'])}</blockquote>")
            body += [_html_figure(base_dir, path, claim_id) for path in figures.get(claim_id, [])]
            body += [_html_claim(record) for record in instances]
        body.append("</section>")

    if doc.get("tables"):
        body.append('<section id="tables"><h2>Tables</h2>')
        for table in doc["tables"]:
            body.append(f"<h3>{_e(table['title'])}</h3>" + _html_table(table["columns"], table["rows"]))
            if table.get("note"):
                body.append(f'<p class="note">{_e(table["note"])}</p>')
        body.append("</section>")

    body.append('<section id="deviations"><h2>Declared deviations from the papers</h2>')
    body.append(_html_table(["Claims", "Setting", "Paper", "Ours", "Why"],
                            [[d.get("claims"), d.get("setting"), d.get("paper"), d.get("ours"), d.get("why") or DASH]
                             for d in run.get("deviations") or []]) + "</section>")

    body.append('<section id="environment"><h2>Environment</h2>')
    body.append(_html_table(["", ""], _environment_rows(run)) + "</section>")
    return _html_page(_title(doc), "\n".join(body))


# ---------------------------------------------------------------- files

def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; a report is meant to be read by others (umask decides).
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _dump_json(doc: Mapping) -> str:
    return json.dumps(_jsonable(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _write_views(doc: Mapping, out_dir: Path) -> dict[str, Path]:
    return {
        "markdown": _write_atomic(out_dir / "claims.md", render_markdown(doc)),
        "html": _write_atomic(out_dir / "index.html", render_html(doc, out_dir)),
    }


def write_report(doc: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write ``claims.json``, ``claims.md`` and ``index.html`` into ``out_dir``.

    Each file is written atomically (temporary file, fsync, ``os.replace``),
    so a reader never sees a half-written report. Figures are read from
    ``out_dir`` (their paths are relative to it).

    Returns
    -------
    dict of str to Path
        ``{"json": ..., "markdown": ..., "html": ...}``.
    """
    out_dir = Path(out_dir)
    _check_document(doc, out_dir / "claims.json")
    text = _dump_json(doc)
    # Render from the JSON as it will be read back, so a rebuild from the
    # file (the CLI) gives byte-identical Markdown and HTML.
    doc = json.loads(text)
    paths = {"json": _write_atomic(out_dir / "claims.json", text)}
    paths.update(_write_views(doc, out_dir))
    return paths


def check_report_dir(path: str | Path, *, flag: str = "--report-dir", min_free_bytes: int = 20 * 2**20) -> None:
    """Raise :class:`ReportError` unless ``path`` is (or can become) a writable directory with free space."""
    path = Path(path)

    def fail(problem: str) -> ReportError:
        return ReportError(f"The report directory {flag} {path} is not usable: {problem}. Choose another {flag}.")

    if path.exists() and not path.is_dir():
        raise fail(f"{path} is a file, not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise fail(f"{existing} is a file, so {path} cannot be created")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"{existing} is not writable ({exc.strerror or exc})") from None
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        raise fail(f"only {free / 2**20:.0f} MiB free (at least {min_free_bytes / 2**20:.0f} MiB needed)")


def _runs_dir(report_dir: Path) -> Path:
    return report_dir.parent / f".{report_dir.name}-runs"


def new_staging_dir(report_dir: str | Path) -> Path:
    """A fresh directory (with ``figures/``) for this run's report, beside ``report_dir``; published later."""
    report_dir = Path(report_dir)
    runs = _runs_dir(report_dir)
    runs.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=runs, prefix=f"{_time.strftime('%Y%m%dT%H%M%S')}-"))
    os.chmod(staging, 0o777 & ~_umask())
    (staging / "figures").mkdir()
    return staging


def _forest_plots(doc: dict, staging: Path) -> None:
    """One forest plot per claim with an effect and interval, listed first among the claim's figures."""
    from analysis.plots import plot_forest

    for claim_id, instances in _by_claim(doc["claims"]).items():
        rows = [{"label": r["instance_id"].removeprefix(claim_id), "effect": r.get("effect"), "ci": r.get("ci"),
                 "ci_level": r.get("ci_level"), "scale": r.get("scale"), "reference": r.get("reference"),
                 "margin": r.get("margin"), "verdict": r["verdict"], "asserted": r.get("asserted", True)}
                for r in instances if _finite(r.get("effect")) is not None]
        if not rows:
            continue
        rel = f"figures/forest_{re.sub(r'[^A-Za-z0-9]+', '_', claim_id)}.png"
        plot_forest(rows, staging / rel, f"{claim_id}: deciding effect per instance")
        os.chmod(staging / rel, 0o666 & ~_umask())
        doc["figures"][claim_id] = [rel, *[f for f in doc["figures"].get(claim_id, []) if f != rel]]


def publish_report(doc: Mapping, staging_dir: str | Path | None, report_dir: str | Path) -> dict[str, Path]:
    """Write the report into its staging directory, then swap it in as ``report_dir`` in one step.

    ``report_dir`` becomes a symbolic link to the run's directory (under
    ``.<name>-runs/`` beside it), replaced atomically with ``os.replace``, so a
    reader sees the previous report or this one, never parts of both. The
    previous run's directory is kept; older ones are removed. A failure
    (e.g. a full disk) leaves the previous report as it was.
    """
    report_dir = Path(report_dir)
    staging = Path(staging_dir) if staging_dir is not None else new_staging_dir(report_dir)
    doc = json.loads(_dump_json(doc))
    try:
        _forest_plots(doc, staging)
        write_report(doc, staging)
        if report_dir.exists() and not report_dir.is_symlink():  # an old-style real directory: move it aside
            os.replace(report_dir, _runs_dir(report_dir) / f"legacy-{_time.strftime('%Y%m%dT%H%M%S')}")
        link = report_dir.parent / f".{report_dir.name}.link-{os.getpid()}"
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(staging, report_dir.parent), link)
        previous = report_dir.resolve() if report_dir.is_symlink() else None
        os.replace(link, report_dir)
    except OSError as exc:
        raise ReportError(f"Could not publish the report to {report_dir}: {exc}. The previous report is unchanged; "
                          f"this run's files are in {staging}.") from exc
    keep = {staging.resolve(), previous}
    for old in sorted(_runs_dir(report_dir).iterdir(), reverse=True):
        if old.resolve() not in keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return {"json": report_dir / "claims.json", "markdown": report_dir / "claims.md", "html": report_dir / "index.html"}


def _check_document(doc: object, source: Path | str) -> None:
    if not isinstance(doc, Mapping):
        raise ReportSchemaError(f"{source}: not a claims report (expected a JSON object, got {type(doc).__name__}).")
    version = doc.get("schema_version")
    if version is None:
        raise ReportSchemaError(f"{source}: not a claims report (no 'schema_version'); "
                                f"supported schema version: {SCHEMA_VERSION}.")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ReportSchemaError(f"{source}: report schema_version {version!r} is not supported; "
                                f"this version of analysis.report reads schema version {SCHEMA_VERSION}.")
    for key in ("run", "summary", "claims"):
        if key not in doc:
            raise ReportSchemaError(f"{source}: schema version {version} report lacks the {key!r} key.")
    for key in ("run", "summary"):
        if not isinstance(doc[key], Mapping):
            raise ReportSchemaError(f"{source}: {key!r} must be an object, not {type(doc[key]).__name__}.")
    for key in ("total", "verdicts", "per_paper"):
        if key not in doc["summary"]:
            raise ReportSchemaError(f"{source}: 'summary' lacks the {key!r} key.")
    if not isinstance(doc["claims"], list):
        raise ReportSchemaError(f"{source}: 'claims' must be a list.")
    for i, record in enumerate(doc["claims"]):
        if not isinstance(record, Mapping) or any(not isinstance(record.get(k), str) for k in _REQUIRED_RECORD_KEYS):
            raise ReportSchemaError(f"{source}: claims[{i}] lacks one of {list(_REQUIRED_RECORD_KEYS)}.")
        if record["verdict"] not in VERDICTS:
            raise ReportSchemaError(f"{source}: claims[{i}] has unknown verdict {record['verdict']!r}; "
                                    f"known: {', '.join(VERDICTS)}.")


def load_report(path: str | Path) -> dict:
    """Read and validate a ``claims.json``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ReportSchemaError
        If the file is not JSON, not a claims report, or of a schema version
        other than :data:`SCHEMA_VERSION`; the message names the file.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportSchemaError(f"{path}: not valid JSON ({error}).") from None
    except UnicodeDecodeError as error:
        raise ReportSchemaError(f"{path}: not UTF-8 text ({error}).") from None
    _check_document(doc, path)
    return doc


# ---------------------------------------------------------------- comparison

def _brief(record: Mapping | None) -> dict | None:
    if record is None:
        return None
    return {key: record.get(key) for key in
            ("verdict", "effect", "effect_name", "ci", "ci_level", "p_value", "p_adjusted", "n")}


def compare_reports(a: Mapping, b: Mapping, *, labels: Sequence[str] | None = None) -> dict:
    """Compare two report documents claim instance by claim instance.

    Parameters
    ----------
    a, b : dict
        Report documents (:func:`build_report` / :func:`load_report`).
    labels : (str, str), optional
        Names of the two sides; default each run's profile, else "A"/"B".

    Returns
    -------
    dict
        ``{"labels": [la, lb], "rows": [...], "only_a": [...], "only_b": [...],
        "counts": {...}}``. Each row (instances present in both, in report
        order) holds ``claim_id``, ``instance_id``, ``label``, ``a`` and ``b``
        (verdict, effect, CI, p raw/adjusted, n), ``verdict_changed`` and
        ``differs`` (the names of the fields whose shown values differ).
    """
    for name, doc in (("a", a), ("b", b)):
        if not isinstance(doc, Mapping) or not isinstance(doc.get("claims"), list):
            raise invalid(name, "compare_reports", "a report document with a 'claims' list", type(doc).__name__)
    if labels is None:
        labels = [str((a.get("run") or {}).get("profile") or "A"), str((b.get("run") or {}).get("profile") or "B")]
        if labels[0] == labels[1]:
            labels = [f"{labels[0]} (A)", f"{labels[1]} (B)"]
    elif len(labels) != 2:
        raise invalid("labels", "compare_reports", "two names", labels)

    def index(doc: Mapping) -> dict[tuple[str, str], Mapping]:
        return {(r["claim_id"], r["instance_id"]): r for r in doc["claims"]}

    side_a, side_b = index(a), index(b)
    rows, only_a, only_b = [], [], []
    for key in sorted(set(side_a) | set(side_b), key=lambda k: _record_key({"claim_id": k[0], "instance_id": k[1]})):
        ra, rb = side_a.get(key), side_b.get(key)
        if rb is None:
            only_a.append(_label(ra))
            continue
        if ra is None:
            only_b.append(_label(rb))
            continue
        shown = {
            "verdict": lambda r: r.get("verdict"),
            "effect": lambda r: _format_effect(r, with_name=False),
            "p_value": lambda r: format_p(r.get("p_value")),
            "p_adjusted": lambda r: format_p(r.get("p_adjusted")),
            "n": lambda r: format_number(r.get("n")),
        }
        differs = [field for field, show in shown.items() if show(ra) != show(rb)]
        rows.append({
            "claim_id": key[0], "instance_id": key[1], "label": _label(ra),
            "a": _brief(ra), "b": _brief(rb),
            "verdict_changed": ra["verdict"] != rb["verdict"], "differs": differs,
        })
    changed = sum(row["verdict_changed"] for row in rows)
    return {
        "labels": list(labels),
        "rows": rows,
        "only_a": only_a,
        "only_b": only_b,
        "counts": {"both": len(rows), "same_verdict": len(rows) - changed, "verdict_changed": changed,
                   "only_a": len(only_a), "only_b": len(only_b)},
    }


def _compare_cells(row: Mapping, side: str) -> list[str]:
    record = row[side]
    return [record["verdict"], _format_effect(record, with_name=False), format_p(record.get("p_value")),
            format_p(record.get("p_adjusted"))]


_COMPARE_FIELDS = ("verdict", "effect", "p_value", "p_adjusted")


def render_compare_markdown(comparison: Mapping) -> str:
    """Render :func:`compare_reports`' result as Markdown; differing cells in bold, changed verdicts marked ⚠."""
    la, lb = comparison["labels"]
    counts = comparison["counts"]
    out = [f"# Claim reports compared: {la} vs {lb}", "",
           f"**{counts['both']}** instances in both: {counts['same_verdict']} same verdict, "
           f"**{counts['verdict_changed']} verdict changed**; {counts['only_a']} only in {la}, "
           f"{counts['only_b']} only in {lb}.", ""]
    columns = ["", "Instance", f"verdict ({la})", f"verdict ({lb})", f"effect ({la})", f"effect ({lb})",
               f"p ({la})", f"p ({lb})", f"p adj. ({la})", f"p adj. ({lb})"]
    rows = []
    for row in comparison["rows"]:
        a_cells, b_cells = _compare_cells(row, "a"), _compare_cells(row, "b")
        cells = ["⚠ changed" if row["verdict_changed"] else ("≠" if row["differs"] else ""), row["label"]]
        for field, ca, cb in zip(_COMPARE_FIELDS, a_cells, b_cells):
            mark = field in row["differs"]
            cells += [f"**{ca}**" if mark else ca, f"**{cb}**" if mark else cb]
        rows.append(cells)
    out += _md_table(columns, rows) + [""]
    for key, label in (("only_a", la), ("only_b", lb)):
        if comparison[key]:
            out += [f"## Only in {label}", ""] + [f"- {item}" for item in comparison[key]] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_compare_html(comparison: Mapping) -> str:
    """Render :func:`compare_reports`' result as a self-contained HTML page."""
    la, lb = comparison["labels"]
    counts = comparison["counts"]
    body = [f"<h1>Claim reports compared: {_e(la)} vs {_e(lb)}</h1>",
            f"<p>{counts['both']} instances in both: {counts['same_verdict']} same verdict, "
            f"<strong>{counts['verdict_changed']} verdict changed</strong>; {counts['only_a']} only in {_e(la)}, "
            f"{counts['only_b']} only in {_e(lb)}.</p>"]
    columns = ["Instance", f"verdict ({la})", f"verdict ({lb})", f"effect ({la})", f"effect ({lb})",
               f"p ({la})", f"p ({lb})", f"p adj. ({la})", f"p adj. ({lb})"]
    rows = []
    for row in comparison["rows"]:
        a_cells, b_cells = _compare_cells(row, "a"), _compare_cells(row, "b")
        cells = [f"<td>{_e(row['label'])}</td>"]
        for field, ca, cb in zip(_COMPARE_FIELDS, a_cells, b_cells):
            css = ""
            if field in row["differs"]:
                css = ' class="changed"' if field == "verdict" else ' class="moved"'
            if field == "verdict":
                ca, cb = _verdict_html(ca), _verdict_html(cb)
            else:
                ca, cb = _e(ca), _e(cb)
            cells += [f"<td{css}>{ca}</td>", f"<td{css}>{cb}</td>"]
        rows.append(cells)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body.append(f'<table class="diff"><thead><tr>{head}</tr></thead><tbody>'
                + "".join("<tr>" + "".join(rows_html) + "</tr>" for rows_html in rows) + "</tbody></table>")
    for key, label in (("only_a", la), ("only_b", lb)):
        if comparison[key]:
            items = "".join(f"<li>{_e(item)}</li>" for item in comparison[key])
            body.append(f"<h2>Only in {_e(label)}</h2><ul>{items}</ul>")
    return _html_page(f"Claim reports compared: {la} vs {lb}", "\n".join(body))


def write_compare(comparison: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.md`` and ``compare.html`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    return {
        "markdown": _write_atomic(out_dir / "compare.md", render_compare_markdown(comparison)),
        "html": _write_atomic(out_dir / "compare.html", render_compare_html(comparison)),
    }


# ---------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Rebuild claims.md and index.html from a claims.json (nothing is re-run), "
                    "or compare two runs side by side.",
    )
    parser.add_argument("report", nargs="?", type=Path,
                        help="claims.json to rebuild claims.md and index.html from (written next to it)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="compare two claims.json files; writes compare.md and compare.html, prints the Markdown")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for compare.md/compare.html (default: the current folder)")
    return parser


def _load_or_exit(parser: argparse.ArgumentParser, path: Path) -> dict:
    if not path.is_file():
        parser.error(f"report file not found: {path}")
    try:
        return load_report(path)
    except ReportSchemaError as error:
        parser.error(str(error))
    raise AssertionError("unreachable")  # parser.error exits


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 on bad input, via argparse)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.compare and args.report:
        parser.error("give either a claims.json to rebuild or --compare A.json B.json, not both")
    if not args.compare and not args.report:
        parser.error("give a claims.json to rebuild, or --compare A.json B.json")
    if args.out is not None and not args.compare:
        parser.error("--out applies to --compare only (a rebuild writes next to the claims.json)")
    if args.compare:
        path_a, path_b = args.compare
        a, b = _load_or_exit(parser, path_a), _load_or_exit(parser, path_b)
        comparison = compare_reports(a, b, labels=_side_labels(a, b, path_a, path_b))
        paths = write_compare(comparison, args.out if args.out is not None else Path.cwd())
        sys.stdout.write(render_compare_markdown(comparison))
        print(f"wrote {paths['markdown']} and {paths['html']}", file=sys.stderr)
        return 0
    doc = _load_or_exit(parser, args.report)
    paths = _write_views(doc, args.report.parent)
    print(f"wrote {paths['markdown']} and {paths['html']}", file=sys.stderr)
    return 0


def _side_labels(a: Mapping, b: Mapping, path_a: Path, path_b: Path) -> list[str]:
    la = str((a.get("run") or {}).get("profile") or path_a)
    lb = str((b.get("run") or {}).get("profile") or path_b)
    return [la, lb] if la != lb else [str(path_a), str(path_b)]


if __name__ == "__main__":
    sys.exit(main())
