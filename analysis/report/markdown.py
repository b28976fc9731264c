"""The report as Markdown (``claims.md``): renders on a code host; figures are relative links."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from analysis.stats.evidence import VERDICTS

from . import _view as v
from .document import instance_label

__all__ = ["render_markdown", "md_table"]

_VERDICT_MARK = {"supported": "✅", "refuted": "❌", "inconclusive": "❔", "error": "⚠️"}


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else v.format_number(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def md_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A pipe table; cells escaped (``|``, backslashes, newlines)."""
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _link(path: str) -> str:
    return quote(Path(path).as_posix(), safe="/-_.~")


def _verdict(verdict: str, labels: Sequence[str] = ()) -> str:
    text = f"{_VERDICT_MARK.get(verdict, '')} {verdict}".strip()
    return text + (f" — *{'; '.join(labels)}*" if labels else "")


def _verdict_table(doc: Mapping) -> list[str]:
    rows = []
    for record in doc["claims"]:
        cells = v.verdict_cells(record, doc["regression"])
        cells["Verdict"] = _verdict(record["verdict"], cells["labels"])
        cells["Effect [CI]"] = "; ".join(cells["Effect [CI]"])
        rows.append([cells[c] for c in v.VERDICT_COLUMNS])
    return md_table(v.VERDICT_COLUMNS, rows)


def _regression(doc: Mapping) -> list[str]:
    regression = doc["regression"]
    out = ["## Regression against the findings baseline", "", v.regression_line(doc["summary"]), ""]
    groups = v.regression_groups(doc)
    for key, heading, empty in (("failed", "Failed the gate", "Nothing failed the gate."),
                                ("reported", "Reported only (does not fail the run)", "Nothing else changed.")):
        out += [f"### {heading}", ""]
        out += (md_table(v.REGRESSION_COLUMNS, groups[key]) if groups[key] else [empty]) + [""]
    if regression["removed"]:
        out += ["### In the baseline, not in this run", ""] + [f"- {i}" for i in regression["removed"]] + [""]
    return out


def _figure(figure: Mapping, homes: Mapping[str, str], claim_id: str) -> list[str]:
    home = homes[figure["path"]]
    if home != claim_id:
        return [f"*Figure {figure['title']}: shown under {home}.*", ""]
    return [f"![{figure['title']}]({_link(figure['path'])})", ""]


def _claim(doc: Mapping, claim_id: str, records: Sequence[Mapping], homes: Mapping[str, str]) -> list[str]:
    out = [f"### {claim_id} ({v.claim_counts(records)})", ""]
    out += [f"> {sentence}" for sentence in v.claim_sentences(records)] + [""]
    figures = v.figures_of(doc, claim_id)
    for figure in (f for f in figures if f["kind"] == "forest"):
        out += _figure(figure, homes, claim_id)
    deviations = v.claim_deviations(records)
    if deviations:
        out += ["**Deviations this claim depends on:**", ""] + [f"- {d}" for d in deviations] + [""]
    common, each = v.instance_items(records, doc["run"], doc["regression"])
    if common:
        out += ["**Common to every instance:**", ""] + [f"- **{label}:** {text}" for label, text in common] + [""]
    for record, items in zip(records, each):
        out += [f"#### {instance_label(record)} — {_verdict(record['verdict'], v.labels(record))}", ""]
        out += [f"- **{label}:** {text}" for label, text in items]
        out += [f"- *Note:* {note}" for note in record["notes"]] + [""]
        parts = v.part_rows(record)
        if parts:
            out += ["Parts of the rule:", ""] + md_table(v.PART_COLUMNS, parts) + [""]
    for figure in (f for f in figures if f["kind"] != "forest"):
        out += _figure(figure, homes, claim_id)
    return out


def _environment(run: Mapping) -> list[str]:
    baseline = run["baseline"]
    rows = v.environment_rows(run)
    if baseline is None:
        return ["## Environment", ""] + md_table(["", "this run"], [(k, ours) for k, ours, _, _ in rows]) + [""]
    out = ["## Environment", "", f"Baseline: `{baseline['path']}`, recorded {v.format_number(baseline['recorded'])}.",
           ""]
    out += md_table(["", "this run", "baseline", ""],
                    [(k, ours, theirs, "≠" if differs else "") for k, ours, theirs, differs in rows]) + [""]
    if baseline["differences"]:
        out += ["**Differences from the baseline's environment:**", ""]
        out += [f"- {d}" for d in baseline["differences"]] + [""]
    return out


def render_markdown(doc: Mapping) -> str:
    """Render the report document as Markdown (``claims.md``)."""
    summary, run = doc["summary"], doc["run"]
    out = [f"# {v.title(doc)}", "",
           f"**Verdicts:** {v.verdict_line(summary)}  ",
           f"**Design:** {v.design_line(summary)}  ",
           f"**Regression:** {v.regression_line(summary)}", ""]

    out += ["## Summary", ""]
    rows = [[v.paper_title(paper), *[counts[x] for x in VERDICTS], counts["total"]]
            for paper, counts in summary["per_paper"].items()]
    rows.append(["**all**", *[summary["verdicts"][x] for x in VERDICTS], summary["total"]])
    out += md_table(["Paper", *VERDICTS, "total"], rows) + [""]

    out += ["## Verdicts", ""] + _verdict_table(doc) + [""]
    if doc["regression"] is not None:
        out += _regression(doc)

    homes = v.figure_homes(doc)
    for paper, claims in v.claims_by_paper(doc).items():
        out += [f"## {v.paper_title(paper)}", ""]
        for claim_id, records in claims.items():
            out += _claim(doc, claim_id, records, homes)

    if doc["tables"]:
        out += ["## Paper vs ours", ""]
        for table in doc["tables"]:
            out += [f"### {table['title']}", ""] + md_table(table["columns"], table["rows"]) + [""]
            if table["note"]:
                out += [f"*{table['note']}*", ""]

    out += ["## Deviations from the papers", ""]
    deviations = v.deviation_rows(run)
    out += (md_table(v.DEVIATION_COLUMNS, deviations) if deviations else ["The profile declares none."]) + [""]
    out += ["## Run", ""] + md_table(["", ""], v.run_rows(run)) + [""]
    out += _environment(run)
    return "\n".join(out).rstrip("\n") + "\n"
