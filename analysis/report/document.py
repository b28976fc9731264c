"""The report document (what ``claims.json`` holds): built from Evidence records, checked, read back.

Schema version 3 (``claims.json``, UTF-8, ``indent=2``; non-finite numbers are
``null``)::

    {"schema_version": 3,
     "run":        the run as given to build_report (profile, environment, baseline,
                   deviations, seeds, …; see RUN_KEYS; extra keys are kept),
     "summary":    {"total", "verdicts": {verdict: n}, "per_paper": {paper: {verdict: n, "total"}},
                    "asserted", "asserted_with_power", "powered_share",
                    "design_status": {decided, inconclusive-powered, inconclusive-underpowered: n asserted},
                    "underpowered", "cannot_decide", "fragile", "regression": str | null},
     "claims":     [Evidence.to_dict(), …] sorted by paper, claim number, instance,
     "tables":     [{"title", "columns", "rows", "note"}]  (paper vs ours, from details["table_rows"]),
     "figures":    [{"claim_id", "path", "title", "kind": "forest" | "evidence", "instances": [id, …]}],
     "regression": null | {"summary", "instances": {id: {...}}, "removed": [id, …], …}}

``figures`` lists each claim's figures once, its forest plot first; a forest
plot is drawn when the report is written (:mod:`analysis.report.publish`) from
the claim's records (:func:`forest_rows`), so the JSON holds no drawing data.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from analysis._validation import check_choice, invalid
from analysis.stats.evidence import (DESIGN_STATUSES, FORMS, UNDERPOWERED_BELOW, VERDICTS, Evidence, instance_id,
                                     jsonable)

__all__ = [
    "PAPERS",
    "RECORD_KEYS",
    "REGRESSION_STATUSES",
    "RUN_KEYS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "ReportError",
    "ReportSchemaError",
    "build_report",
    "forest_rows",
    "load_report",
    "paper_of",
    "pivot_tables",
]

SCHEMA_VERSION = 3  # 3: design_status and units_needed per record, design_status counts in the summary

#: Paper key (claim-id prefix) -> short citation, in report order (CLAIMS.md).
PAPERS: dict[str, str] = {
    "MW": "Mason-Williams, Neural Network Compression: The Functional Perspective",
    "GC": "Garcia Caño, Investigating the orthogonality of model compression by pruning and knowledge distillation",
    "MH": "Malihi & Heidemann, Matching the Ideal Pruning Method with Knowledge Distillation for Optimal Compression",
    "SH": "Saeed, Haroon & Khan, Deep Models Compression",
}

#: Every key of an Evidence record (the report reads them all; a record lacking one is from another schema).
RECORD_KEYS = ("instance_id", *(f.name for f in dataclasses.fields(Evidence)))
#: The keys of ``run`` that the glue always gives (others are kept and shown as they are).
RUN_KEYS = ("profile", "profile_path", "profile_hash", "description", "alpha", "device", "wall_time_s", "artifacts",
            "environment", "baseline", "deviations", "seeds", "stability_resamples", "power_simulations")
DEVIATION_KEYS = ("claims", "setting", "paper", "ours", "why")
BASELINE_KEYS = ("path", "recorded", "environment", "differences")
REGRESSION_STATUSES = ("unchanged", "changed", "fragile-flip", "shifted", "added", "removed", "error")
TABLE_ROW_KEYS = ("table", "row", "column", "ours", "paper")
SUMMARY_KEYS = ("total", "verdicts", "per_paper", "asserted", "asserted_with_power", "powered_share", "design_status",
                "underpowered", "cannot_decide", "fragile", "regression")
FIGURE_KEYS = ("claim_id", "path", "title", "kind", "instances")
TABLE_KEYS = ("title", "columns", "rows", "note")

_OWNER = "build_report"


class ReportError(Exception):
    """The report cannot be written or read; the message names the path and what to change."""


class ReportSchemaError(ReportError, ValueError):
    """A file that is not a claims report of the supported schema version."""


# ---------------------------------------------------------------- order

def paper_of(claim_id: str) -> str:
    """Paper key of a claim id: the prefix before the first ``-`` (``"MW-3"`` → ``"MW"``)."""
    return str(claim_id).split("-", 1)[0]


def paper_order(paper: str) -> tuple[int, str]:
    """Sort key of a paper: CLAIMS.md order first, unknown papers after, by name."""
    order = list(PAPERS)
    return (order.index(paper), paper) if paper in order else (len(order), paper)


def _claim_number(claim_id: str) -> float:
    digits = "".join(ch for ch in str(claim_id).split("-", 1)[-1] if ch.isdigit() or ch == ".")
    try:
        return float(digits)
    except ValueError:
        return math.inf


def _natural(text: str) -> list[tuple[int, float | str]]:
    """Sort key that orders numbers by value: ``bits=8`` before ``bits=16``."""
    return [(0, float(part)) if re.fullmatch(r"\d+(?:\.\d+)?", part) else (1, part)
            for part in re.split(r"(\d+(?:\.\d+)?)", text) if part]


def record_key(record: Mapping) -> tuple:
    """Report order: paper (CLAIMS.md order), claim number (MW-2 before MW-10), instance id (numbers by value)."""
    claim_id = str(record["claim_id"])
    return paper_order(paper_of(claim_id)), _claim_number(claim_id), claim_id, _natural(str(record["instance_id"]))


def by_claim(records: Sequence[Mapping]) -> dict[str, list[Mapping]]:
    """Records grouped by claim id, in the order they come (the document's order)."""
    grouped: dict[str, list[Mapping]] = {}
    for record in records:
        grouped.setdefault(record["claim_id"], []).append(record)
    return grouped


# ---------------------------------------------------------------- input checks

def _check_keys(param: str, value: object, keys: Sequence[str], what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise invalid(param, _OWNER, what, type(value).__name__)
    missing = [k for k in keys if k not in value]
    if missing:
        raise invalid(param, _OWNER, what, f"a dict without {', '.join(map(repr, missing))}")
    return value


def _check_record(index: int, record: object) -> dict:
    param = f"records[{index}]"
    _check_keys(param, record, RECORD_KEYS, "an Evidence record (Evidence.to_dict(), every key present)")
    unknown = sorted(set(record) - set(RECORD_KEYS))
    if unknown:
        raise invalid(param, _OWNER, "an Evidence record (Evidence.to_dict())",
                      f"a dict with unknown keys {', '.join(map(repr, unknown))}")
    check_choice(f"{param}['verdict']", _OWNER, record["verdict"], VERDICTS)
    if record["form"]:
        check_choice(f"{param}['form']", _OWNER, record["form"], FORMS)
    expected = instance_id(record["claim_id"], record["params"])
    if record["instance_id"] != expected:
        raise invalid(f"{param}['instance_id']", _OWNER, f"{expected!r} (from claim_id and params)",
                      record["instance_id"])
    figures = record["figures"]
    if not isinstance(figures, list) or not all(isinstance(f, str) and f for f in figures):
        raise invalid(f"{param}['figures']", _OWNER, "a list of paths relative to the report directory", figures)
    return jsonable(record)


def _check_run(run: object) -> dict:
    _check_keys("run", run, RUN_KEYS, "a dict with " + ", ".join(map(repr, RUN_KEYS)))
    if not isinstance(run["environment"], Mapping):
        raise invalid("run['environment']", _OWNER, "a dict of versions and settings", run["environment"])
    if run["baseline"] is not None:
        _check_keys("run['baseline']", run["baseline"], BASELINE_KEYS,
                    "None or a dict with " + ", ".join(map(repr, BASELINE_KEYS)))
    if not isinstance(run["deviations"], list):
        raise invalid("run['deviations']", _OWNER, "a list of deviations", type(run["deviations"]).__name__)
    for i, deviation in enumerate(run["deviations"]):
        _check_keys(f"run['deviations'][{i}]", deviation, DEVIATION_KEYS,
                    "a dict with " + ", ".join(map(repr, DEVIATION_KEYS)))
    return jsonable(run)


def _check_regression(regression: object) -> dict | None:
    if regression is None:
        return None
    _check_keys("regression", regression, ("summary", "instances", "removed"),
                "None or a dict with 'summary', 'instances' and 'removed'")
    if not isinstance(regression["instances"], Mapping):
        raise invalid("regression['instances']", _OWNER, "a dict of instance id to status",
                      type(regression["instances"]).__name__)
    for instance, entry in regression["instances"].items():
        param = f"regression['instances'][{instance!r}]"
        _check_keys(param, entry, ("status", "failed"), "a dict with 'status' and 'failed'")
        check_choice(f"{param}['status']", _OWNER, entry["status"], REGRESSION_STATUSES)
    if not isinstance(regression["removed"], list):
        raise invalid("regression['removed']", _OWNER, "a list of instance ids", regression["removed"])
    return jsonable(regression)


# ---------------------------------------------------------------- derived parts

def pivot_tables(records: Sequence[Mapping]) -> list[dict]:
    """Paper-vs-ours tables from every record's ``details["table_rows"]``.

    Each row ``{"table", "row", "column", "ours", "paper", "format"?, "note"?}``
    fills one cell of table ``table`` as ``"ours (paper)"`` (``format`` is a
    format spec, default ``"+.2f"``; a missing value, ours or the paper's, is ``—``). Rows are
    sorted by name, columns keep their first-seen order; a table's note is its
    first row's ``note``.

    Returns
    -------
    list of dict
        ``{"title", "columns": ["experiment", …], "rows": [[row, cell, …]], "note"}``.
    """
    cells: dict[str, dict[str, dict[str, str]]] = {}
    columns: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    for i, record in enumerate(records):
        for j, row in enumerate((record.get("details") or {}).get("table_rows", [])):
            param = f"records[{i}]['details']['table_rows'][{j}]"
            _check_keys(param, row, TABLE_ROW_KEYS, "a dict with " + ", ".join(map(repr, TABLE_ROW_KEYS)))
            fmt = row.get("format", "+.2f")
            try:  # a value that is not a number (a degenerate model's undefined deviation) shows as —
                ours = "—" if row["ours"] is None else format(row["ours"], fmt)
                paper = "—" if row["paper"] is None else format(row["paper"], fmt)
            except (TypeError, ValueError):
                raise invalid(param, _OWNER, f"numbers 'ours' and 'paper' that format as {fmt!r}",
                              (row["ours"], row["paper"])) from None
            table = str(row["table"])
            if row["column"] not in columns.setdefault(table, []):
                columns[table].append(row["column"])
            cells.setdefault(table, {}).setdefault(str(row["row"]), {})[row["column"]] = f"{ours} ({paper})"
            notes.setdefault(table, str(row.get("note") or ""))
    return [
        {"title": table,
         "columns": ["experiment", *map(str, columns[table])],
         "rows": [[name, *[rows[name].get(c, "—") for c in columns[table]]] for name in sorted(rows)],
         "note": " ".join(x for x in ("Each cell: ours (paper).", notes[table]) if x)}
        for table, rows in cells.items()
    ]


def finite(value: object) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def has_interval(record: Mapping) -> bool:
    """Whether a record has an effect and a two-sided finite CI (what a forest plot row needs)."""
    ci = record.get("ci")
    return (finite(record.get("effect")) is not None and isinstance(ci, list) and len(ci) == 2
            and all(finite(bound) is not None for bound in ci))


def instance_label(record: Mapping) -> str:
    """An instance's name within its claim: ``MW-3[digits-lenet5,text]`` → ``digits-lenet5,text``."""
    instance, claim = str(record["instance_id"]), str(record["claim_id"])
    if instance.startswith(claim + "[") and instance.endswith("]"):
        return instance[len(claim) + 1:-1]
    return instance


def forest_rows(records: Sequence[Mapping]) -> list[dict]:
    """The rows :func:`analysis.plots.charts.plot_forest` draws for one claim: its instances with an effect and CI."""
    keys = ("effect", "ci", "verdict", "asserted", "scale", "reference", "margin", "effect_name")
    return [{"label": instance_label(r), **{k: r[k] for k in keys}} for r in records if has_interval(r)]


def forest_path(claim_id: str) -> str:
    """Report-relative path of a claim's forest plot."""
    return f"figures/forest_{re.sub(r'[^A-Za-z0-9._-]+', '_', claim_id)}.png"


def _figures(claims: Sequence[Mapping]) -> list[dict]:
    """Each claim's figures once: its forest plot first, then the records' figures in first-seen order."""
    out = []
    for claim_id, records in by_claim(claims).items():
        plotted = [r["instance_id"] for r in records if has_interval(r)]
        if plotted:
            out.append({"claim_id": claim_id, "path": forest_path(claim_id), "kind": "forest",
                        "title": f"{claim_id}: effect and confidence interval per instance", "instances": plotted})
        shared: dict[str, list[str]] = {}
        for record in records:
            for path in record["figures"]:
                shared.setdefault(Path(path).as_posix(), []).append(record["instance_id"])
        out += [{"claim_id": claim_id, "path": path, "kind": "evidence",
                 "title": Path(path).stem.replace("_", " "), "instances": instances}
                for path, instances in shared.items()]
    return out


def _summary(claims: Sequence[Mapping], regression: Mapping | None) -> dict:
    counts = {verdict: 0 for verdict in VERDICTS}
    per_paper: dict[str, dict[str, int]] = {}
    for record in claims:
        counts[record["verdict"]] += 1
        paper = per_paper.setdefault(paper_of(record["claim_id"]), {verdict: 0 for verdict in VERDICTS})
        paper[record["verdict"]] += 1
    for paper in per_paper.values():
        paper["total"] = sum(paper[v] for v in VERDICTS)
    asserted = [r for r in claims if r["asserted"]]
    # Number and exact claims have no test, hence no power: the share is over the designs that have one.
    with_power = [r for r in asserted if r["power"] is not None]
    powered = sum(r["power"] >= UNDERPOWERED_BELOW for r in with_power)
    return {
        "total": len(claims),
        "verdicts": counts,
        "per_paper": {paper: per_paper[paper] for paper in sorted(per_paper, key=paper_order)},
        "asserted": len(asserted),
        "asserted_with_power": len(with_power),
        "powered_share": powered / len(with_power) if with_power else None,
        "design_status": {status: sum(r.get("design_status") == status for r in asserted)
                          for status in DESIGN_STATUSES},
        "underpowered": sum(bool(r["underpowered"]) for r in claims),
        "cannot_decide": sum(bool(r["cannot_decide"]) for r in claims),
        "fragile": sum(bool(r["fragile"]) for r in claims),
        "regression": None if regression is None else str(regression["summary"]),
    }


def build_report(records: Sequence[Mapping], *, run: Mapping, regression: Mapping | None = None) -> dict:
    """Assemble the claims report document (what ``claims.json`` holds; schema in the module docstring).

    Parameters
    ----------
    records : sequence of dict
        One ``Evidence.to_dict()`` per claim instance, every key present;
        ``details["table_rows"]`` feed the paper-vs-ours tables.
    run : dict
        The run: every key of :data:`RUN_KEYS` (``environment`` a dict,
        ``baseline`` None or ``{"path", "recorded", "environment",
        "differences"}``, ``deviations`` a list of ``{"claims", "setting",
        "paper", "ours", "why"}``); extra keys are kept and shown.
    regression : dict, optional
        The findings regression: ``{"summary": str, "instances": {id:
        {"baseline_verdict", "status", "failed", "shift_p",
        "shift_p_adjusted", "line"}}, "removed": [id, …]}``; ``status`` one of
        :data:`REGRESSION_STATUSES`. None when no baseline was compared.

    Returns
    -------
    dict
        The document; JSON-safe (non-finite floats are None).

    Raises
    ------
    InvalidParameterError
        A record, the run or the regression not in the shape above; the
        message names the offending entry (``records[3]['power']``).
    """
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise invalid("records", _OWNER, "a list of Evidence records", type(records).__name__)
    claims = sorted((_check_record(i, r) for i, r in enumerate(records)), key=record_key)
    seen: set[str] = set()
    for record in claims:
        if record["instance_id"] in seen:
            raise invalid("records", _OWNER, "unique instance ids", f"{record['instance_id']!r} twice")
        seen.add(record["instance_id"])
    regression_doc = _check_regression(regression)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": _check_run(run),
        "summary": _summary(claims, regression_doc),
        "claims": claims,
        "tables": pivot_tables(claims),
        "figures": _figures(claims),
        "regression": regression_doc,
    }


# ---------------------------------------------------------------- reading back

def check_document(doc: object, source: Path | str) -> None:
    """Raise :class:`ReportSchemaError` (naming ``source``) unless ``doc`` is a schema-2 report document.

    Checks what the renderers read: the top-level keys and their types, the
    keys of ``run``, ``summary``, every record, figure and table, and of the
    regression block.
    """
    def fail(problem: str) -> ReportSchemaError:
        return ReportSchemaError(f"{source}: {problem}.")

    def require(value: Mapping, keys: Sequence[str], where: str) -> None:
        missing = [k for k in keys if k not in value]
        if missing:
            raise fail(f"{where} lacks {', '.join(map(repr, missing))}")

    if not isinstance(doc, Mapping):
        raise fail(f"not a claims report (a JSON {type(doc).__name__}, expected an object)")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        found = "no 'schema_version'" if version is None else f"schema_version {version!r}"
        raise fail(f"{found}; this analysis.report reads schema version {SCHEMA_VERSION} "
                   "(rebuild the report with the suite that wrote it, or rerun the suite)")
    for key, kind, allow_null in (("run", Mapping, False), ("summary", Mapping, False), ("claims", list, False),
                                  ("tables", list, False), ("figures", list, False), ("regression", Mapping, True)):
        if key not in doc:
            raise fail(f"no {key!r} key")
        if not isinstance(doc[key], kind) and not (allow_null and doc[key] is None):
            expected = "an object" if kind is Mapping else "a list"
            raise fail(f"{key!r} is {json.dumps(doc[key])[:40]}, expected {expected}"
                       + (" or null" if allow_null else ""))
    require(doc["run"], RUN_KEYS, "'run'")
    require(doc["summary"], SUMMARY_KEYS, "'summary'")
    if doc["regression"] is not None:
        require(doc["regression"], ("summary", "instances", "removed"), "'regression'")
    for key, keys in (("claims", RECORD_KEYS), ("figures", FIGURE_KEYS), ("tables", TABLE_KEYS)):
        for i, item in enumerate(doc[key]):
            if not isinstance(item, Mapping):
                raise fail(f"{key}[{i}] is not an object")
            require(item, keys, f"{key}[{i}]" + (f" ({item.get('instance_id', '?')})" if key == "claims" else ""))
    for i, record in enumerate(doc["claims"]):
        if record["verdict"] not in VERDICTS:
            raise fail(f"claims[{i}] has verdict {record['verdict']!r}; known: {', '.join(VERDICTS)}")


def load_report(path: str | Path) -> dict:
    """Read and check a ``claims.json``.

    Raises
    ------
    ReportSchemaError
        If the file is missing, not UTF-8 JSON, or not a report document of
        schema version :data:`SCHEMA_VERSION`; the message names the file and
        the problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportSchemaError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ReportSchemaError(f"{path}: is a directory, not a claims.json file.") from None
    except UnicodeDecodeError as error:
        raise ReportSchemaError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportSchemaError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
    check_document(doc, path)
    return doc
