"""The HTML report in a real browser: headless Chromium opens index.html from disk.

Uses the Chromium command line (Debian's ``chromium`` package; no Python
browser driver needed): ``--dump-dom`` returns the page after its load event,
when the report's inline self-check has written onto ``<html>`` how many
figures decoded (``data-figures-*``) and every page error it saw
(``data-page-errors``: window errors, failed loads, Content-Security-Policy
violations, ``console.error``); the browser's own console log on stderr is
checked too. ``--screenshot`` saves what a reader would see.

Skipped, with the reason, when no Chromium/Chrome is on PATH. On Debian:
``apt-get install -y chromium``.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis import plots
from analysis.report import build_report, new_staging_dir, publish_report

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); "
                "install Chromium (Debian: apt-get install -y chromium) to check the HTML report")


def _chromium(browser: str, page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *mode, page.as_uri(),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, HOME=str(profile)))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{browser} did not finish within 120 s: {' '.join(command)}")
    assert result.returncode == 0, f"{browser} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result


def _self_check(dom: str) -> dict[str, str]:
    root = re.search(r"<html\b[^>]*>", dom)
    assert root, f"no <html> element in the dumped DOM:\n{dom[:500]}"
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', root.group(0)))


def _console_messages(stderr: str, page: Path) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line and page.name in line]


def _record(claim_id: str, instance: str, verdict: str, figures: list[str], **more) -> dict:
    """A realistic Evidence dict (analysis/evidence.py), as a claim run produces it."""
    base = {
        "claim_id": claim_id, "instance_id": f"{claim_id}[{instance}]", "params": {"exp": instance},
        "sentence": "Functional distance grows with the pruning ratio.", "verdict": verdict, "asserted": True,
        "not_asserted_reason": "", "form": "trend", "test": "per-unit Kendall tau, one-sided t across units",
        "unit": "base model B_i with its own pruned copies", "conditional_on": None, "statistic": 4.1,
        "p_value": 0.0021, "p_adjusted": 0.0042, "p_refute": 0.99, "p_refute_adjusted": 1.0,
        "decided_by": "support" if verdict == "supported" else ("refute" if verdict == "refuted" else None),
        "alpha": 0.05, "effect": 0.61, "effect_name": "mean per-unit Kendall τ", "scale": "Kendall tau",
        "ci": [0.3, 0.85], "ci_level": 0.9, "reference": 0.0, "margin": None, "effect_of_interest": 0.5,
        "n": {"units": 8}, "power": 0.83, "mde": 0.41, "power_detail": {"level": 0.025, "simulations": 2000},
        "underpowered": False, "cannot_decide": False, "stability": 0.97, "fragile": False,
        "deviations": ["data: paper MNIST; ours digits"], "parts": [], "replicates": {},
        "paper_value": "landscapes", "ours_value": 0.61, "figures": figures, "notes": [],
        "environment": {"torch": "2.x", "numerics": "portable"}, "details": {},
    }
    return {**base, **more}


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    report_dir = tmp_path / "report"
    staging = new_staging_dir(report_dir)
    trend = plots.plot_trend([0.1, 0.5, 0.9], {"lenet": np.array([[0.1, 0.3, 0.6], [0.12, 0.28, 0.7]])},
                             staging / "figures" / "trend.png", "distance vs pruning ratio", "ratio", "JS divergence")
    heat = plots.plot_heatmap(np.array([[1.0, 0.4], [0.4, 1.0]]), ["conv1", "fc"], ["conv1", "fc"],
                              staging / "figures" / "cka.png", "CKA", paper=np.array([[1.0, 0.5], [np.nan, 1.0]]))
    rel = lambda p: p.relative_to(staging).as_posix()  # noqa: E731
    records = [
        _record("MW-6", "lenet", "supported", [rel(trend)]),
        _record("MW-6", "resnet", "refuted", [rel(trend)], fragile=True, stability=0.6),  # same figure: shown once
        _record("GC-1", "resnet18", "inconclusive", [rel(heat)], underpowered=True, power=0.3),
    ]
    doc = build_report(records, run={"profile": "smoke", "seeds": {"mw.base_seeds": [0, 1, 2]}, "device": "cpu",
                                     "deviations": [{"claims": "MW-*", "setting": "data", "paper": "MNIST",
                                                     "ours": "digits", "why": ""}]})
    return publish_report(doc, staging, report_dir)["html"]


def test_report_figures_decode_without_errors(browser, report, tmp_path):
    result = _chromium(browser, report, tmp_path / "profile", "--dump-dom")
    check = _self_check(result.stdout)
    # two forest plots (MW-6, GC-1), the trend once (two MW-6 instances share it), the heatmap
    assert check.get("data-figures-total") == "4", check
    assert check.get("data-figures-decoded") == "4", check
    assert check.get("data-figures-ok") == "true", check
    assert json.loads(html.unescape(check["data-page-errors"])) == []
    assert _console_messages(result.stderr, report) == []

    screenshot = tmp_path / "screenshot.png"
    _chromium(browser, report, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={screenshot}")
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    from matplotlib.image import imread

    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.01  # something was drawn, not a blank page


def test_self_check_catches_broken_figure_and_network_reference(browser, report, tmp_path):
    """The instrument can fail: an undecodable image and a blocked network image are reported."""
    broken = report.with_name("broken.html")
    page = report.read_text(encoding="utf-8")
    injected = ('<img src="data:image/png;base64,AAAA" alt="broken">'
                '<img src="http://127.0.0.1:9/figure.png" alt="remote">')
    broken.write_text(page.replace("</body>", injected + "</body>"), encoding="utf-8")
    result = _chromium(browser, broken, tmp_path / "profile", "--dump-dom")
    check = _self_check(result.stdout)
    assert check.get("data-figures-total") == "6", check
    assert check.get("data-figures-decoded") == "4", check
    assert check.get("data-figures-ok") == "false", check
    errors = json.loads(html.unescape(check["data-page-errors"]))
    assert any("127.0.0.1:9" in error for error in errors), errors
