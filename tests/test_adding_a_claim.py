"""README's "Adding a claim" holds: a claim added as nothing but a claims module (and its baseline) runs.

The claim is ``tests/example/claims/test_example_claim.py`` (``MW-xSixteenBitAccuracy``, an
extension); its committed baseline is ``tests/example/claims/findings/smoke.json``. Nothing else in
the suite names it. It runs on the smoke profile the way a user runs a paper's claims.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claimruns import ROOT, output, run_claims

pytestmark = pytest.mark.slow
EXAMPLE = ROOT / "tests" / "example" / "claims"
INSTANCE = "MW-xSixteenBitAccuracy[fake-lenet5]"


def _instance(tmp: Path) -> dict:
    doc = json.loads((tmp / "report" / "claims.json").read_text())
    return next(i for i in doc["claims"] if i["instance_id"] == INSTANCE)


def test_the_example_claim_is_one_module_and_its_baseline():
    assert sorted(p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts) == ["findings/smoke.json", "test_example_claim.py"]
    suite = [*ROOT.glob("fixtures/*.py"), *ROOT.glob("compress/**/*.py"), *ROOT.glob("analysis/**/*.py"),
             *ROOT.glob("claims/**/*"), ROOT / "conftest.py", ROOT / "pyproject.toml"]
    assert not [p for p in suite if p.is_file() and "xSixteenBitAccuracy" in p.read_text(errors="replace")]


def test_the_example_claim_runs_on_the_smoke_profile_against_its_committed_baseline(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", claims="tests/example/claims")
    assert res.returncode == 0, output(res)
    assert f"findings vs baseline {EXAMPLE / 'findings' / 'smoke.json'}" in output(res)
    assert "0 changed, 0 shifted" in output(res)
    instance = _instance(tmp_path)
    baseline = json.loads((EXAMPLE / "findings" / "smoke.json").read_text())["findings"][INSTANCE]
    assert instance["verdict"] == baseline["verdict"]
    assert instance["power"] is not None and instance["mde"] is not None
    assert any("Extension: MW-xSixteenBitAccuracy is not a claim of the paper" in n for n in instance["notes"])
    # It read only what it declared (base, quantized): no student or pruned model was built.
    built = " ".join(p.name for p in (tmp_path / "artifacts").rglob("*.pt"))
    assert "distill" not in built and "prune" not in built


def _profile_with(tmp_path: Path, effects: str) -> Path:
    text = (ROOT / "claims" / "profiles" / "smoke.toml").read_text()
    path = tmp_path / "smoke.toml"
    path.write_text(text.replace("[gc]", f"[mw.effects]\n{effects}\n\n[gc]", 1))
    return path


def test_its_effect_of_interest_is_set_in_the_profile(tmp_path):
    profile = _profile_with(tmp_path, "sixteen_bit_accuracy_margin = 0.25")
    res = run_claims(tmp_path, "--profile", str(profile), "--findings", str(EXAMPLE / "findings" / "smoke.json"),
                     claims="tests/example/claims")
    assert res.returncode == 0, output(res)
    instance = _instance(tmp_path)
    assert instance["effect_of_interest"] == 0.25 and instance["margin"] == [-0.25, None]


def test_a_misspelt_effect_key_is_named_with_the_valid_ones_before_any_training(tmp_path):
    profile = _profile_with(tmp_path, "sixteen_bit_acuracy_margin = 0.25")
    res = run_claims(tmp_path, "--profile", str(profile), claims="tests/example/claims")
    assert res.returncode == 4, output(res)
    assert "unknown key 'sixteen_bit_acuracy_margin' in [mw.effects]" in output(res)
    assert "sixteen_bit_accuracy_margin" in output(res).split("Valid keys:")[1] and "mw3_accuracy_margin" in output(res)
    assert not list((tmp_path / "artifacts").rglob("*.pt"))


def test_only_tests_run_does_not_run_the_example_claim():
    res = subprocess.run([sys.executable, "-m", "pytest", str(EXAMPLE), "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--profile", "smoke", "--plan"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "MW-xSixteenBitAccuracy" in output(res)
    res = subprocess.run([sys.executable, "-m", "pytest", "tests/example", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "no tests collected" in output(res) or "0 tests" in output(res), output(res)
