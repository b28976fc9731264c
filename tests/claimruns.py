"""Start ``pytest claims`` in a subprocess, the way a user does, with its own store, report and baseline."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_claims(tmp: Path, *args: str, cwd: Path = ROOT, timeout: int = 900, env: dict | None = None,
               claims: str = "claims") -> subprocess.CompletedProcess:
    findings = tmp / "findings.json"
    # An explicit --findings must exist (a typo must not read as "no baseline"), except when it is being written.
    use = ["--findings", str(findings)] if findings.exists() or "--update-findings" in args else []
    cmd = [sys.executable, "-m", "pytest", claims, "-p", "no:cacheprovider", "-q",
           "--artifact-dir", str(tmp / "artifacts"), "--report-dir", str(tmp / "report"), *use, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr
