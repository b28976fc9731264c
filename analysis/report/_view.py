"""What the report says, as plain text: shared by the Markdown and the HTML renderers.

Every cell, label and line a reader sees is worded here once; the renderers
only lay it out (Markdown tables, HTML badges and links), so the two views
carry the same content.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

from analysis.stats.evidence import VERDICTS

from .document import PAPERS, by_claim, finite, instance_label, paper_of

DASH = "—"
LOG_RATIO = "log ratio"

#: Columns of the verdict table (one row per instance).
VERDICT_COLUMNS = ("Claim", "Instance", "Verdict", "Form", "p (adj.) · test", "Effect [CI]", "Units",
                   "Power · MDE", "Stability", "Regression")
#: Columns of a compound instance's parts table.
PART_COLUMNS = ("Part", "Form", "p support", "p refute", "Effect [CI]", "Effect of interest", "Decided")
DEVIATION_COLUMNS = ("Claims", "Setting", "Paper", "Ours", "Why")
REGRESSION_COLUMNS = ("Instance", "Baseline", "Now", "Status", "Shift p (adj.)", "Detail")


# ---------------------------------------------------------------- numbers

def format_p(p: object) -> str:
    """Format a p-value: 3 significant digits, scientific below 0.001, ``—`` for None.

    Examples
    --------
    >>> format_p(0.04321), format_p(0.5), format_p(1.234e-7), format_p(None)
    ('0.0432', '0.500', '1.23e-07', '—')
    """
    value = finite(p)
    if value is None:
        return DASH if p is None else str(p)
    if value == 0.0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:#.3g}".rstrip(".")


def format_number(x: object, digits: int = 4) -> str:
    """Format a statistic, effect or measured value for the report.

    ``None`` → ``—``; floats to ``digits`` significant digits; ints, strings
    and bools as they are; lists as ``a / b``; dicts as ``k=v, …``.
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
        return "0" if x == 0.0 else f"{x:.{digits}g}"
    if isinstance(x, Mapping):
        return ", ".join(f"{k}={format_number(v, digits)}" for k, v in x.items()) or DASH
    if isinstance(x, (list, tuple)):
        return " / ".join(format_number(v, digits) for v in x) or DASH
    return str(x)


def _level(ci_level: object) -> str:
    level = finite(ci_level)
    return "CI" if level is None else f"{level * 100:g}\u00a0%\u00a0CI"  # kept on one line when cells wrap


def _interval(ci: object, digits: int = 3) -> str | None:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or all(v is None for v in ci):
        return None
    return f"[{format_number(ci[0], digits)}, {format_number(ci[1], digits)}]"


def effect_lines(item: Mapping) -> list[str]:
    """Effect and CI at its level, on its scale; a log ratio also as the ratio exp(effect).

    ``item`` is a record or one of its parts (both have ``effect``, ``ci``,
    ``ci_level`` and ``scale``).
    """
    effect = finite(item.get("effect"))
    if effect is None:
        return [DASH]
    interval = _interval(item.get("ci"))
    lines = [format_number(effect, 3) + (f" {interval} {_level(item.get('ci_level'))}" if interval else "")]
    if item.get("scale") == LOG_RATIO:
        ratio = [None if finite(v) is None else _ratio(v) for v in (item.get("ci") or [])]
        ratio_interval = _interval(ratio) if interval else None
        lines.append(f"ratio ×{format_number(_ratio(effect), 3)}" + (f" {ratio_interval}" if ratio_interval else ""))
    return lines


def _ratio(log_ratio: float) -> float:
    """exp of a log ratio; ∞ beyond a float's range (a distance of 0 stands in as the smallest double, so a log
    ratio can reach ±700)."""
    try:
        return math.exp(log_ratio)
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------- one instance

def labels(record: Mapping) -> list[str]:
    """The labels a reader must see beside the verdict (CLAIMS.md, How a claim becomes a verdict)."""
    out = []
    if not record["asserted"]:
        out.append("not asserted: " + (record["not_asserted_reason"] or "reported only"))
    status = record.get("design_status")
    if record["cannot_decide"] and status != "decided":
        out.append("cannot decide" + _needs(record))
    elif status == "inconclusive-underpowered":
        out.append("underpowered" + _needs(record))
    elif status == "inconclusive-powered":
        out.append("powered: " + ("effect near the margin" if record["form"] in ("equivalence", "non-inferiority")
                                  else "effect smaller than the effect of interest"))
    if record["fragile"]:
        out.append("fragile")
    if record["conditional_on"]:
        out.append(f"conditional on {record['conditional_on']}")
    return out


def _needs(record: Mapping) -> str:
    """``: needs 38 units for power 0.8`` (the simulated count), or that the search found none."""
    if record.get("units_needed") is not None:
        return f": needs {record['units_needed']} units for power 0.8"
    search = (record.get("power_detail") or {}).get("units_needed_search")
    return f": needs more units than searched ({search})" if search else ""


def _adjusted(record: Mapping, side: str) -> str:
    """The adjusted p of one side (``support`` / ``refute``); the raw p, marked, where none was adjusted."""
    raw, adjusted = (("p_value", "p_adjusted") if side == "support" else ("p_refute", "p_refute_adjusted"))
    if record[adjusted] is None and record[raw] is not None:
        return f"{format_p(record[raw])} raw"
    return format_p(record[adjusted])


def deciding_p(record: Mapping) -> str:
    """The adjusted p that decided the verdict and which test gave it; both when inconclusive."""
    side = record["decided_by"]
    if side in ("support", "refute"):
        return f"{_adjusted(record, side)} ({side})"
    if all(record[k] is None for k in ("p_value", "p_adjusted", "p_refute", "p_refute_adjusted")):
        return DASH
    return f"support {_adjusted(record, 'support')} · refute {_adjusted(record, 'refute')}"


def _mde(record: Mapping) -> str:
    if record["mde"] is None and isinstance((record["power_detail"] or {}).get("mde"), str):
        return "none"  # no effect within the scale's range reaches 80 % power (power_detail says why)
    return format_number(record["mde"], 3)


def power_text(record: Mapping) -> str:
    """Power at the effect of interest and the MDE, e.g. ``0.62 at 0.223 · MDE 0.31``."""
    if record["power"] is None:
        return DASH
    at = "" if record["effect_of_interest"] is None else f" at {format_number(record['effect_of_interest'], 3)}"
    text = f"{format_number(record['power'], 2)}{at} · MDE {_mde(record)}"
    if record.get("design_status") == "decided" and record["power"] < 0.8:
        text += " (design; decided)"  # the design's property, not a doubt about the verdict
    if record.get("units_needed") is not None and record.get("design_status") != "decided":
        text += f" · 0.8 with {record['units_needed']} units"
    return text


def units_needed_text(record: Mapping) -> str:
    """``23 (simulated; power by units: 5 0.12 · 10 0.31 · 20 0.74 · 40 0.97)``."""
    needed = record.get("units_needed")
    head = str(needed) if needed is not None else "more than the search allows"
    curve = (record["power_detail"] or {}).get("power_curve") or []
    if not curve:
        return head
    return head + " (simulated; power by units: " + " · ".join(
        f"{format_number(u)} {format_number(float(p), 2)}" for u, p in curve) + ")"


def units_text(n: object) -> str:
    """``{"units": 16, "a": 8, "b": 8}`` → ``16 (a 8, b 8)``."""
    if not isinstance(n, Mapping) or not n:
        return DASH
    groups = ", ".join(f"{k} {format_number(v)}" for k, v in n.items() if k != "units")
    if "units" not in n:
        return groups
    return format_number(n["units"]) + (f" ({groups})" if groups else "")


def regression_entry(record: Mapping, regression: Mapping | None) -> Mapping | None:
    return None if regression is None else regression["instances"].get(record["instance_id"])


def _regression_detail(instance: str, entry: Mapping) -> str:
    """The regression's line for an instance, without the instance id it may start with."""
    line = str(entry.get("line") or entry["status"])
    return line.removeprefix(f"{instance}: ")


def regression_text(entry: Mapping | None) -> str:
    """An instance's regression status; ``fails the gate`` when it failed the run."""
    if entry is None:
        return DASH
    return entry["status"] + (" · fails the gate" if entry["failed"] else "")


def verdict_cells(record: Mapping, regression: Mapping | None) -> dict[str, object]:
    """One row of the verdict table, keyed by :data:`VERDICT_COLUMNS` (``Effect [CI]`` is a list of lines)."""
    return {
        "Claim": record["claim_id"],
        "Instance": instance_label(record),
        "Verdict": record["verdict"],
        "labels": labels(record),
        "Form": record["form"] or DASH,
        "p (adj.) · test": deciding_p(record),
        "Effect [CI]": effect_lines(record) + ([f"({record['scale']})"] if record["scale"] and record["effect"] is not None
                                               else []),
        "Units": units_text(record["n"]),
        "Power · MDE": power_text(record),
        "Stability": format_number(record["stability"], 2),
        "Regression": regression_text(regression_entry(record, regression)),
    }


def _instance_items(record: Mapping, run: Mapping, regression: Mapping | None) -> list[tuple[str, str]]:
    items = []
    if record["params"]:
        items.append(("Parameters", format_number(record["params"])))
    if record["paper_value"] is not None or record["ours_value"] is not None:
        items.append(("Paper / ours", f"{format_number(record['paper_value'])} / {format_number(record['ours_value'])}"))
    items += [(label, record[key]) for label, key in (("Unit", "unit"), ("Test", "test")) if record[key]]
    if record["statistic"] is not None:
        items.append(("Statistic", format_number(record["statistic"])))
    # Number and exact claims (and errors) have no p: nothing to show but their verdict.
    if any(record[k] is not None for k in ("p_value", "p_adjusted", "p_refute", "p_refute_adjusted")):
        items += [
            ("p support (raw / adj.)", f"{format_p(record['p_value'])} / {format_p(record['p_adjusted'])}"),
            ("p refute (raw / adj.)", f"{format_p(record['p_refute'])} / {format_p(record['p_refute_adjusted'])}"),
            ("Decided by", f"{record['decided_by'] or 'neither test'} at α = {format_number(record['alpha'])}"),
        ]
    if record["effect"] is not None:
        effect = " · ".join(effect_lines(record))
        if record["effect_name"]:
            effect = f"{record['effect_name']} ({record['scale'] or 'no scale given'}): {effect}"
        items.append(("Effect", effect))
    judged = []
    if record["margin"] is not None:
        judged.append(f"margin {_interval(record['margin'], 4)}")
    if record["reference"] is not None:
        judged.append(f"reference {format_number(record['reference'])}")
    if record["effect_of_interest"] is not None:
        judged.append(f"effect of interest {format_number(record['effect_of_interest'])}")
    if judged:
        items.append(("Judged against", "; ".join(judged)))
    if record["n"]:
        items.append(("Units", units_text(record["n"])))
    if record["power"] is not None or record["cannot_decide"]:
        items.append(("Power · MDE", power_text(record) + (" (cannot decide: no data could reach α)"
                                                            if record["cannot_decide"] else "")))
    detail = {k: x for k, x in (record["power_detail"] or {}).items() if k != "power_curve"}
    if detail:
        items.append(("Power detail", "; ".join(f"{k}: {format_number(x, 3)}" for k, x in detail.items())))
    if record.get("units_needed") is not None or (record["power_detail"] or {}).get("power_curve"):
        items.append(("Units for power 0.8", units_needed_text(record)))
    if record["stability"] is not None:
        items.append(("Stability", f"{format_number(record['stability'], 2)}: share of "
                                   f"{format_number(run.get('stability_resamples'))} resamples of the units "
                                   "giving the same verdict"))
    entry = regression_entry(record, regression)
    if entry is not None:
        detail = _regression_detail(record["instance_id"], entry)
        items.append(("Regression", regression_text(entry) + (f": {detail}" if detail != entry["status"] else "")))
    return items


def instance_items(records: Sequence[Mapping], run: Mapping,
                   regression: Mapping | None) -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]:
    """The detail of a claim's instances as (label, text) pairs: what all share, then each one's own.

    Items with the same text in every instance of the claim (the unit, the
    test, the margin, …) are said once, for the claim; the verdict and its
    labels are in each instance's heading.
    """
    each = [_instance_items(r, run, regression) for r in records]
    if len(each) < 2:
        return [], each
    common = [item for item in each[0] if all(item in items for items in each[1:])]
    return common, [[item for item in items if item not in common] for items in each]


def part_rows(record: Mapping) -> list[list[str]]:
    """A compound instance's parts (empty for a single test): :data:`PART_COLUMNS` per part."""
    if len(record["parts"]) < 2:
        return []
    return [[str(part.get("name", DASH)), str(part.get("form") or DASH), format_p(part.get("p_support")),
             format_p(part.get("p_refute")), " · ".join(effect_lines(part)),
             format_number(part.get("effect_of_interest")), "deciding" if part.get("decided") else ""]
            for part in record["parts"]]


# ---------------------------------------------------------------- one claim

def claim_sentences(records: Sequence[Mapping]) -> list[str]:
    """The claim's sentence(s), once each (instances of a claim usually share one)."""
    return list(dict.fromkeys(" ".join(r["sentence"].split()) for r in records if r["sentence"]))


def claim_deviations(records: Sequence[Mapping]) -> list[str]:
    """Deviations the claim's instances depend on, once each; those not shared by all name their instances."""
    holders: dict[str, list[str]] = {}
    for record in records:
        for deviation in record["deviations"]:
            holders.setdefault(deviation, []).append(instance_label(record))
    return [text if len(names) == len(records) else f"{text} (only {', '.join(names)})"
            for text, names in holders.items()]


def claim_counts(records: Sequence[Mapping]) -> str:
    """``3 supported, 1 inconclusive``: the claim's verdicts in VERDICTS order."""
    counts = {v: sum(r["verdict"] == v for r in records) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n)


def figures_of(doc: Mapping, claim_id: str) -> list[Mapping]:
    return [f for f in doc["figures"] if f["claim_id"] == claim_id]


def figure_homes(doc: Mapping) -> dict[str, str]:
    """Figure path → the claim whose section shows it (the first); later claims point there."""
    homes: dict[str, str] = {}
    for figure in doc["figures"]:
        homes.setdefault(figure["path"], figure["claim_id"])
    return homes


def claims_by_paper(doc: Mapping) -> dict[str, dict[str, list[Mapping]]]:
    """Paper → claim id → its records, in document order."""
    papers: dict[str, list[Mapping]] = {}
    for record in doc["claims"]:
        papers.setdefault(paper_of(record["claim_id"]), []).append(record)
    return {paper: by_claim(records) for paper, records in papers.items()}


def paper_title(paper: str) -> str:
    return f"{paper} — {PAPERS[paper]}" if paper in PAPERS else paper


def anchor(kind: str, label: str) -> str:
    """An HTML id: a slug plus a short hash (keeps ``α=0.1`` and ``β=0.1`` apart)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
    return f"{kind}-{slug}-{hashlib.sha1(label.encode('utf-8')).hexdigest()[:6]}"


# ---------------------------------------------------------------- the run

def title(doc: Mapping) -> str:
    return f"Claim-status report — profile {doc['run'].get('profile')}"


def verdict_line(summary: Mapping) -> str:
    counts = " · ".join(f"{summary['verdicts'].get(v, 0)} {v}" for v in VERDICTS)
    return f"{counts} ({summary['total']} claim instances, {summary['asserted']} asserted)"


def design_line(summary: Mapping) -> str:
    """What the designs decided, power, fragility and decidability of the run in one line."""
    share = summary["powered_share"]
    power = (f"power ≥ 0.8 at the effect of interest for {share:.0%} of the {summary['asserted_with_power']} "
             "asserted instances with a power analysis" if share is not None
             else "no asserted instance has a power analysis")
    status = summary.get("design_status") or {}
    return (f"{status.get('decided', 0)} decided, {status.get('inconclusive-powered', 0)} inconclusive with power "
            f"≥ 0.8 (effect below the effect of interest, or at the margin), {status.get('inconclusive-underpowered', 0)} "
            f"inconclusive and underpowered (units needed in the table); {power}; "
            f"{summary['cannot_decide']} cannot decide, {summary['fragile']} fragile")


def regression_line(summary: Mapping) -> str:
    return summary["regression"] or "no findings baseline compared"


def _seeds(seeds: object) -> str:
    return ", ".join(map(format_number, seeds)) if isinstance(seeds, list) else format_number(seeds)


def run_rows(run: Mapping) -> list[tuple[str, str]]:
    """The run block: profile, seeds, resamples, … (environment, baseline and deviations have their own)."""
    artifacts = run.get("artifacts") or {}
    seeds = run.get("seeds")
    rows = [
        ("profile", f"{format_number(run['profile'])}" + (f": {run['description']}" if run.get("description") else "")),
        ("profile file", format_number(run.get("profile_path"))),
        ("profile hash", format_number(run.get("profile_hash"))),
        ("α", format_number(run.get("alpha"))),
        ("device", format_number(run.get("device"))),
        ("wall time (s)", format_number(run.get("wall_time_s"))),
        ("artifacts built / loaded", f"{format_number(artifacts.get('built'))} / {format_number(artifacts.get('loaded'))}"),
        ("seeds", "; ".join(f"{k}: {_seeds(x)}" for k, x in seeds.items()) if isinstance(seeds, Mapping)
         else _seeds(seeds)),
        ("stability resamples", format_number(run.get("stability_resamples"))),
        ("power simulations", format_number(run.get("power_simulations"))),
    ]
    shown = {"profile", "description", "profile_path", "profile_hash", "alpha", "device", "wall_time_s", "artifacts",
             "seeds", "stability_resamples", "power_simulations", "environment", "baseline", "deviations"}
    return rows + [(str(k).replace("_", " "), format_number(v)) for k, v in run.items() if k not in shown]


def environment_rows(run: Mapping) -> list[tuple[str, str, str | None, bool]]:
    """(key, this run, baseline or None, differs) for every key of either environment, this run's first."""
    ours = run.get("environment") or {}
    baseline = run.get("baseline")
    theirs = (baseline or {}).get("environment") or {}
    rows = []
    for key in dict.fromkeys([*ours, *theirs]):
        mine = format_number(ours.get(key))
        if baseline is None:
            rows.append((str(key), mine, None, False))
        else:
            other = format_number(theirs.get(key))
            rows.append((str(key), mine, other, mine != other))
    return rows


def deviation_rows(run: Mapping) -> list[list[str]]:
    return [[str(d[k]) if d[k] not in (None, "") else DASH for k in ("claims", "setting", "paper", "ours", "why")]
            for d in run.get("deviations") or []]


def regression_groups(doc: Mapping) -> dict[str, list[list[str]]]:
    """Changed instances as :data:`REGRESSION_COLUMNS` rows: ``failed`` (the gate) and ``reported`` (only shown)."""
    regression = doc["regression"]
    now = {r["instance_id"]: r["verdict"] for r in doc["claims"]}
    groups: dict[str, list[list[str]]] = {"failed": [], "reported": []}
    for instance, entry in regression["instances"].items():
        # Unchanged instances are not news; removed ones are listed on their own.
        quiet = entry["status"] == "unchanged" or (entry["status"] == "removed" and instance in regression["removed"])
        if quiet and not entry["failed"]:
            continue
        shift = format_p(entry.get("shift_p_adjusted")) if entry.get("shift_p") is not None else DASH
        if entry.get("shift_p") is not None:
            shift += f" (raw {format_p(entry['shift_p'])})"
        row = [instance, format_number(entry.get("baseline_verdict")), now.get(instance, DASH), entry["status"],
               shift, _regression_detail(instance, entry)]
        groups["failed" if entry["failed"] else "reported"].append(row)
    return groups
