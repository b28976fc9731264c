"""Findings baseline: the committed verdict of every claim instance, and regression against it.

A claim run ends in one Evidence dict per claim instance (``claim_id``,
``instance_id`` such as ``"MW-1[digits-lenet5,α=0.5,vs=independent]"``,
``params``, ``verdict`` and the statistics behind it). A *findings baseline*
(``claims/findings/<profile>.json``, committed) records the verdict each
instance is expected to reach, with the evidence summary it was recorded from.
A normal run compares its verdicts with the baseline; ``--update-findings``
rewrites it. These are plain functions over dicts: the pytest glue calls them
on the controller once all workers' results are in.

File format (JSON, ``indent=2``, sorted keys, UTF-8, trailing newline, so that
a diff of two baselines reads line by line)::

    {"findings": {"<instance_id>": {"claim_id": "MW-1", "params": {...},
                                     "summary": {"ci": [lo, hi], "effect": ..., "effect_name": ...,
                                                 "n": ..., "p_adjusted": ..., "p_value": ...,
                                                 "statistic": ..., "test": ...},
                                     "verdict": "supported"}},
     "format_version": 1, "profile": "ci", "profile_hash": "<hash>" | null,
     "recorded": "2025-01-01T12:00:00+00:00"}

Non-finite numbers (NaN, ±inf) in a summary are written as ``null``: strict
JSON has no spelling for them and the summary is informational; verdicts alone
are compared.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis._validation import check_choice, invalid

__all__ = [
    "EXPECTABLE_VERDICTS",
    "FORMAT_VERSION",
    "SUMMARY_KEYS",
    "VERDICTS",
    "Baseline",
    "BaselineError",
    "Change",
    "Comparison",
    "compare",
    "expected_outcome",
    "load_baseline",
    "write_baseline",
]

FORMAT_VERSION = 1
VERDICTS = ("supported", "refuted", "inconclusive", "error")
# "error" means the experiment did not run: it is never an expectation.
EXPECTABLE_VERDICTS = ("supported", "refuted", "inconclusive")
SUMMARY_KEYS = ("test", "statistic", "p_value", "p_adjusted", "effect", "effect_name", "ci", "n")
_NOT_SUPPORTED = ("refuted", "inconclusive")


class BaselineError(ValueError):
    """A findings baseline that cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class Baseline:
    """A loaded findings baseline.

    Attributes
    ----------
    path : Path
        The file it was read from.
    profile : str
        The profile it was recorded for.
    profile_hash : str or None
        The hash of that profile when it was recorded.
    recorded : str
        ISO 8601 time of the last change to its findings.
    findings : dict
        ``instance_id -> {"claim_id", "params", "verdict", "summary"}``.
    """

    path: Path
    profile: str
    profile_hash: str | None
    recorded: str
    findings: dict[str, dict[str, Any]]

    def expected(self, instance_id: str) -> str | None:
        """Return the recorded verdict of ``instance_id``, or None when it has no entry."""
        entry = self.findings.get(instance_id)
        return None if entry is None else entry["verdict"]


@dataclass(frozen=True)
class Change:
    """One claim instance whose verdict differs from the baseline, with its new evidence."""

    instance_id: str
    claim_id: str
    old_verdict: str
    new_verdict: str
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None
    effect_name: str | None = None
    ci: tuple[float, float] | None = None

    def describe(self) -> str:
        """One line naming the instance, both verdicts and the new evidence.

        ``MW-1[resnet,α=0.5]: refuted → supported (p_adj = 0.003, effect 0.12 [0.05, 0.19])``.
        The adjusted p is shown (labelled ``p_adj``) when present, because
        verdicts are decided on it; otherwise the raw ``p``.
        """
        parts = []
        if self.p_adjusted is not None:
            parts.append(f"p_adj = {_fmt(self.p_adjusted)}")
        elif self.p_value is not None:
            parts.append(f"p = {_fmt(self.p_value)}")
        if self.effect is not None:
            effect = f"effect {_fmt(self.effect)}"
            if self.ci is not None:
                effect += f" [{_fmt(self.ci[0])}, {_fmt(self.ci[1])}]"
            parts.append(effect)
        detail = f" ({', '.join(parts)})" if parts else ""
        return f"{self.instance_id}: {self.old_verdict} → {self.new_verdict}{detail}"


@dataclass(frozen=True)
class Comparison:
    """A run's verdicts against a baseline.

    Attributes
    ----------
    changed : list of Change
        Instances in both whose verdict differs (either direction), by instance id.
    added : list of str
        Instances with a finding this run and no baseline entry.
    removed : list of str
        Baseline entries absent from the results, among the claims that ran.
    errors : list of str
        Instances whose verdict is ``"error"``: the experiment did not run, so
        they are neither findings nor changes (pytest reports them as errors).
    unchanged : int
        Instances in both with the same verdict.
    known_not_supported : int
        Of those, the ones whose (expected) verdict is refuted or inconclusive.
    counts : dict
        Number of results per verdict, every verdict in :data:`VERDICTS` present.
    """

    changed: list[Change] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0
    known_not_supported: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))

    @property
    def ok(self) -> bool:
        """True when no verdict changed (added, removed and errored instances do not count)."""
        return not self.changed

    def summary_line(self) -> str:
        """``"12 supported, 5 known not supported, 0 changed, 1 added, 0 removed"`` (+ errors if any)."""
        line = (
            f"{self.counts['supported']} supported, "
            f"{self.known_not_supported} known not supported, "
            f"{len(self.changed)} changed, {len(self.added)} added, {len(self.removed)} removed"
        )
        if self.errors:
            line += f", {len(self.errors)} error{'s' if len(self.errors) != 1 else ''}"
        return line

    def lines(self) -> list[str]:
        """The summary line, then one line per change, addition, removal and error."""
        out = [self.summary_line()]
        out += [f"changed  {c.describe()}" for c in self.changed]
        out += [f"added    {i}" for i in self.added]
        out += [f"removed  {i}" for i in self.removed]
        out += [f"error    {i}" for i in self.errors]
        return out


def expected_outcome(baseline: Baseline | None, instance_id: str) -> str:
    """Return the verdict a run expects for ``instance_id``.

    The baseline's verdict when it has one; otherwise ``"supported"``, since
    passing a claim test means the claim is supported.
    """
    expected = None if baseline is None else baseline.expected(instance_id)
    return "supported" if expected is None else expected


def load_baseline(
    path: str | os.PathLike[str], *, profile: str, known_claim_ids: Collection[str]
) -> Baseline | None:
    """Read and check a findings baseline.

    Parameters
    ----------
    path : str or PathLike
        The baseline file, e.g. ``claims/findings/ci.json``.
    profile : str
        The profile of this run; the file must have been recorded for it.
    known_claim_ids : collection of str
        Every claim id the suite defines; an entry naming another id is an error
        (a renamed or deleted claim must not be silently ignored).

    Returns
    -------
    Baseline or None
        None when the file does not exist (no expectations yet).

    Raises
    ------
    BaselineError
        When the file cannot be read, does not parse, has another
        ``format_version``, was recorded for another profile, names an unknown
        claim id, or has an entry without a valid verdict.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
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
        raise fail(f"has format_version {version!r}; this version of the suite reads {FORMAT_VERSION}")
    if doc.get("profile") != profile:
        raise fail(
            f"was recorded for profile {doc.get('profile')!r}, not for {profile!r}, the profile of "
            f"this run (use claims/findings/{profile}.json or --update-findings)"
        )
    profile_hash = doc.get("profile_hash")
    if profile_hash is not None and not isinstance(profile_hash, str):
        raise fail(f"has profile_hash {profile_hash!r}; expected a string or null")
    recorded = doc.get("recorded")
    if not isinstance(recorded, str):
        raise fail(f"has recorded {recorded!r}; expected an ISO 8601 time string")
    findings = doc.get("findings")
    if not isinstance(findings, dict):
        raise fail("has no 'findings' object")
    known = set(known_claim_ids)
    for instance_id, entry in findings.items():
        if not isinstance(entry, dict):
            raise fail(f"has entry {instance_id!r} that is not an object")
        claim_id = entry.get("claim_id")
        if claim_id not in known:
            raise fail(
                f"names unknown claim id {claim_id!r} (entry {instance_id!r}); "
                f"known claim ids: {', '.join(sorted(known)) or 'none'}"
            )
        verdict = entry.get("verdict")
        if verdict not in EXPECTABLE_VERDICTS:
            raise fail(
                f"has entry {instance_id!r} without a valid verdict: got {verdict!r}, "
                f"expected one of {', '.join(EXPECTABLE_VERDICTS)}"
            )
        for key in ("params", "summary"):
            if not isinstance(entry.get(key, {}), dict):
                raise fail(f"has entry {instance_id!r} whose {key!r} is not an object")
    return Baseline(
        path=path, profile=profile, profile_hash=profile_hash, recorded=recorded, findings=findings
    )


def compare(
    baseline: Baseline | None,
    results: Sequence[Mapping[str, Any]],
    *,
    ran_claim_ids: Collection[str] | None = None,
) -> Comparison:
    """Compare a run's Evidence dicts with a baseline.

    Parameters
    ----------
    baseline : Baseline or None
        The expectations; None means there are none (every finding is added).
    results : sequence of dict
        Evidence dicts from all workers, one per claim instance.
    ran_claim_ids : collection of str, optional
        The claim ids this run selected. A baseline entry missing from the
        results is reported as removed only if its claim id is here, so a
        ``-k`` selection does not report every other claim as removed. None
        (the default) means every claim ran: a claim that silently vanished
        from a full run (say its module stopped being collected) is then
        reported as removed rather than forgotten.

    Returns
    -------
    Comparison
    """
    by_id = _index_results(results, "compare")
    expected = {} if baseline is None else baseline.findings
    ran = None if ran_claim_ids is None else set(ran_claim_ids)
    changed, added, errors = [], [], []
    counts = dict.fromkeys(VERDICTS, 0)
    unchanged = known_not_supported = 0
    for instance_id, result in sorted(by_id.items()):
        verdict = result["verdict"]
        counts[verdict] += 1
        if verdict == "error":
            errors.append(instance_id)
        elif instance_id not in expected:
            added.append(instance_id)
        elif expected[instance_id]["verdict"] != verdict:
            changed.append(_change(instance_id, expected[instance_id]["verdict"], result))
        else:
            unchanged += 1
            known_not_supported += verdict in _NOT_SUPPORTED
    removed = sorted(
        instance_id
        for instance_id, entry in expected.items()
        if instance_id not in by_id and (ran is None or entry["claim_id"] in ran)
    )
    return Comparison(
        changed=changed,
        added=added,
        removed=removed,
        errors=errors,
        unchanged=unchanged,
        known_not_supported=known_not_supported,
        counts=counts,
    )


def write_baseline(
    path: str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]],
    *,
    profile: str,
    profile_hash: str | None = None,
    previous: Baseline | None = None,
    ran_claim_ids: Collection[str] | None = None,
) -> Comparison:
    """Record a run's verdicts as the new baseline, atomically, and return what changed.

    Results whose verdict is ``"error"`` are not written as expectations: an
    error means the experiment did not run, so it says nothing about the
    claim, and recording it would make a crash the expected outcome. They are
    listed in ``Comparison.errors``; if ``previous`` had an entry for such an
    instance, that entry is kept. Likewise, with ``ran_claim_ids`` (a ``-k``
    selection), ``previous`` entries of claims that did not run are kept.

    ``recorded`` is set to the current time only when the findings or the
    profile hash differ from ``previous``; otherwise ``previous.recorded`` is
    kept, so rewriting an unchanged baseline gives identical bytes.

    The file is written to a temporary file beside ``path``, fsynced, then
    moved over ``path`` with :func:`os.replace`; if anything fails, ``path``
    keeps its previous content and no temporary file is left.

    Parameters
    ----------
    path : str or PathLike
        Where to write, e.g. ``claims/findings/ci.json``; parent folders are created.
    results : sequence of dict
        Evidence dicts of this run.
    profile : str
        The profile of this run.
    profile_hash : str, optional
        Its hash, recorded so a reader can tell the profile changed since.
    previous : Baseline, optional
        The baseline being replaced (same profile); changes are reported against it.
    ran_claim_ids : collection of str, optional
        As in :func:`compare`.

    Returns
    -------
    Comparison
        ``compare(previous, results, ran_claim_ids=ran_claim_ids)``.

    Raises
    ------
    BaselineError
        When a result holds a value JSON cannot represent, or the file cannot be written.
    """
    path = Path(path)
    if not isinstance(profile, str) or not profile:
        raise invalid("profile", "write_baseline", "a non-empty string", profile)
    if profile_hash is not None and not isinstance(profile_hash, str):
        raise invalid("profile_hash", "write_baseline", "a string or None", profile_hash)
    if previous is not None and previous.profile != profile:
        raise invalid("previous", "write_baseline", f"a baseline of profile {profile!r}", previous.profile)
    comparison = compare(previous, results, ran_claim_ids=ran_claim_ids)
    by_id = _index_results(results, "write_baseline")

    old = {} if previous is None else previous.findings
    ran = None if ran_claim_ids is None else set(ran_claim_ids)
    findings = {
        instance_id: entry
        for instance_id, entry in old.items()
        if (ran is not None and entry["claim_id"] not in ran)
        or by_id.get(instance_id, {}).get("verdict") == "error"
    }
    for instance_id, result in by_id.items():
        if result["verdict"] == "error":
            continue
        where = f"results entry {instance_id!r}"
        findings[instance_id] = {
            "claim_id": result["claim_id"],
            "params": _jsonable(result.get("params") or {}, where + " 'params'", path),
            "verdict": result["verdict"],
            "summary": {k: _jsonable(result.get(k), f"{where} {k!r}", path) for k in SUMMARY_KEYS},
        }
    # Normalise through JSON (tuples → lists, ...) so equality with a loaded baseline is exact.
    findings = json.loads(json.dumps(findings))

    unchanged = previous is not None and previous.findings == findings and previous.profile_hash == profile_hash
    recorded = previous.recorded if unchanged else datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc = {
        "format_version": FORMAT_VERSION,
        "profile": profile,
        "profile_hash": profile_hash,
        "recorded": recorded,
        "findings": findings,
    }
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    _write_atomically(path, text)
    return comparison


# ----------------------------------------------------------------------------- internals


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
        instance_id = result["instance_id"]
        if instance_id in by_id:
            raise invalid(f"results[{i}].instance_id", owner, "unique across results", instance_id)
        by_id[instance_id] = result
    return by_id


def _change(instance_id: str, old_verdict: str, result: Mapping[str, Any]) -> Change:
    ci = result.get("ci")
    return Change(
        instance_id=instance_id,
        claim_id=result["claim_id"],
        old_verdict=old_verdict,
        new_verdict=result["verdict"],
        p_value=result.get("p_value"),
        p_adjusted=result.get("p_adjusted"),
        effect=result.get("effect"),
        effect_name=result.get("effect_name"),
        ci=None if ci is None else (ci[0], ci[1]),
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _jsonable(value: Any, where: str, path: Path) -> Any:
    """Plain JSON values from Evidence values (numpy scalars/arrays, tuples, non-finite → null)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BaselineError(f"Cannot write findings baseline {path}: {where} has non-string key {key!r}.")
            out[key] = _jsonable(item, f"{where}[{key!r}]", path)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, where, path) for item in value]
    if hasattr(value, "tolist"):  # numpy scalar or array, without importing numpy here
        return _jsonable(value.tolist(), where, path)
    raise BaselineError(
        f"Cannot write findings baseline {path}: {where} is a {type(value).__name__} ({value!r}), "
        "which JSON cannot represent."
    )


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BaselineError(f"Cannot write findings baseline {path}: {exc}.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; a committed baseline should keep the usual mode.
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise BaselineError(f"Cannot write findings baseline {path}: {exc}.") from exc
        raise
