"""benchmarks/gpu_check.py, the GPU check kit: without a GPU it says it is unrun and exits 0 (CI has none)."""
from __future__ import annotations

import os
import subprocess
import sys

from claimruns import ROOT


def test_the_gpu_kit_skips_cleanly_without_cuda():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("gpu_check: unrun: no CUDA device") and "nothing was measured" in res.stdout


def _run(returncode=0, **verdicts):
    return {"returncode": returncode, "verdicts": verdicts, "hashes": {f"{k}.pt": v for k, v in verdicts.items()}}


def test_two_dry_runs_agree_only_with_the_same_verdicts_for_the_same_instances():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check import compare_runs

    same = compare_runs(_run(a="supported", b="refuted"), _run(a="supported", b="refuted"))
    assert same == {"verdicts_equal": 2, "instances": 2, "bytes_equal": 2, "artifacts_compared": 2, "ok": True}
    assert not compare_runs(_run(a="supported", b="refuted"), _run(a="supported", b="inconclusive"))["ok"]
    assert not compare_runs(_run(a="supported", b="refuted"), _run(a="supported"))["ok"]  # an instance went missing
    assert not compare_runs(_run(1, a="supported"), _run(a="supported"))["ok"]  # a run failed
    assert not compare_runs(_run(), _run())["ok"]  # nothing reached a verdict
