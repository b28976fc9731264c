"""Two report documents side by side, instance by instance (``compare.md`` / ``compare.html``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from analysis._validation import invalid

from . import _view as v
from .document import record_key
from .html import escape, html_page, verdict_badge
from .markdown import md_table
from .publish import write_text

__all__ = ["compare_reports", "render_compare_html", "render_compare_markdown", "write_compare"]

_BRIEF_KEYS = ("verdict", "effect", "effect_name", "scale", "ci", "ci_level", "p_value", "p_adjusted", "p_refute",
               "p_refute_adjusted", "decided_by", "power", "mde", "stability", "n")

#: What the comparison shows of each side, as the report words it.
_SHOWN = {
    "verdict": lambda r: r["verdict"],
    "effect": lambda r: "; ".join(v.effect_lines(r)),
    "p": v.deciding_p,
    "power": lambda r: v.format_number(r["power"], 2),
    "stability": lambda r: v.format_number(r["stability"], 2),
}


def compare_reports(a: Mapping, b: Mapping, *, labels: Sequence[str] | None = None) -> dict:
    """Compare two report documents claim instance by claim instance.

    Parameters
    ----------
    a, b : dict
        Report documents (:func:`build_report` / :func:`load_report`).
    labels : (str, str), optional
        Names of the two sides; default each run's profile, else ``"A"``/``"B"``.

    Returns
    -------
    dict
        ``{"labels": [la, lb], "rows": [...], "only_a": [...], "only_b": [...],
        "counts": {...}}``. Each row (instances in both, in report order) holds
        ``claim_id``, ``instance_id``, ``a`` and ``b`` (verdict, effect, CI,
        adjusted p's, power, stability, n), ``verdict_changed`` and ``differs``
        (the shown fields, among verdict, effect, p, power and stability, whose
        text differs).
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

    side_a = {r["instance_id"]: r for r in a["claims"]}
    side_b = {r["instance_id"]: r for r in b["claims"]}
    both = sorted({**side_a, **side_b}.values(), key=record_key)
    rows, only_a, only_b = [], [], []
    for record in both:
        key = record["instance_id"]
        ra, rb = side_a.get(key), side_b.get(key)
        if rb is None:
            only_a.append(key)
        elif ra is None:
            only_b.append(key)
        else:
            rows.append({
                "claim_id": record["claim_id"], "instance_id": key,
                "a": {k: ra[k] for k in _BRIEF_KEYS}, "b": {k: rb[k] for k in _BRIEF_KEYS},
                "verdict_changed": ra["verdict"] != rb["verdict"],
                "differs": [f for f, show in _SHOWN.items() if show(ra) != show(rb)],
            })
    changed = sum(row["verdict_changed"] for row in rows)
    return {
        "labels": list(labels), "rows": rows, "only_a": only_a, "only_b": only_b,
        "counts": {"both": len(rows), "same_verdict": len(rows) - changed, "verdict_changed": changed,
                   "only_a": len(only_a), "only_b": len(only_b)},
    }


def _columns(comparison: Mapping) -> list[str]:
    la, lb = comparison["labels"]
    return ["Instance", *[f"{field} ({side})" for field in _SHOWN for side in (la, lb)]]


def _counts_line(comparison: Mapping) -> str:
    la, lb = comparison["labels"]
    c = comparison["counts"]
    return (f"{c['both']} instances in both: {c['same_verdict']} same verdict, {c['verdict_changed']} verdict "
            f"changed; {c['only_a']} only in {la}, {c['only_b']} only in {lb}.")


def render_compare_markdown(comparison: Mapping) -> str:
    """Render :func:`compare_reports`' result as Markdown; differing cells in bold, changed verdicts marked ⚠."""
    la, lb = comparison["labels"]
    out = [f"# Claim reports compared: {la} vs {lb}", "", _counts_line(comparison), ""]
    rows = []
    for row in comparison["rows"]:
        mark = "⚠ changed " if row["verdict_changed"] else ("≠ " if row["differs"] else "")
        cells = [mark + row["instance_id"]]
        for field, show in _SHOWN.items():
            shown = [show(row["a"]), show(row["b"])]
            cells += [f"**{s}**" if field in row["differs"] else s for s in shown]
        rows.append(cells)
    out += md_table(_columns(comparison), rows) + [""]
    for key, label in (("only_a", la), ("only_b", lb)):
        if comparison[key]:
            out += [f"## Only in {label}", ""] + [f"- {item}" for item in comparison[key]] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_compare_html(comparison: Mapping) -> str:
    """Render :func:`compare_reports`' result as a self-contained HTML page."""
    la, lb = comparison["labels"]
    body = [f"<h1>Claim reports compared: {escape(la)} vs {escape(lb)}</h1>", f"<p>{escape(_counts_line(comparison))}</p>"]
    rows = []
    for row in comparison["rows"]:
        cells = [f"<td>{escape(row['instance_id'])}</td>"]
        for field, show in _SHOWN.items():
            css = ""
            if field in row["differs"]:
                css = ' class="changed"' if field == "verdict" else ' class="moved"'
            for side in ("a", "b"):
                text = show(row[side])
                cells.append(f"<td{css}>{verdict_badge(text) if field == 'verdict' else escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in _columns(comparison))
    body.append(f'<table class="diff"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    for key, label in (("only_a", la), ("only_b", lb)):
        if comparison[key]:
            items = "".join(f"<li>{escape(item)}</li>" for item in comparison[key])
            body.append(f"<h2>Only in {escape(label)}</h2><ul>{items}</ul>")
    return html_page(f"Claim reports compared: {la} vs {lb}", "\n".join(body))


def write_compare(comparison: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.md`` and ``compare.html`` into ``out_dir`` (each atomically, modes from the umask)."""
    out_dir = Path(out_dir)
    return {"markdown": write_text(out_dir / "compare.md", render_compare_markdown(comparison)),
            "html": write_text(out_dir / "compare.html", render_compare_html(comparison))}
