"""Findings baseline: the committed evidence of every claim instance, and robust regression against it.

A claim run ends in one Evidence dict per instance (:mod:`analysis.stats.evidence`).
The *findings baseline* (``claims/findings/<profile>.json``, committed)
records, per instance, the verdict, its stability, and per part of its
decision rule the estimate, its standard error and the per-unit values it
came from. A run is compared with it (CLAIMS.md, Robustness):

* a verdict that changes while **robust** (stability ≥ 0.8 in the baseline
  and in this run) fails the run — ``changed``;
* a verdict that changes while **fragile** on either side is reported and
  does not fail — ``fragile-flip``;
* the measured quantity itself moving significantly fails the run —
  ``shifted``: per part, (current − baseline estimate) / their combined
  standard error, a two-sided Welch t-test; Bonferroni over an instance's
  parts, Holm over the instances, at α. This catches a broken experiment
  whose verdict happens to stay put;
* instances added or removed, and errors, are listed.

:func:`item_outcome` maps one instance to what its pytest item does (pass,
xfail, skip, fail). These are plain functions over dicts; the pytest glue
calls them on the controller once every worker's results are in.

File format (JSON, indent 2, sorted keys, trailing newline, so a diff reads
line by line)::

    {"format_version": 2, "profile": "ci", "profile_hash": "…", "recorded": "…",
     "environment": {"torch": …, "numerics": …, "cpu_capability": …, …},
     "findings": {"<instance_id>": {"claim_id", "params", "verdict", "asserted", "stability",
                                    "summary": {test, p_value, p_adjusted, p_refute_adjusted, effect, ci, n,
                                                power, mde, effect_of_interest, design_status,
                                                units_needed, power_curve: [[units, power], …]},
                                    "parts": {"<part>": {"estimate", "se", "df", "values": {...}}}}}}
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ._files import write_text
from ._validation import check_choice, invalid
from analysis.stats.evidence import FRAGILE_BELOW, VERDICTS, jsonable
from analysis.stats.family import holm

__all__ = [
    "EXPECTABLE_VERDICTS", "FORMAT_VERSION", "SUMMARY_KEYS", "STATUSES", "Baseline", "BaselineError", "Change",
    "Comparison", "Outcome", "compare", "load_baseline", "write_baseline", "item_outcome", "check_writable",
]

FORMAT_VERSION = 2
# "error" means the experiment did not run: it is never an expectation.
EXPECTABLE_VERDICTS = ("supported", "refuted", "inconclusive")
SUMMARY_KEYS = ("test", "p_value", "p_adjusted", "p_refute_adjusted", "effect", "effect_name", "ci", "n", "power", "mde",
                "effect_of_interest", "design_status", "units_needed")
STATUSES = ("unchanged", "changed", "fragile-flip", "shifted", "added", "removed", "error")
_FAILING = ("changed", "shifted")


class BaselineError(ValueError):
    """A findings baseline that cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class Baseline:
    """A loaded findings baseline (``findings``: instance_id → entry, see the module docstring)."""

    path: Path
    profile: str
    profile_hash: str | None
    recorded: str
    findings: dict[str, dict[str, Any]]
    environment: dict = field(default_factory=dict)

    def expected(self, instance_id: str) -> str | None:
        entry = self.findings.get(instance_id)
        return None if entry is None else entry["verdict"]


@dataclass(frozen=True)
class Change:
    """One instance's comparison with the baseline."""

    instance_id: str
    claim_id: str
    status: str
    old_verdict: str | None
    new_verdict: str | None
    stability: tuple[float | None, float | None] = (None, None)
    shift_p: float | None = None
    shift_p_adjusted: float | None = None
    shifted_part: str | None = None
    p_adjusted: float | None = None
    effect: float | None = None
    asserted: bool = True

    @property
    def failed(self) -> bool:
        """Only asserted instances gate the run; a reported-only instance's change is shown, never failed."""
        return self.status in _FAILING and self.asserted

    def describe(self) -> str:
        """One line: ``MW-1[…]: supported → inconclusive (robust: stability 0.95 → 0.91; p_adj = 0.2)``."""
        s = self.instance_id + ": "
        if self.status in ("changed", "fragile-flip"):
            old, new = (_fmt(x) for x in self.stability)
            kind = ("robust" if self.status == "changed" else "fragile, reported only") if self.asserted else \
                "not asserted, reported only"
            s += f"{self.old_verdict} → {self.new_verdict} ({kind}: stability {old} → {new}"
            s += f"; p_adj = {_fmt(self.p_adjusted)})" if self.p_adjusted is not None else ")"
        elif self.status == "shifted":
            s += (f"{self.new_verdict}, but {self.shifted_part!r} moved from the baseline "
                  f"(shift p = {_fmt(self.shift_p)}, Holm-adjusted {_fmt(self.shift_p_adjusted)})")
        else:
            s += f"{self.status} ({self.old_verdict or '—'} → {self.new_verdict or '—'})"
        return s


@dataclass(frozen=True)
class Comparison:
    """A run against a baseline: one :class:`Change` per instance, and counts."""

    changes: list[Change] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    known_not_supported: int = 0
    environment_differences: list[str] = field(default_factory=list)

    def of(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    @property
    def failed(self) -> list[Change]:
        return [c for c in self.changes if c.failed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary_line(self) -> str:
        """``"31 supported, 20 known not supported, 0 changed, 0 shifted, 1 fragile flip, 0 added, 0 removed"``."""
        # "changed" counts the verdict changes that gate the run; a reported-only (not asserted) instance's
        # change (SH-3's timings, say) is listed apart.
        changed = [c for c in self.of("changed") if c.asserted]
        line = (f"{self.counts['supported']} supported, {self.known_not_supported} known not supported, "
                f"{len(changed)} changed, {len(self.of('shifted'))} shifted, "
                f"{len(self.of('fragile-flip'))} fragile flip{'s' if len(self.of('fragile-flip')) != 1 else ''}, "
                f"{len(self.of('added'))} added, {len(self.of('removed'))} removed")
        if self.of("error"):
            line += f", {len(self.of('error'))} error{'s' if len(self.of('error')) != 1 else ''}"
        reported = len(self.of("changed")) - len(changed)
        if reported:
            line += f", {reported} reported-only change{'s' if reported != 1 else ''}"
        return line

    def lines(self) -> list[str]:
        out = [self.summary_line()]
        if self.environment_differences:
            out.append("baseline recorded under another environment: " + "; ".join(self.environment_differences))
        order = {s: i for i, s in enumerate(("changed", "shifted", "fragile-flip", "added", "removed", "error"))}
        for c in sorted((c for c in self.changes if c.status != "unchanged"), key=lambda c: (order[c.status], c.instance_id)):
            out.append(f"{c.status:12s} {c.describe()}")
        return out

    def as_report(self) -> dict:
        """The ``regression`` block of the report."""
        return {
            "summary": self.summary_line(),
            "environment_differences": list(self.environment_differences),
            "instances": {c.instance_id: {"baseline_verdict": c.old_verdict, "status": c.status, "failed": c.failed,
                                          "shift_p": c.shift_p, "shift_p_adjusted": c.shift_p_adjusted,
                                          "line": c.describe()} for c in self.changes},
            "removed": [c.instance_id for c in self.of("removed")],
        }


@dataclass(frozen=True)
class Outcome:
    """What one claim item does: ``kind`` in pass / xfail / skip / fail, and the message."""

    kind: str
    message: str


def _robust(entry_stability, stability) -> bool:
    return all(s is None or s >= FRAGILE_BELOW for s in (entry_stability, stability))


def item_outcome(record: Mapping, entry: Mapping | None, *, update: bool = False, brief: str = "") -> Outcome:
    """Map an instance's evidence and its baseline entry to the item's outcome (see the module docstring).

    * error → fail; not asserted → skip (with the reason);
    * ``update`` (recording a new baseline) → pass if supported, else xfail;
    * no baseline entry → expected supported: pass, else fail;
    * same verdict → pass if supported, else xfail ("known not supported");
    * changed → fail when robust, xfail ("fragile flip, reported") when fragile.

    Effect shifts are decided over all instances at the end of the run (Holm), not here.
    """
    iid, verdict = record["instance_id"], record["verdict"]
    detail = f" ({brief})" if brief else ""
    if verdict == "error":
        notes = "; ".join(record.get("notes") or [])
        return Outcome("fail", f"{iid}: the experiment could not run: {notes}\n{(record.get('details') or {}).get('traceback', '')}")
    if not record.get("asserted", True):
        return Outcome("skip", f"{iid}: reported, not asserted: {record.get('not_asserted_reason', '')}{detail}")
    if update:
        return Outcome("pass", "") if verdict == "supported" else Outcome("xfail", f"{iid}: recorded {verdict}{detail}")
    expected = "supported" if entry is None else entry["verdict"]
    if verdict == expected:
        return Outcome("pass", "") if verdict == "supported" else Outcome("xfail", f"{iid}: known {verdict}{detail}")
    if entry is not None and not _robust(entry.get("stability"), record.get("stability")):
        return Outcome("xfail", f"{iid}: fragile flip {expected} → {verdict}, reported, not failed "
                                f"(stability {_fmt(entry.get('stability'))} → {_fmt(record.get('stability'))}){detail}")
    why = "no baseline entry, so supported was expected" if entry is None else "robust verdict changed"
    return Outcome("fail", f"{iid}: {expected} → {verdict} ({why}){detail}")


# --------------------------------------------------------------------------- comparison


def _part_estimates(record: Mapping) -> dict[str, dict]:
    """Per part of a record: estimate, se, df (from the Evidence ``parts``)."""
    return {p["name"]: {"estimate": p.get("estimate"), "se": p.get("se"), "df": p.get("df")}
            for p in record.get("parts") or []}


def _shift_p(old: Mapping, new: Mapping) -> float | None:
    """Two-sided p that one part's estimate moved: Welch t on (new − old) / √(se_old² + se_new²)."""
    try:
        eo, en = float(old["estimate"]), float(new["estimate"])
        so, sn = float(old["se"]), float(new["se"])
        do, dn = float(old["df"]), float(new["df"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(x) for x in (eo, en, so, sn, do, dn)):
        return None
    var = so**2 + sn**2
    if var == 0:
        return 1.0 if eo == en else 0.0  # zero-variance parts (e.g. every unit's τ = 1): any move is real
    # Welch–Satterthwaite df of the combined standard error (both sides have df ≥ 1 when se is finite).
    df = var**2 / (so**4 / max(do, 1.0) + sn**4 / max(dn, 1.0))
    return float(2 * stats.t.sf(abs(en - eo) / math.sqrt(var), max(df, 1.0)))


def compare(baseline: Baseline | None, results: Sequence[Mapping[str, Any]], *, alpha: float = 0.05,
            ran_claim_ids: Collection[str] | None = None, environment: Mapping | None = None,
            differences=None) -> Comparison:
    """Compare a run's Evidence dicts with a baseline (None: every instance is added)."""
    by_id = _index_results(results, "compare")
    expected = {} if baseline is None else baseline.findings
    ran = None if ran_claim_ids is None else set(ran_claim_ids)
    counts = dict.fromkeys(VERDICTS, 0)
    changes: list[Change] = []
    shift: dict[str, tuple[float, str]] = {}
    known_not_supported = 0
    for iid, r in sorted(by_id.items()):
        verdict = r["verdict"]
        counts[verdict] += 1
        entry = expected.get(iid)
        if verdict == "error":
            changes.append(Change(iid, r["claim_id"], "error", entry and entry["verdict"], verdict))
            continue
        if entry is None:
            changes.append(Change(iid, r["claim_id"], "added", None, verdict, (None, r.get("stability"))))
            continue
        stab = (entry.get("stability"), r.get("stability"))
        if entry["verdict"] != verdict:
            status = "changed" if _robust(*stab) else "fragile-flip"
            changes.append(Change(iid, r["claim_id"], status, entry["verdict"], verdict, stab,
                                  p_adjusted=r.get("p_adjusted"), effect=r.get("effect"),
                                  asserted=bool(r.get("asserted", True))))
            continue
        known_not_supported += verdict != "supported" and r.get("asserted", True)
        old_parts, new_parts = entry.get("parts") or {}, _part_estimates(r)
        ps = {name: _shift_p(old_parts[name], new_parts[name]) for name in old_parts if name in new_parts}
        ps = {k: v for k, v in ps.items() if v is not None}
        if ps and r.get("asserted", True):
            worst = min(ps, key=ps.get)
            shift[iid] = (min(1.0, len(ps) * ps[worst]), worst)
        changes.append(Change(iid, r["claim_id"], "unchanged", entry["verdict"], verdict, stab))
    # Holm over the instances' shift p-values: a significant move fails the run even when the verdict holds.
    ids = list(shift)
    if ids:
        adjusted = holm(np.array([shift[i][0] for i in ids]))
        adj = dict(zip(ids, adjusted))
        for k, c in enumerate(changes):
            if c.instance_id in adj:
                p, part = shift[c.instance_id]
                status = "shifted" if adj[c.instance_id] < alpha else c.status
                changes[k] = Change(c.instance_id, c.claim_id, status, c.old_verdict, c.new_verdict, c.stability,
                                    shift_p=p, shift_p_adjusted=float(adj[c.instance_id]), shifted_part=part)
    for iid, entry in sorted(expected.items()):
        if iid not in by_id and (ran is None or entry["claim_id"] in ran):
            changes.append(Change(iid, entry["claim_id"], "removed", entry["verdict"], None))
    return Comparison(changes=changes, counts=counts, known_not_supported=known_not_supported,
                      environment_differences=list(differences or []))


# --------------------------------------------------------------------------- files


def load_baseline(path: str | os.PathLike[str], *, profile: str, known_claim_ids: Collection[str],
                  must_exist: bool = False, also_known: Callable[[str], bool] | None = None) -> Baseline | None:
    """Read and check a findings baseline; None when it does not exist (unless ``must_exist``).

    A claim id is known when it is in ``known_claim_ids`` or ``also_known(id)`` holds (the suite's
    extension IDs, which are a pattern rather than a list).

    Raises
    ------
    BaselineError
        When the file cannot be read, does not parse, has another ``format_version``, was recorded for
        another profile, names an unknown claim id, or has an entry without a valid verdict; or when
        ``must_exist`` and it is missing.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist:
            raise BaselineError(f"Findings baseline {path} does not exist (check --findings; only the default "
                                f"claims/findings/<profile>.json may be absent).") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"Findings baseline {path} cannot be read: {exc}.") from exc
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"Findings baseline {path} does not parse as JSON: {exc}.") from exc
    except _DuplicateKeyError as exc:
        raise BaselineError(f"Findings baseline {path} has the key {exc.key!r} twice in one object.") from exc

    def fail(problem: str) -> BaselineError:
        return BaselineError(f"Findings baseline {path} {problem}.")

    if not isinstance(doc, dict):
        raise fail(f"must hold a JSON object; it holds a {type(doc).__name__}")
    version = doc.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise fail(f"has format_version {version!r}; this version of the suite reads {FORMAT_VERSION} "
                   "(re-record it with --update-findings)")
    if doc.get("profile") != profile:
        raise fail(f"was recorded for profile {doc.get('profile')!r}, not for {profile!r}, the profile of "
                   f"this run (use claims/findings/{profile}.json or --update-findings)")
    profile_hash = doc.get("profile_hash")
    if profile_hash is not None and not isinstance(profile_hash, str):
        raise fail(f"has profile_hash {profile_hash!r}; expected a string or null")
    recorded = doc.get("recorded")
    if not isinstance(recorded, str):
        raise fail(f"has recorded {recorded!r}; expected an ISO 8601 time string")
    environment = doc.get("environment", {})
    if not isinstance(environment, dict):
        raise fail("has an 'environment' that is not an object")
    findings = doc.get("findings")
    if not isinstance(findings, dict):
        raise fail("has no 'findings' object")
    known = set(known_claim_ids)
    for iid, entry in findings.items():
        if not isinstance(entry, dict):
            raise fail(f"has entry {iid!r} that is not an object")
        cid = entry.get("claim_id")
        if cid not in known and not (also_known is not None and isinstance(cid, str) and also_known(cid)):
            raise fail(f"names unknown claim id {entry.get('claim_id')!r} (entry {iid!r}); known claim ids: "
                       f"{', '.join(sorted(known)) or 'none'}")
        if entry.get("verdict") not in EXPECTABLE_VERDICTS:
            raise fail(f"has entry {iid!r} without a valid verdict: got {entry.get('verdict')!r}, expected one of "
                       f"{', '.join(EXPECTABLE_VERDICTS)}")
        for key in ("params", "summary", "parts"):
            if not isinstance(entry.get(key, {}), dict):
                raise fail(f"has entry {iid!r} whose {key!r} is not an object")
    return Baseline(path=path, profile=profile, profile_hash=profile_hash, recorded=recorded, findings=findings,
                    environment=environment)


def _entry(record: Mapping) -> dict:
    parts = {p["name"]: {"estimate": p.get("estimate"), "se": p.get("se"), "df": p.get("df"),
                         "values": p.get("values")} for p in record.get("parts") or []}
    return jsonable({
        "claim_id": record["claim_id"],
        "params": record.get("params") or {},
        "verdict": record["verdict"],
        "asserted": bool(record.get("asserted", True)),
        "stability": record.get("stability"),
        # The power curve lets --plan predict a profile's power before training (power at other unit counts).
        "summary": {**{k: record.get(k) for k in SUMMARY_KEYS},
                    "power_curve": (record.get("power_detail") or {}).get("power_curve")},
        "parts": parts,
    })


def write_baseline(path: str | os.PathLike[str], results: Sequence[Mapping[str, Any]], *, profile: str,
                   profile_hash: str | None = None, previous: Baseline | None = None,
                   ran_claim_ids: Collection[str] | None = None, environment: Mapping | None = None,
                   alpha: float = 0.05) -> Comparison:
    """Record a run's evidence as the new baseline, atomically, and return what changed.

    Results whose verdict is ``"error"`` are not written (an error says nothing
    about the claim); a previous entry for such an instance is kept, as are
    previous entries of claims that did not run (``ran_claim_ids``).
    ``recorded`` changes only when the findings, the profile hash or the
    environment change, so rewriting an unchanged baseline gives identical bytes.
    """
    path = Path(path)
    if not isinstance(profile, str) or not profile:
        raise invalid("profile", "write_baseline", "a non-empty string", profile)
    if previous is not None and previous.profile != profile:
        raise invalid("previous", "write_baseline", f"a baseline of profile {profile!r}", previous.profile)
    comparison = compare(previous, results, alpha=alpha, ran_claim_ids=ran_claim_ids)
    by_id = _index_results(results, "write_baseline")
    old = {} if previous is None else previous.findings
    ran = None if ran_claim_ids is None else set(ran_claim_ids)
    findings = {iid: e for iid, e in old.items()
                if (ran is not None and e["claim_id"] not in ran) or by_id.get(iid, {}).get("verdict") == "error"}
    for iid, r in by_id.items():
        if r["verdict"] != "error":
            try:
                findings[iid] = _entry(r)
            except TypeError as exc:
                raise BaselineError(f"Cannot write findings baseline {path}: results entry {iid!r}: {exc}.") from exc
    findings = json.loads(json.dumps(findings))
    env = jsonable(dict(environment or {}))
    unchanged = (previous is not None and previous.findings == findings and previous.profile_hash == profile_hash
                 and previous.environment == env)
    doc = {"format_version": FORMAT_VERSION, "profile": profile, "profile_hash": profile_hash,
           "recorded": previous.recorded if unchanged else datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "environment": env, "findings": findings}
    _write_atomically(path, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")
    return comparison


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`BaselineError` unless the baseline at ``path`` can be (re)written (checked before a run)."""
    path = Path(path)
    if path.is_dir():
        raise BaselineError(f"Cannot write findings baseline {path}: it is a directory (check --findings).")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BaselineError(f"Cannot write findings baseline {path}: {parent} is not writable ({exc.strerror}); "
                            "--update-findings would lose the run's findings. Check --findings.") from None


# --------------------------------------------------------------------------- internals


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of duplicate keys; in a hand-merged baseline that silently drops a finding.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _index_results(results: Sequence[Mapping[str, Any]], owner: str) -> dict[str, Mapping[str, Any]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    for i, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise invalid(f"results[{i}]", owner, "an Evidence dict", result)
        for key in ("instance_id", "claim_id"):
            if not isinstance(result.get(key), str) or not result.get(key):
                raise invalid(f"results[{i}].{key}", owner, "a non-empty string", result.get(key))
        check_choice(f"results[{i}].verdict", owner, result.get("verdict"), VERDICTS)
        if result["instance_id"] in by_id:
            raise invalid(f"results[{i}].instance_id", owner, "unique across results", result["instance_id"])
        by_id[result["instance_id"]] = result
    return by_id


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "—" if value is None else str(value)


def _write_atomically(path: Path, text: str) -> None:
    try:
        # A committed baseline keeps its mode when rewritten (0644 when new).
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        write_text(path, text, mode=mode)
    except OSError as exc:
        raise BaselineError(f"Cannot write findings baseline {path}: {exc}.") from exc
