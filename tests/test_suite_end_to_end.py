"""The claims machinery end to end, as a user runs it: `pytest claims` on the smoke profile.

Each test starts pytest in a subprocess (the way a user invokes the suite) with
its own artifact store, report directory and findings file, so the tests do
not touch the repository's `.artifacts/` or `reports/`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def built_files(tmp: Path) -> list[Path]:
    return list((tmp / "artifacts").rglob("*.pt"))


def run_claims(tmp: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "claims", "-p", "no:cacheprovider", "-q",
           "--artifact-dir", str(tmp / "artifacts"), "--report-dir", str(tmp / "report"),
           "--findings", str(tmp / "findings.json"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One cold smoke run that records its findings baseline, then a warm re-run against it."""
    tmp = tmp_path_factory.mktemp("smoke")
    cold = run_claims(tmp, "--profile", "smoke", "--update-findings")
    warm = run_claims(tmp, "--profile", "smoke")
    return tmp, cold, warm


def test_smoke_profile_runs_every_claim_and_writes_the_report(smoke_run):
    tmp, cold, _ = smoke_run
    assert cold.returncode == 0, cold.stdout[-3000:] + cold.stderr[-3000:]
    doc = json.loads((tmp / "report" / "claims.json").read_text())
    claim_ids = {r["claim_id"] for r in doc["claims"]}
    # MW-8 needs two architectures on one dataset; smoke has one, so it is skipped with a reason.
    assert {f"MW-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9)} <= claim_ids
    assert {f"GC-{i}" for i in range(1, 7)} <= claim_ids
    for r in doc["claims"]:
        assert r["verdict"] in ("supported", "refuted", "inconclusive")
        for key in ("instance_id", "params", "test", "p_value", "p_adjusted", "effect", "ci", "n", "paper_value", "figures"):
            assert key in r
    md = (tmp / "report" / "claims.md").read_text()
    html = (tmp / "report" / "index.html").read_text()
    assert "MW-1" in md and "GC-1" in md
    assert "data:image/png;base64," in html
    assert any("landscape" in f["path"] for f in doc["figures"])
    findings = json.loads((tmp / "findings.json").read_text())
    assert set(findings["findings"]) == {r["instance_id"] for r in doc["claims"]}


def test_warm_rerun_trains_nothing_and_matches_the_baseline(smoke_run):
    tmp, _, warm = smoke_run
    assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-3000:]
    doc = json.loads((tmp / "report" / "claims.json").read_text())
    assert doc["run"]["artifacts"]["built"] == 0
    assert doc["run"]["artifacts"]["loaded"] > 0
    assert "0 changed" in warm.stdout


def test_changed_verdict_fails_the_run_and_is_named(smoke_run, tmp_path):
    tmp, _, _ = smoke_run
    findings = json.loads((tmp / "findings.json").read_text())
    iid, entry = next((k, v) for k, v in findings["findings"].items() if v["claim_id"] == "MW-4")
    flipped = "refuted" if entry["verdict"] != "refuted" else "supported"
    entry["verdict"] = flipped
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(findings))
    res = run_claims(tmp, "--profile", "smoke", "--findings", str(edited), "-k", "mw4")
    assert res.returncode == 1
    assert f"{iid}: {flipped} →" in res.stdout


def test_plan_lists_artifacts_without_training(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", "--plan")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "to build" in res.stdout and "train" in res.stdout
    assert not built_files(tmp_path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--profile", "nope"], "Valid profiles: ci, paper, smoke"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        (["--profile", "paper", "--data-root", "/nonexistent"], "cifar-10-batches-py"),
    ],
)
def test_bad_input_stops_before_training(tmp_path, args, needle):
    res = run_claims(tmp_path, *args)
    assert res.returncode != 0
    assert needle in res.stdout + res.stderr
    assert not built_files(tmp_path)


def test_malformed_profile_names_key_and_allowed_values(tmp_path):
    bad = tmp_path / "bad.toml"
    text = (ROOT / "claims" / "profiles" / "smoke.toml").read_text().replace('arch = "lenet5"', 'arch = "lenet7"', 1)
    bad.write_text(text)
    res = run_claims(tmp_path, "--profile", str(bad))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "lenet7" in out and "resnet18" in out and "mw.experiments[0].arch" in out


def test_bad_findings_baseline_is_a_usage_error(tmp_path):
    (tmp_path / "findings.json").write_text("{not json")
    res = run_claims(tmp_path, "--profile", "smoke")
    assert res.returncode != 0
    assert "findings.json" in res.stdout + res.stderr


def test_two_workers_share_the_store_and_build_each_artifact_once(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", "-n", "2", "--update-findings")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    built = [json.loads(line) for line in (tmp_path / "artifacts" / "store.log").read_text().splitlines()]
    keys = [e["key"] for e in built if e["event"] == "built"]
    assert len(keys) == len(set(keys)) > 0
    assert {e["worker"] for e in built if e["event"] == "built"} == {"gw0", "gw1"}
