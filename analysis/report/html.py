"""The report as one self-contained HTML page (``index.html``).

CSS inline, every figure embedded as a base64 ``data:`` URI (the page opens
from disk and can be mailed), and a Content-Security-Policy that forbids any
network request. An inline self-check script (the page reads fine without
JavaScript) records on ``<html>`` whether every figure decoded
(``data-figures-*``), any page error (``data-page-errors``) and the page's
width against the window's (``data-page-width``, ``data-window-width``), for
the browser test.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from analysis.stats.evidence import VERDICTS

from . import _view as v
from .document import instance_label

__all__ = ["render_html", "html_page", "html_table", "verdict_badge", "escape"]

_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".gif": "image/gif", ".webp": "image/webp"}

# The verdict table wraps (instance names break after commas, long words
# anywhere) so that it fits a 1280-px window without horizontal scrolling;
# the detail lives in each claim's section.
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 1.5rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
h3{margin:1.2rem 0 .3rem}h4{margin:.8rem 0 .3rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.84rem}
th,td{border:1px solid #d0d7de;padding:.2rem .4rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
#verdicts table{width:100%;font-size:.8rem}#verdicts td:nth-child(1){white-space:nowrap}
#verdicts td:nth-child(2),#verdicts td:nth-child(3){overflow-wrap:anywhere}
#verdicts td:nth-child(3){max-width:12rem}#verdicts td:nth-child(6){min-width:12rem}
.verdict{display:inline-block;padding:.02rem .45rem;border-radius:.8rem;color:#fff;font-weight:600;font-size:.8rem}
VERDICT_CSS
.label{display:inline-block;font-size:.74rem;font-style:italic;color:#6e4b00;background:#fff8c5;
border-radius:.3rem;padding:0 .3rem;margin:.1rem .2rem 0 0}
.label.not-asserted{color:#57606a;background:#eaeef2}
.sub{display:block;color:#57606a}.counts span{margin-right:.6rem}
.claim{border:1px solid #d0d7de;border-radius:6px;padding:.4rem 1rem .8rem;margin:1rem 0}
.instance{border-top:1px solid #eaeef2;margin-top:.6rem}
.instance dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0;font-size:.88rem}
.instance dt{font-weight:600}.instance dd{margin:0;overflow-wrap:anywhere}
blockquote{margin:.4rem 0;padding:.2rem .8rem;border-left:4px solid #d0d7de;color:#57606a}
figure{margin:.8rem 0}figure img{max-width:100%;height:auto;border:1px solid #d0d7de}
figcaption{font-size:.85rem;color:#57606a}
.missing{color:#cf222e}.note{font-style:italic;color:#57606a;margin:.2rem 0}code{font-size:.85rem}
tr.differs td{background:#fff8c5}.failed td:first-child{font-weight:600}
.diff td.changed{background:#ffebe9}.diff td.moved{background:#fff8c5}
"""

# Optional self-check, run on load: did every figure decode, did anything on
# the page raise or log an error, is the page wider than the window? The
# result lands on <html> as data-* attributes so a headless browser's
# --dump-dom can read it; nothing else depends on it.
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
    root.setAttribute('data-page-width',String(root.scrollWidth));
    root.setAttribute('data-window-width',String(window.innerWidth));
    root.setAttribute('data-page-errors',JSON.stringify(errors));
  });
})();
""".strip()


@functools.cache
def _css() -> str:
    # The badges take the forest plots' colours; plots is imported here, not at
    # module load, so importing analysis.report does not load matplotlib.
    from analysis.plots import VERDICT_COLOURS

    badges = "".join(f".{verdict}{{background:{colour}}}" for verdict, colour in VERDICT_COLOURS.items())
    return _CSS.replace("VERDICT_CSS", badges)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SELF_CHECK.encode("utf-8")).digest()).decode("ascii")
    # Nothing may be fetched: images only from data: URIs, only our own script.
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def escape(value: object) -> str:
    """HTML-escape a value as the report formats it (:func:`format_number` for non-strings)."""
    return html.escape(value if isinstance(value, str) else v.format_number(value), quote=True)


def verdict_badge(verdict: str) -> str:
    css = verdict if verdict in VERDICTS else "error"
    return f'<span class="verdict {css}">{html.escape(verdict)}</span>'


def _labels(labels: Sequence[str]) -> str:
    return "".join(f'<span class="label{" not-asserted" if label.startswith("not asserted") else ""}">'
                   f"{escape(label)}</span>" for label in labels)


def html_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False,
               row_classes: Sequence[str] | None = None) -> str:
    """A table; cells are escaped unless ``raw`` (then they are already HTML); no header row if all are empty."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    head = f"<thead><tr>{head}</tr></thead>" if any(columns) else ""
    rows = list(rows)
    classes = row_classes or [""] * len(rows)
    body = "".join((f'<tr class="{css}">' if css else "<tr>")
                   + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>"
                   for css, row in zip(classes, rows))
    return f"<table>{head}<tbody>{body}</tbody></table>"


def html_page(title: str, body: str) -> str:
    """A complete page: CSP, inline CSS, the self-check script, ``body``."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_csp()}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>{_css()}</style>\n"
        f"<script>{_SELF_CHECK}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _breakable(text: str) -> str:
    """Escaped text that may wrap after each comma (instance names have no spaces)."""
    return escape(text).replace(",", ",<wbr>")


def _data_uri(base_dir: Path, relative: str) -> str | None:
    path = base_dir / relative
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(base_dir: Path, figure: Mapping, homes: Mapping[str, str], claim_id: str) -> str:
    home = homes[figure["path"]]
    if home != claim_id:
        return (f'<p class="note">Figure <a href="#{v.anchor("figure", figure["path"])}">{escape(figure["title"])}</a>'
                f" is shown under {escape(home)}.</p>")
    uri = _data_uri(base_dir, figure["path"])
    if uri is None:
        return f'<p class="missing">Figure not found: <code>{escape(figure["path"])}</code></p>'
    return (f'<figure id="{v.anchor("figure", figure["path"])}"><img src="{uri}" alt="{escape(figure["title"])}">'
            f"<figcaption>{escape(figure['title'])} (<code>{escape(figure['path'])}</code>)</figcaption></figure>")


def _verdict_table(doc: Mapping) -> str:
    rows = []
    for record in doc["claims"]:
        cells = v.verdict_cells(record, doc["regression"])
        row = {c: escape(cells[c]) for c in v.VERDICT_COLUMNS if c != "Effect [CI]"}
        row["Claim"] = f'<a href="#{v.anchor("claim", record["claim_id"])}">{row["Claim"]}</a>'
        row["Instance"] = (f'<a href="#{v.anchor("instance", record["instance_id"])}">'
                           f'{_breakable(cells["Instance"])}</a>')
        row["Verdict"] = verdict_badge(record["verdict"]) + (f"<br>{_labels(cells['labels'])}" if cells["labels"] else "")
        first, *rest = cells["Effect [CI]"]
        row["Effect [CI]"] = escape(first) + "".join(f'<span class="sub">{escape(line)}</span>' for line in rest)
        rows.append([row[c] for c in v.VERDICT_COLUMNS])
    return html_table(v.VERDICT_COLUMNS, rows, raw=True)


def _regression(doc: Mapping) -> str:
    regression = doc["regression"]
    out = ['<section id="regression"><h2>Regression against the findings baseline</h2>',
           f"<p>{escape(v.regression_line(doc['summary']))}</p>"]
    groups = v.regression_groups(doc)
    for key, heading, empty in (("failed", "Failed the gate", "Nothing failed the gate."),
                                ("reported", "Reported only (does not fail the run)", "Nothing else changed.")):
        out.append(f"<h3>{heading}</h3>")
        out.append(html_table(v.REGRESSION_COLUMNS, groups[key], row_classes=[key] * len(groups[key]))
                   if groups[key] else f"<p>{empty}</p>")
    if regression["removed"]:
        items = "".join(f"<li>{escape(i)}</li>" for i in regression["removed"])
        out.append(f"<h3>In the baseline, not in this run</h3><ul>{items}</ul>")
    return "".join(out) + "</section>"


def _items(items: Sequence[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(text)}</dd>" for k, text in items) + "</dl>"


def _instance(record: Mapping, items: Sequence[tuple[str, str]]) -> str:
    out = [f'<div class="instance" id="{v.anchor("instance", record["instance_id"])}">'
           f"<h4>{_breakable(instance_label(record))} {verdict_badge(record['verdict'])} "
           f"{_labels(v.labels(record))}</h4>", _items(items)]
    out += [f'<p class="note">Note: {escape(note)}</p>' for note in record["notes"]]
    parts = v.part_rows(record)
    if parts:
        out.append("<p>Parts of the rule:</p>" + html_table(v.PART_COLUMNS, parts))
    return "".join(out) + "</div>"


def _claim(doc: Mapping, base_dir: Path, claim_id: str, records: Sequence[Mapping], homes: Mapping[str, str]) -> str:
    out = [f'<article class="claim" id="{v.anchor("claim", claim_id)}">'
           f"<h3>{escape(claim_id)} <small>({escape(v.claim_counts(records))})</small></h3>"]
    out += [f"<blockquote>{escape(sentence)}</blockquote>" for sentence in v.claim_sentences(records)]
    figures = v.figures_of(doc, claim_id)
    out += [_figure(base_dir, f, homes, claim_id) for f in figures if f["kind"] == "forest"]
    deviations = v.claim_deviations(records)
    if deviations:
        items = "".join(f"<li>{escape(d)}</li>" for d in deviations)
        out.append(f"<p><strong>Deviations this claim depends on:</strong></p><ul>{items}</ul>")
    common, each = v.instance_items(records, doc["run"], doc["regression"])
    if common:
        out.append('<div class="instance"><h4>Common to every instance</h4>' + _items(common) + "</div>")
    out += [_instance(record, items) for record, items in zip(records, each)]
    out += [_figure(base_dir, f, homes, claim_id) for f in figures if f["kind"] != "forest"]
    return "".join(out) + "</article>"


def _environment(run: Mapping) -> str:
    baseline = run["baseline"]
    rows = v.environment_rows(run)
    out = ['<section id="environment"><h2>Environment</h2>']
    if baseline is None:
        out.append(html_table(["", "this run"], [(k, ours) for k, ours, _, _ in rows]))
        return "".join(out) + "</section>"
    out.append(f"<p>Baseline <code>{escape(baseline['path'])}</code>, recorded "
               f"{escape(baseline['recorded'])}; rows that differ are highlighted.</p>")
    out.append(html_table(["", "this run", "baseline"], [(k, ours, theirs) for k, ours, theirs, _ in rows],
                          row_classes=["differs" if differs else "" for *_, differs in rows]))
    if baseline["differences"]:
        items = "".join(f"<li>{escape(d)}</li>" for d in baseline["differences"])
        out.append(f"<p><strong>Differences from the baseline's environment:</strong></p><ul>{items}</ul>")
    return "".join(out) + "</section>"


def render_html(doc: Mapping, base_dir: str | Path) -> str:
    """Render the report document as one self-contained HTML page (``index.html``).

    Parameters
    ----------
    doc : dict
        The report document.
    base_dir : str or Path
        The directory the figure paths are relative to (the report
        directory); each figure found there is embedded as a base64 ``data:``
        URI, a missing one is named in the page.
    """
    base_dir = Path(base_dir)
    summary, run = doc["summary"], doc["run"]
    counts = "".join(f"<span>{verdict_badge(x)} {summary['verdicts'].get(x, 0)}</span>" for x in VERDICTS)
    body = [f"<header><h1>{escape(v.title(doc))}</h1>",
            f'<p class="counts">{counts} of {summary["total"]} claim instances ({summary["asserted"]} asserted)</p>',
            f"<p><strong>Design:</strong> {escape(v.design_line(summary))}<br>"
            f"<strong>Regression:</strong> {escape(v.regression_line(summary))}</p></header>"]

    rows = [[escape(v.paper_title(paper)), *[escape(c[x]) for x in VERDICTS], escape(c["total"])]
            for paper, c in summary["per_paper"].items()]
    rows.append(["<strong>all</strong>", *[escape(summary["verdicts"][x]) for x in VERDICTS], escape(summary["total"])])
    body.append('<section id="summary"><h2>Summary</h2>' + html_table(["Paper", *VERDICTS, "total"], rows, raw=True)
                + "</section>")
    body.append('<section id="verdicts"><h2>Verdicts</h2>' + _verdict_table(doc) + "</section>")
    if doc["regression"] is not None:
        body.append(_regression(doc))

    homes = v.figure_homes(doc)
    for paper, claims in v.claims_by_paper(doc).items():
        body.append(f'<section id="paper-{escape(paper)}"><h2>{escape(v.paper_title(paper))}</h2>')
        body += [_claim(doc, base_dir, claim_id, records, homes) for claim_id, records in claims.items()]
        body.append("</section>")

    if doc["tables"]:
        body.append('<section id="tables"><h2>Paper vs ours</h2>')
        for table in doc["tables"]:
            body.append(f"<h3>{escape(table['title'])}</h3>" + html_table(table["columns"], table["rows"]))
            if table["note"]:
                body.append(f'<p class="note">{escape(table["note"])}</p>')
        body.append("</section>")

    deviations = v.deviation_rows(run)
    body.append('<section id="deviations"><h2>Deviations from the papers</h2>'
                + (html_table(v.DEVIATION_COLUMNS, deviations) if deviations else "<p>The profile declares none.</p>")
                + "</section>")
    body.append('<section id="run"><h2>Run</h2>' + html_table(["", ""], v.run_rows(run)) + "</section>")
    body.append(_environment(run))
    return html_page(v.title(doc), "\n".join(body))
