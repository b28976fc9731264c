"""Tests for analysis.findings: baseline file round trip, comparison, errors, atomic and stable writes."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._validation import InvalidParameterError
from analysis.findings import (
    EXPECTABLE_VERDICTS,
    VERDICTS,
    Baseline,
    BaselineError,
    Change,
    compare,
    expected_outcome,
    load_baseline,
    write_baseline,
)

KNOWN = ("MW-1", "GC-1", "MH-1")


def evidence(instance_id, verdict="supported", claim_id=None, **overrides):
    """An Evidence dict as a claim test produces it."""
    ev = {
        "claim_id": claim_id or instance_id.split("[")[0],
        "instance_id": instance_id,
        "params": {"alpha": 0.5, "model": "digits-lenet5"},
        "verdict": verdict,
        "test": "TOST (log ratio)",
        "statistic": 2.5,
        "p_value": 0.001,
        "p_adjusted": 0.003,
        "effect": 0.12,
        "effect_name": "log ratio",
        "ci": (0.05, 0.19),
        "n": 5,
        "paper_value": 0.7,  # extra Evidence keys are not part of the baseline
    }
    ev.update(overrides)
    return ev


RUN = [
    evidence("MW-1[digits-lenet5,α=0.5,vs=independent]"),
    evidence("MW-1[digits-lenet5,α=0.9,vs=independent]", "refuted"),
    evidence("GC-1[resnet]", "inconclusive"),
]


def load(path, profile="ci"):
    return load_baseline(path, profile=profile, known_claim_ids=KNOWN)


def baseline_of(verdicts, profile="ci"):
    """A Baseline with the given {instance_id: verdict}, not backed by a file."""
    findings = {
        i: {"claim_id": i.split("[")[0], "params": {}, "verdict": v, "summary": {}} for i, v in verdicts.items()
    }
    return Baseline(path="mem.json", profile=profile, profile_hash=None, recorded="2000-01-01T00:00:00+00:00",
                    findings=findings)


# ----------------------------------------------------------------------------- round trip


def test_round_trip_keeps_verdicts_params_and_summary(tmp_path):
    path = tmp_path / "findings" / "ci.json"
    write_baseline(path, RUN, profile="ci", profile_hash="abc123")
    base = load(path)
    assert base.profile == "ci" and base.profile_hash == "abc123"
    assert set(base.findings) == {e["instance_id"] for e in RUN}
    for ev in RUN:
        entry = base.findings[ev["instance_id"]]
        assert base.expected(ev["instance_id"]) == ev["verdict"]
        assert entry["claim_id"] == ev["claim_id"] and entry["params"] == ev["params"]
        assert entry["summary"]["ci"] == list(ev["ci"])
        assert {k: entry["summary"][k] for k in ("test", "p_value", "p_adjusted", "effect", "n")} == {
            k: ev[k] for k in ("test", "p_value", "p_adjusted", "effect", "n")
        }
        assert "paper_value" not in entry["summary"]
    assert compare(base, RUN).ok and compare(base, RUN).unchanged == len(RUN)
    # readable diffs: non-ASCII ids stay as written, keys sorted, one key per line
    text = path.read_text(encoding="utf-8")
    assert "α=0.5" in text and text.endswith("\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_missing_file_is_no_baseline(tmp_path):
    assert load(tmp_path / "absent.json") is None


def test_numpy_values_and_non_finite_numbers_are_written_as_plain_json(tmp_path):
    path = tmp_path / "ci.json"
    ev = evidence("MW-1[x]", statistic=np.float32(1.5), n=np.int64(7), ci=np.array([0.1, 0.2]),
                  p_adjusted=float("nan"), effect=float("inf"))
    write_baseline(path, [ev], profile="ci")
    summary = load(path).findings["MW-1[x]"]["summary"]
    assert summary["statistic"] == 1.5 and summary["n"] == 7 and summary["ci"] == [0.1, 0.2]
    assert summary["p_adjusted"] is None and summary["effect"] is None
    assert "NaN" not in path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- compare


@pytest.mark.parametrize(
    "old,new",
    [(o, n) for o in EXPECTABLE_VERDICTS for n in EXPECTABLE_VERDICTS if o != n],
)
def test_compare_flags_a_change_in_either_direction(old, new):
    base = baseline_of({"MW-1[a]": old, "MW-1[b]": "supported"})
    result = compare(base, [evidence("MW-1[a]", new), evidence("MW-1[b]", "supported")])
    assert not result.ok
    assert [(c.instance_id, c.old_verdict, c.new_verdict) for c in result.changed] == [("MW-1[a]", old, new)]
    assert result.unchanged == 1 and result.added == [] and result.removed == []


def test_compare_reports_added_and_removed():
    base = baseline_of({"MW-1[old]": "supported", "MW-1[kept]": "refuted"})
    result = compare(base, [evidence("MW-1[kept]", "refuted"), evidence("MW-1[new]", "inconclusive")])
    assert result.ok  # additions and removals are reported, not failures
    assert result.added == ["MW-1[new]"] and result.removed == ["MW-1[old]"]
    assert result.unchanged == 1 and result.known_not_supported == 1


def test_removed_is_restricted_to_the_claims_that_ran():
    base = baseline_of({"MW-1[a]": "supported", "MW-1[b]": "supported", "GC-1[c]": "refuted"})
    run = [evidence("MW-1[a]")]
    assert compare(base, run).removed == ["GC-1[c]", "MW-1[b]"]
    assert compare(base, run, ran_claim_ids={"MW-1"}).removed == ["MW-1[b]"]
    assert compare(base, run, ran_claim_ids=()).removed == []


def test_without_baseline_everything_is_added_and_expected_supported():
    result = compare(None, RUN)
    assert result.ok and result.added == sorted(e["instance_id"] for e in RUN) and result.unchanged == 0
    assert expected_outcome(None, "MW-1[a]") == "supported"
    base = baseline_of({"MW-1[a]": "refuted"})
    assert expected_outcome(base, "MW-1[a]") == "refuted"
    assert expected_outcome(base, "MW-1[unknown]") == "supported"


def test_counts_and_summary_line():
    base = baseline_of({"MW-1[s]": "supported", "MW-1[r]": "refuted", "MW-1[i]": "inconclusive",
                        "MW-1[c]": "refuted", "MW-1[gone]": "supported"})
    run = [evidence("MW-1[s]"), evidence("MW-1[r]", "refuted"), evidence("MW-1[i]", "inconclusive"),
           evidence("MW-1[c]", "supported"), evidence("MW-1[new]"), evidence("MW-1[e]", "error")]
    result = compare(base, run)
    assert result.counts == {"supported": 3, "refuted": 1, "inconclusive": 1, "error": 1}
    assert result.errors == ["MW-1[e]"] and "MW-1[e]" not in result.added
    assert result.summary_line() == "3 supported, 2 known not supported, 1 changed, 1 added, 1 removed, 1 error"
    lines = result.lines()
    assert lines[0] == result.summary_line()
    assert any(line.startswith("changed") and "MW-1[c]: refuted → supported" in line for line in lines)


def test_describe_names_instance_both_verdicts_and_new_evidence():
    result = compare(baseline_of({"MW-1[resnet,α=0.5]": "refuted"}), [evidence("MW-1[resnet,α=0.5]")])
    text = result.changed[0].describe()
    assert text == "MW-1[resnet,α=0.5]: refuted → supported (p_adj = 0.003, effect 0.12 [0.05, 0.19])"
    raw = Change("MW-1[x]", "MW-1", "supported", "inconclusive", p_value=0.2)
    assert raw.describe() == "MW-1[x]: supported → inconclusive (p = 0.2)"
    assert Change("MW-1[x]", "MW-1", "refuted", "supported").describe() == "MW-1[x]: refuted → supported"


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"verdict": "maybe"}, r"'results\[0\]\.verdict' parameter of compare"),
        ({"instance_id": None}, r"'results\[0\]\.instance_id'"),
        ({"claim_id": ""}, r"'results\[0\]\.claim_id'"),
    ],
)
def test_compare_rejects_malformed_results(bad, match):
    with pytest.raises(InvalidParameterError, match=match):
        compare(None, [dict(evidence("MW-1[a]"), **bad)])


def test_compare_rejects_duplicate_instance_ids():
    with pytest.raises(InvalidParameterError, match="unique"):
        compare(None, [evidence("MW-1[a]"), evidence("MW-1[a]", "refuted")])


@settings(max_examples=40, deadline=None)
@given(
    old=st.dictionaries(st.sampled_from([f"MW-1[{i}]" for i in range(8)]), st.sampled_from(EXPECTABLE_VERDICTS)),
    new=st.dictionaries(st.sampled_from([f"MW-1[{i}]" for i in range(8)]), st.sampled_from(VERDICTS)),
)
def test_compare_partitions_instances(old, new):
    result = compare(baseline_of(old), [evidence(i, v) for i, v in new.items()])
    ok_new = {i for i, v in new.items() if v != "error"}
    assert {c.instance_id for c in result.changed} == {i for i in ok_new & set(old) if old[i] != new[i]}
    assert set(result.added) == ok_new - set(old)
    assert set(result.removed) == set(old) - set(new)
    assert set(result.errors) == set(new) - ok_new
    assert result.unchanged + len(result.changed) + len(result.added) + len(result.errors) == len(new)
    assert sum(result.counts.values()) == len(new)
    assert result.ok == all(old.get(i, new[i]) == new[i] for i in ok_new)


# ----------------------------------------------------------------------------- bad baselines


def _write_doc(path, **changes):
    doc = {"format_version": 1, "profile": "ci", "profile_hash": None, "recorded": "2000-01-01T00:00:00+00:00",
           "findings": {"MW-1[a]": {"claim_id": "MW-1", "params": {}, "verdict": "supported", "summary": {}}}}
    doc.update(changes)
    path.write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.parametrize(
    "content,needles",
    [
        ('{"format_version": 1,\n "profile" "ci"}', ["does not parse", "line 2", "column"]),
        ("[1, 2]", ["JSON object"]),
        ('{"profile": "ci", "profile": "ci"}', ["'profile' twice"]),
        (dict(format_version=2), ["format_version 2", "reads 1"]),
        (dict(format_version=True), ["format_version True"]),
        (dict(profile="paper"), ["'paper'", "'ci'"]),
        (dict(findings={"XX-9[a]": {"claim_id": "XX-9", "verdict": "supported"}}),
         ["'XX-9'", "GC-1, MH-1, MW-1"]),
        (dict(findings={"MW-1[a]": {"claim_id": "MW-1"}}), ["'MW-1[a]'", "valid verdict"]),
        (dict(findings={"MW-1[a]": {"claim_id": "MW-1", "verdict": "error"}}), ["valid verdict", "'error'"]),
        (dict(findings={"MW-1[a]": {"claim_id": "MW-1", "verdict": "supported", "params": [1]}}), ["'params'"]),
        (dict(findings=[]), ["'findings'"]),
        (dict(recorded=None), ["recorded"]),
    ],
)
def test_bad_baseline_names_file_and_problem(tmp_path, content, needles):
    path = tmp_path / "ci.json"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        _write_doc(path, **content)
    with pytest.raises(BaselineError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_baseline_error_is_a_value_error():
    assert issubclass(BaselineError, ValueError)


# ----------------------------------------------------------------------------- writing


def test_error_results_are_not_written_but_reported(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, [evidence("MW-1[a]", "refuted"), evidence("MW-1[b]")], profile="ci")
    previous = load(path)
    run = [evidence("MW-1[a]", "error"), evidence("MW-1[c]", "error"), evidence("MW-1[b]")]
    result = write_baseline(path, run, profile="ci", previous=previous)
    assert result.errors == ["MW-1[a]", "MW-1[c]"]
    written = load(path)
    assert "MW-1[c]" not in written.findings
    assert written.expected("MW-1[a]") == "refuted"  # an error keeps the old expectation


def test_update_with_a_selection_keeps_other_claims(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, [evidence("MW-1[a]"), evidence("GC-1[b]", "refuted")], profile="ci")
    result = write_baseline(path, [evidence("MW-1[a]", "inconclusive")], profile="ci", previous=load(path),
                            ran_claim_ids={"MW-1"})
    assert [c.describe().split(" (")[0] for c in result.changed] == ["MW-1[a]: supported → inconclusive"]
    written = load(path)
    assert written.expected("GC-1[b]") == "refuted" and written.expected("MW-1[a]") == "inconclusive"
    # without the selection, GC-1 is gone from the full-run baseline
    result = write_baseline(path, [evidence("MW-1[a]", "inconclusive")], profile="ci", previous=written)
    assert result.removed == ["GC-1[b]"] and load(path).expected("GC-1[b]") is None


def test_write_returns_changes_against_previous(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, RUN, profile="ci")
    run = [dict(RUN[0], verdict="inconclusive")] + RUN[1:]
    result = write_baseline(path, run, profile="ci", previous=load(path))
    assert [(c.old_verdict, c.new_verdict) for c in result.changed] == [("supported", "inconclusive")]
    assert compare(load(path), run).ok


def test_rewriting_unchanged_findings_gives_identical_bytes(tmp_path):
    path = tmp_path / "ci.json"
    _write_doc(path)  # recorded in 2000
    write_baseline(path, [evidence("MW-1[a]")], profile="ci", profile_hash="h", previous=load(path))
    first = path.read_bytes()
    assert load(path).recorded != "2000-01-01T00:00:00+00:00"  # findings changed → new time
    write_baseline(path, [evidence("MW-1[a]")], profile="ci", profile_hash="h", previous=load(path))
    assert path.read_bytes() == first
    _write_doc(path, findings=json.loads(first)["findings"])
    write_baseline(path, [evidence("MW-1[a]")], profile="ci", profile_hash=None, previous=load(path))
    assert load(path).recorded == "2000-01-01T00:00:00+00:00"  # same findings and hash → time kept


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ci.json"
    write_baseline(path, RUN, profile="ci")
    assert os.listdir(tmp_path) == ["ci.json"]
    before = path.read_bytes()
    with pytest.raises(BaselineError) as info:
        write_baseline(path, [evidence("MW-1[a]", effect=object())], profile="ci", previous=load(path))
    assert str(path) in str(info.value) and "'MW-1[a]'" in str(info.value) and "'effect'" in str(info.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ci.json"]


def test_failed_replace_keeps_previous_content(tmp_path, monkeypatch):
    path = tmp_path / "ci.json"
    write_baseline(path, RUN, profile="ci")
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(BaselineError, match="disk full"):
        write_baseline(path, [evidence("MW-1[a]", "refuted")], profile="ci")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ci.json"]


def test_write_validates_profile():
    with pytest.raises(InvalidParameterError, match="'profile' parameter of write_baseline"):
        write_baseline("unused.json", RUN, profile="")
    with pytest.raises(InvalidParameterError, match="'previous' parameter"):
        write_baseline("unused.json", RUN, profile="ci", previous=baseline_of({}, profile="paper"))
