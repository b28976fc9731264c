"""The claims machinery end to end, as a user runs it: `pytest claims` on the smoke profile.

Each test starts pytest in a subprocess (the way a user invokes the suite) with
its own artifact store, report directory and findings file, so the tests do
not touch the repository's `.artifacts/` or `reports/`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from claimruns import ROOT, output, run_claims

pytestmark = pytest.mark.slow


def built_files(tmp: Path) -> list[Path]:
    return list((tmp / "artifacts").rglob("*.pt"))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One cold smoke run that records its findings baseline, then a warm re-run against it."""
    tmp = tmp_path_factory.mktemp("smoke")
    cold = run_claims(tmp, "--profile", "smoke", "--update-findings")
    warm = run_claims(tmp, "--profile", "smoke")
    return tmp, cold, warm


def test_smoke_profile_runs_every_claim_and_publishes_the_report(smoke_run):
    tmp, cold, _ = smoke_run
    assert cold.returncode == 0, output(cold)[-4000:]
    doc = json.loads((tmp / "report" / "claims.json").read_text())
    assert {r["claim_id"] for r in doc["claims"]} == {f"MW-{i}" for i in range(1, 10)} | {f"GC-{i}" for i in range(1, 7)} | {
        f"MH-{i}" for i in range(1, 7)} | {f"SH-{i}" for i in range(1, 10)}
    for r in doc["claims"]:
        assert r["verdict"] in ("supported", "refuted", "inconclusive")
        assert r["environment"]["numerics"] in ("portable", "native") and "torch" in r["environment"]
        if r["asserted"] and r["form"] not in ("number", "exact"):
            for key in ("power", "stability", "p_adjusted", "ci", "ci_level", "unit", "replicates"):
                assert r[key] is not None, (r["instance_id"], key)
            assert r["mde"] is not None or r["power_detail"]["mde"].startswith("none"), r["instance_id"]
    findings = json.loads((tmp / "findings.json").read_text())
    assert set(findings["findings"]) == {r["instance_id"] for r in doc["claims"]}
    assert findings["environment"]["numerics"] in ("portable", "native")
    html = (tmp / "report" / "index.html").read_text()
    assert "data:image/png;base64," in html and "MW-1" in html


def test_warm_rerun_trains_nothing_and_matches_the_baseline(smoke_run):
    tmp, _, warm = smoke_run
    assert warm.returncode == 0, output(warm)[-4000:]
    doc = json.loads((tmp / "report" / "claims.json").read_text())
    assert doc["run"]["artifacts"]["built"] == 0 and doc["run"]["artifacts"]["loaded"] > 0
    assert "0 changed, 0 shifted" in warm.stdout


def _edited_baseline(tmp: Path, tmp_path: Path, *, stability: float | None) -> tuple[str, str, str, Path]:
    """The smoke baseline with one asserted, robust instance's verdict flipped (and its stability set)."""
    findings = json.loads((tmp / "findings.json").read_text())
    robust = [(k, v) for k, v in findings["findings"].items()
              if v["asserted"] and v.get("stability") is not None and v["stability"] >= 0.9]
    if not robust:
        pytest.skip("no robust asserted instance in this smoke baseline")
    iid, entry = robust[0]
    flipped = "refuted" if entry["verdict"] != "refuted" else "supported"
    entry["verdict"] = flipped
    if stability is not None:
        entry["stability"] = stability
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(findings))
    return iid, entry["claim_id"], flipped, edited


def test_a_robust_verdict_change_fails_the_run_and_is_named(smoke_run, tmp_path):
    tmp, _, _ = smoke_run
    iid, claim_id, flipped, edited = _edited_baseline(tmp, tmp_path, stability=None)
    res = run_claims(tmp, "--profile", "smoke", "--findings", str(edited), "-k", claim_id)
    assert res.returncode == 1, output(res)[-3000:]
    assert f"{iid}: {flipped} →" in res.stdout


def test_a_fragile_flip_is_reported_and_does_not_fail(smoke_run, tmp_path):
    tmp, _, _ = smoke_run
    iid, claim_id, _, edited = _edited_baseline(tmp, tmp_path, stability=0.5)
    res = run_claims(tmp, "--profile", "smoke", "--findings", str(edited), "-k", claim_id)
    assert res.returncode == 0, output(res)[-3000:]
    assert "fragile-flip" in res.stdout and iid in res.stdout


def test_plan_lists_artifacts_without_training(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", "--plan", "-n", "2")
    assert res.returncode == 0, output(res)
    assert "to build" in res.stdout and "train" in res.stdout
    assert "by probe" in res.stdout and "estimated build time ~" in res.stdout and "with -n 2 about ~" in res.stdout
    assert "on cuda: ~" in res.stdout and "GPU-hours; on 1 GPU about ~" in res.stdout
    assert not built_files(tmp_path)
    gpus = run_claims(tmp_path, "--profile", "smoke", "--plan", "--plan-gpus", "4", "--plan-gpu-tflops", "50")
    assert gpus.returncode == 0 and "on 4 GPUs about ~" in gpus.stdout and "assumed 50 TFLOP/s" in gpus.stdout


def test_plan_predicts_power_from_the_baseline_without_training(smoke_run):
    tmp, cold, _ = smoke_run
    assert cold.returncode == 0
    findings = json.loads((tmp / "findings.json").read_text())["findings"]
    powered = [k for k, v in findings.items() if v["asserted"] and v["summary"].get("power") is not None]
    assert powered and all(findings[k]["summary"]["power_curve"] for k in powered)
    res = run_claims(tmp, "--profile", "smoke", "--plan")
    assert res.returncode == 0, output(res)[-3000:]
    assert "Power plan" in res.stdout and "predicted power >= 0.8 for" in res.stdout
    row = next(line for line in res.stdout.splitlines() if line.strip().startswith(powered[0] + " "))
    units = findings[powered[0]]["summary"]["n"]["units"]
    assert f" {units} " in row, row


@pytest.mark.parametrize(("args", "needle"), [
    (["--profile", "nope"], "Valid profiles: ci, paper, smoke"),
    (["--device", "tpu"], "--device 'tpu' is not a valid device. Valid devices: auto, cpu, cuda."),
    (["--profile", "smoke", "--data-root", "/nonexistent"], "--data-root /nonexistent does not exist"),
    (["--profile", "paper", "--data-root", "/"], "cifar-10-batches-py"),
    (["--profile", "smoke", "--lock-timeout", "0"], "--lock-timeout must be a number of seconds > 0"),
    (["--profile", "smoke", "--executor", "dask"], "--executor 'dask' is not a valid executor. Valid executors: local, ray."),
    (["--profile", "smoke", "--ray-address", "auto"], "--ray-address needs --executor ray."),
    (["--profile", "smoke", "--plan", "--plan-gpus", "0"], "--plan-gpus 0: expected a positive number."),
    (["--profile", "smoke", "--plan-gpu-tflops", "20"], "--plan-gpu-tflops needs --plan."),
])
def test_bad_input_stops_before_training(tmp_path, args, needle):
    res = run_claims(tmp_path, *args)
    assert res.returncode != 0 and needle in output(res), output(res)[-2000:]
    assert not built_files(tmp_path)


def test_malformed_profile_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    text = (ROOT / "claims" / "profiles" / "smoke.toml").read_text()
    bad.write_text(text.replace('arch = "lenet5"', 'arch = "lenet7"', 1).replace("seeds = [0, 1]", "seeds = [0, 0]"))
    res = run_claims(tmp_path, "--profile", str(bad))
    out = output(res)
    assert res.returncode != 0 and "2 problems" in out
    assert "'mw.experiments[0].arch'" in out and "lenet7" in out and "'gc.seeds'" in out
    assert not built_files(tmp_path)


def test_bad_findings_baselines_are_usage_errors(tmp_path):
    (tmp_path / "findings.json").write_text("{not json")
    res = run_claims(tmp_path, "--profile", "smoke")
    assert res.returncode != 0 and "findings.json" in output(res) and "does not parse" in output(res)
    res = run_claims(tmp_path, "--profile", "smoke", "--findings", str(tmp_path / "typo.json"))
    assert res.returncode != 0 and "typo.json does not exist" in output(res)
    (tmp_path / "adir").mkdir()
    res = run_claims(tmp_path, "--profile", "smoke", "--findings", str(tmp_path / "adir"), "--update-findings")
    assert res.returncode != 0 and "is a directory" in output(res).lower()
    assert not built_files(tmp_path)


@pytest.mark.parametrize("flag", ["--artifact-dir", "--report-dir"])
def test_an_unusable_output_directory_is_named_before_training(tmp_path, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    res = run_claims(tmp_path, "--profile", "smoke", flag, str(blocker))
    assert res.returncode != 0 and flag in output(res) and str(blocker) in output(res), output(res)[-2000:]
    assert not built_files(tmp_path)


def test_running_from_outside_the_project_names_the_cause(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", cwd=tmp_path)
    assert res.returncode != 0 and "outside the project" in output(res) and str(ROOT) in output(res)


def test_two_workers_share_the_store_and_build_each_artifact_once(tmp_path):
    res = run_claims(tmp_path, "--profile", "smoke", "-n", "2", "--update-findings")
    assert res.returncode == 0, output(res)[-3000:]
    built = [json.loads(line) for line in (tmp_path / "artifacts" / "store.log").read_text().splitlines()]
    keys = [e["key"] for e in built if e["event"] == "built"]
    assert len(keys) == len(set(keys)) > 0
    assert {e["worker"] for e in built if e["event"] == "built"} == {"gw0", "gw1"}


TINY_KD = """\
name = "tiny-kd"
alpha = 0.05
power_simulations = 200
stability_resamples = 50
[train]
epochs = 15
lr = 0.02
[mw]
experiments = [{ arch = "lenet5", dataset = "digits" }]
base_seeds = [0, 1, 2, 3, 4, 5]
independent_seeds = [10, 11, 12, 13, 14, 15]
student_seeds = [20, 21, 22, 23, 24, 25]
kd_teacher_weights = [0.5, 0.9]
prune_ratios = [0.3, 0.7]
claims = ["MW-1", "MW-9"]
"""


def test_a_broken_experiment_fails_the_gate(tmp_path):
    """KD students distilled from an untrained teacher: the findings gate must fail (changed or shifted)."""
    profile = tmp_path / "tiny-kd.toml"
    profile.write_text(TINY_KD)
    # An old-format baseline is what --update-findings exists to replace: it must not refuse the run.
    (tmp_path / "findings.json").write_text('{"format_version": 1, "findings": {}}')
    good = run_claims(tmp_path, "--profile", str(profile), "--update-findings")
    assert good.returncode == 0, output(good)[-3000:]
    assert "replaced whole" in good.stdout and "format_version 1" in good.stdout
    assert '"format_version": 2' in (tmp_path / "findings.json").read_text()
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    broken = run_claims(tmp_path, "--profile", str(profile), "-p", "fault_broken_teacher", env=env)
    assert broken.returncode == 1, output(broken)[-3000:]
    failing = [line for line in broken.stdout.splitlines() if line.strip().startswith(("changed", "shifted"))]
    assert failing and any("MW-9" in line or "MW-1" in line for line in failing), broken.stdout[-3000:]
