"""Tests for analysis.findings: baseline round trip, robust regression (changes, fragile flips, shifts), outcomes."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._validation import InvalidParameterError
from analysis.stats.evidence import VERDICTS
from analysis.findings import (
    EXPECTABLE_VERDICTS,
    Baseline,
    BaselineError,
    check_writable,
    compare,
    item_outcome,
    load_baseline,
    write_baseline,
)

KNOWN = ("MW-1", "GC-1", "MH-1")


def part(name="x", values=(1.0, 1.1, 0.9, 1.2, 1.0), **over):
    v = np.asarray(values, dtype=float)
    out = {"name": name, "estimate": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(v.size)),
           "df": float(v.size - 1), "values": {name: v.tolist()}}
    out.update(over)
    return out


def evidence(instance_id, verdict="supported", claim_id=None, *, stability=1.0, parts=None, **overrides):
    """An Evidence dict as a claim item produces it (only the keys the regression reads, plus a few)."""
    ev = {
        "claim_id": claim_id or instance_id.split("[")[0], "instance_id": instance_id,
        "params": {"exp": "digits-lenet5"}, "verdict": verdict, "asserted": True, "stability": stability,
        "test": "one-sided t", "p_value": 0.001, "p_adjusted": 0.003, "p_refute_adjusted": 0.9,
        "effect": 0.12, "effect_name": "log ratio", "ci": (0.05, 0.19), "n": {"units": 5}, "power": 0.9,
        "mde": 0.1, "parts": [part()] if parts is None else parts, "paper_value": 0.7,
    }
    ev.update(overrides)
    return ev


RUN = [evidence("MW-1[lenet,text,independent]"), evidence("MW-1[resnet,text,independent]", "refuted"),
       evidence("GC-1[resnet,trend]", "inconclusive")]


def load(path, profile="ci", **kw):
    return load_baseline(path, profile=profile, known_claim_ids=KNOWN, **kw)


def baseline_of(entries, profile="ci"):
    """A Baseline from {instance_id: (verdict, stability, parts)}, not backed by a file."""
    findings = {i: {"claim_id": i.split("[")[0], "params": {}, "verdict": v, "stability": s, "summary": {},
                    "parts": {p["name"]: p for p in parts}} for i, (v, s, parts) in entries.items()}
    return Baseline(path="mem.json", profile=profile, profile_hash=None, recorded="2000-01-01T00:00:00+00:00",
                    findings=findings)


# ----------------------------------------------------------------------------- round trip
def test_round_trip_keeps_verdicts_stability_parts_and_environment(tmp_path):
    path = tmp_path / "findings" / "ci.json"
    env = {"torch": "2.14.1", "numerics": "portable", "cpu_capability": "DEFAULT"}
    write_baseline(path, RUN, profile="ci", profile_hash="abc123", environment=env)
    base = load(path)
    assert base.profile == "ci" and base.profile_hash == "abc123" and base.environment == env
    for ev in RUN:
        entry = base.findings[ev["instance_id"]]
        assert entry["verdict"] == ev["verdict"] and entry["stability"] == ev["stability"]
        assert entry["parts"]["x"]["values"] == {"x": [1.0, 1.1, 0.9, 1.2, 1.0]}  # per-replicate values kept
        assert entry["summary"]["power"] == 0.9


def test_missing_file_is_no_baseline_unless_it_must_exist(tmp_path):
    assert load(tmp_path / "none.json") is None
    with pytest.raises(BaselineError, match="does not exist.*--findings"):
        load(tmp_path / "typo.json", must_exist=True)


# ----------------------------------------------------------------------------- regression
def _status(baseline, run):
    return {c.instance_id: c.status for c in compare(baseline, run).changes}


def test_a_robust_change_fails_in_either_direction():
    for old, new in (("supported", "inconclusive"), ("refuted", "supported"), ("inconclusive", "supported")):
        cmp = compare(baseline_of({"MW-1[a]": (old, 0.95, [part()])}), [evidence("MW-1[a]", new, stability=0.9)])
        (c,) = cmp.changes
        assert c.status == "changed" and c.failed and not cmp.ok
        assert f"{old} → {new}" in c.describe() and "robust" in c.describe()


def test_a_reported_only_instance_changing_is_shown_but_never_fails():
    cmp = compare(baseline_of({"GC-2[a]": ("supported", 1.0, [part()])}),
                  [evidence("GC-2[a]", "refuted", asserted=False, not_asserted_reason="number claim")])
    (c,) = cmp.changes
    assert c.status == "changed" and not c.failed and cmp.ok and "not asserted" in c.describe()
    # the summary's "changed" counts gating changes only; a reported-only one is listed apart
    assert "0 changed" in cmp.summary_line() and cmp.summary_line().endswith("1 reported-only change")


def test_a_fragile_flip_is_reported_not_failed():
    for base_stab, new_stab in ((0.6, 0.95), (0.95, 0.55)):
        cmp = compare(baseline_of({"MW-1[a]": ("supported", base_stab, [part()])}),
                      [evidence("MW-1[a]", "inconclusive", stability=new_stab)])
        (c,) = cmp.changes
        assert c.status == "fragile-flip" and not c.failed and cmp.ok


def test_a_significant_shift_fails_even_when_the_verdict_holds():
    base = baseline_of({"MW-1[a]": ("supported", 1.0, [part(values=(1.0, 1.1, 0.9, 1.2, 1.0))]),
                        "MW-1[b]": ("supported", 1.0, [part(values=(1.0, 1.1, 0.9, 1.2, 1.0))])})
    run = [evidence("MW-1[a]", parts=[part(values=(3.0, 3.1, 2.9, 3.2, 3.0))]),  # moved by 2 with se ≈ 0.05
           evidence("MW-1[b]", parts=[part(values=(1.01, 1.12, 0.88, 1.2, 1.0))])]
    cmp = compare(base, run)
    a, b = cmp.changes
    assert a.status == "shifted" and a.failed and a.shift_p_adjusted < 0.05 and "'x' moved" in a.describe()
    assert b.status == "unchanged" and b.shift_p > 0.5
    assert not cmp.ok


def test_an_identical_run_never_shifts_even_with_zero_variance():
    base = baseline_of({"MW-1[a]": ("supported", 1.0, [part(values=(1.0, 1.0, 1.0))])})
    assert _status(base, [evidence("MW-1[a]", parts=[part(values=(1.0, 1.0, 1.0))])]) == {"MW-1[a]": "unchanged"}
    moved = _status(base, [evidence("MW-1[a]", parts=[part(values=(0.8, 0.8, 0.8))])])
    assert moved == {"MW-1[a]": "shifted"}  # an exact quantity that moved at all has moved


def test_shifts_are_holm_adjusted_over_instances():
    base = baseline_of({f"MW-1[{i}]": ("supported", 1.0, [part()]) for i in range(20)})
    run = [evidence(f"MW-1[{i}]", parts=[part(values=np.array((1.0, 1.1, 0.9, 1.2, 1.0)) + (0.2 if i == 0 else 0))])
           for i in range(20)]
    c0 = compare(base, run).changes[0]
    assert c0.shift_p < 0.05 < c0.shift_p_adjusted and c0.status == "unchanged"  # raw would fail; Holm keeps it


@settings(max_examples=40, deadline=None)
@given(old=st.dictionaries(st.sampled_from([f"MW-1[{i}]" for i in range(8)]), st.sampled_from(EXPECTABLE_VERDICTS)),
       new=st.dictionaries(st.sampled_from([f"MW-1[{i}]" for i in range(8)]), st.sampled_from(VERDICTS)))
def test_compare_partitions_instances(old, new):
    cmp = compare(baseline_of({i: (v, 1.0, [part()]) for i, v in old.items()}), [evidence(i, v) for i, v in new.items()])
    by = {s: {c.instance_id for c in cmp.of(s)} for s in ("changed", "added", "removed", "error", "unchanged")}
    ok_new = {i for i, v in new.items() if v != "error"}
    assert by["changed"] == {i for i in ok_new & set(old) if old[i] != new[i]}
    assert by["added"] == ok_new - set(old)
    assert by["removed"] == set(old) - set(new)
    assert by["error"] == set(new) - ok_new
    assert sum(cmp.counts.values()) == len(new)


def test_summary_and_lines_name_every_change_and_the_environment():
    base = baseline_of({"MW-1[a]": ("supported", 1.0, [part()]), "MW-1[gone]": ("refuted", 1.0, [part()])})
    cmp = compare(base, [evidence("MW-1[a]", "refuted"), evidence("MW-1[new]")],
                  differences=["cpu_capability: AVX2 → DEFAULT"])
    lines = cmp.lines()
    assert lines[0].startswith("1 supported, 0 known not supported, 1 changed, 0 shifted, 0 fragile flips, 1 added, 1 removed")
    assert any("another environment" in line and "AVX2 → DEFAULT" in line for line in lines)
    assert any(line.startswith("changed") and "MW-1[a]" in line for line in lines)
    report = cmp.as_report()
    assert report["instances"]["MW-1[a]"]["failed"] and report["removed"] == ["MW-1[gone]"]


# ----------------------------------------------------------------------------- item outcomes
@pytest.mark.parametrize("verdict,entry,update,kind", [
    ("supported", None, False, "pass"),
    ("inconclusive", None, False, "fail"),  # no baseline: supported was expected
    ("refuted", {"verdict": "refuted", "stability": 1.0}, False, "xfail"),
    ("supported", {"verdict": "supported", "stability": 1.0}, False, "pass"),
    ("inconclusive", {"verdict": "supported", "stability": 0.95}, False, "fail"),
    ("inconclusive", {"verdict": "supported", "stability": 0.5}, False, "xfail"),
    ("refuted", {"verdict": "supported", "stability": 1.0}, True, "xfail"),
    ("error", {"verdict": "supported", "stability": 1.0}, False, "fail"),
])
def test_item_outcome(verdict, entry, update, kind):
    out = item_outcome(evidence("MW-1[a]", verdict, stability=0.9), entry, update=update)
    assert out.kind == kind
    if kind == "xfail" and entry and entry["verdict"] != verdict and not update:
        assert "fragile flip" in out.message


def test_not_asserted_is_skipped_with_its_reason():
    out = item_outcome(evidence("MW-1[a]", asserted=False, not_asserted_reason="number claim off its setup"), None)
    assert out.kind == "skip" and "number claim off its setup" in out.message


# ----------------------------------------------------------------------------- bad baselines
def _write_doc(path, **changes):
    doc = {"format_version": 2, "profile": "ci", "profile_hash": None, "recorded": "2000-01-01T00:00:00+00:00",
           "environment": {}, "findings": {"MW-1[a]": {"claim_id": "MW-1", "params": {}, "verdict": "supported",
                                                        "summary": {}, "parts": {}}}}
    doc.update(changes)
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize("content,needles", [
    ('{"format_version": 2,\n "profile" "ci"}', ["does not parse", "line 2", "column"]),
    ("[1, 2]", ["JSON object"]),
    ('{"profile": "ci", "profile": "ci"}', ["'profile' twice"]),
    (dict(format_version=1), ["format_version 1", "reads 2", "--update-findings"]),
    (dict(profile="paper"), ["'paper'", "'ci'"]),
    (dict(findings={"XX-9[a]": {"claim_id": "XX-9", "verdict": "supported"}}), ["'XX-9'", "GC-1, MH-1, MW-1"]),
    (dict(findings={"MW-1[a]": {"claim_id": "MW-1", "verdict": "error"}}), ["valid verdict", "'error'"]),
    (dict(findings={"MW-1[a]": {"claim_id": "MW-1", "verdict": "supported", "parts": [1]}}), ["'parts'"]),
    (dict(environment=[]), ["environment"]),
    (dict(recorded=None), ["recorded"]),
])
def test_bad_baseline_names_file_and_problem(tmp_path, content, needles):
    path = tmp_path / "ci.json"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        _write_doc(path, **content)
    with pytest.raises(BaselineError) as info:
        load(path)
    assert str(path) in str(info.value)
    for needle in needles:
        assert needle in str(info.value)


# ----------------------------------------------------------------------------- writing
def test_error_results_are_not_written_but_reported(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, [evidence("MW-1[a]", "refuted"), evidence("MW-1[b]")], profile="ci")
    result = write_baseline(path, [evidence("MW-1[a]", "error"), evidence("MW-1[c]", "error"), evidence("MW-1[b]")],
                            profile="ci", previous=load(path))
    assert [c.instance_id for c in result.of("error")] == ["MW-1[a]", "MW-1[c]"]
    written = load(path)
    assert "MW-1[c]" not in written.findings and written.expected("MW-1[a]") == "refuted"


def test_update_with_a_selection_keeps_other_claims(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, [evidence("MW-1[a]"), evidence("GC-1[b]", "refuted")], profile="ci")
    write_baseline(path, [evidence("MW-1[a]", "inconclusive")], profile="ci", previous=load(path), ran_claim_ids={"MW-1"})
    written = load(path)
    assert written.expected("GC-1[b]") == "refuted" and written.expected("MW-1[a]") == "inconclusive"


def test_rewriting_unchanged_findings_gives_identical_bytes(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, RUN, profile="ci", profile_hash="h", environment={"torch": "x"})
    first = path.read_bytes()
    write_baseline(path, RUN, profile="ci", profile_hash="h", previous=load(path), environment={"torch": "x"})
    assert path.read_bytes() == first


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "ci.json"
    write_baseline(path, RUN, profile="ci")
    before = path.read_bytes()
    with pytest.raises(BaselineError, match=r"'MW-1\[a\]'"):
        write_baseline(path, [evidence("MW-1[a]", effect=object())], profile="ci", previous=load(path))
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(BaselineError, match="disk full"):
        write_baseline(path, [evidence("MW-1[a]", "refuted")], profile="ci")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ci.json"]


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "ci.json")  # a missing folder that can be created is fine
    with pytest.raises(BaselineError, match="is a directory"):
        check_writable(tmp_path)


def test_write_validates_profile():
    with pytest.raises(InvalidParameterError, match="'profile' parameter of write_baseline"):
        write_baseline("unused.json", RUN, profile="")
