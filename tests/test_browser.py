"""The HTML report in a real browser: headless Chromium opens index.html from disk.

Uses the Chromium command line (Debian's ``chromium`` package; no Python
browser driver needed): ``--dump-dom`` returns the page after its load event,
when the report's inline self-check has written onto ``<html>`` how many
figures decoded (``data-figures-*``) and every page error it saw
(``data-page-errors``: window errors, failed loads, Content-Security-Policy
violations, ``console.error``); the browser's own console log on stderr is
checked too, and the page's width against the window's (the verdict table
must wrap, not scroll sideways, at 1280 px). ``--screenshot`` saves what a
reader would see.

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

import evidence_factory as factory
import analysis.plots as plots
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


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    """A realistic report published the way a run does it: figures drawn in staging, then swapped in."""
    report_dir = tmp_path / "reports" / "ci"
    staging = new_staging_dir(report_dir)
    plots.plot_trend([0.1, 0.5, 0.9], {"lenet": np.array([[0.1, 0.3, 0.6], [0.12, 0.28, 0.7]])},
                     staging / "figures" / "trend.png", "distance vs pruning ratio", "ratio", "JS divergence")
    plots.plot_heatmap(np.array([[1.0, 0.4], [0.4, 1.0]]), ["conv1", "fc"], ["conv1", "fc"],
                       staging / "figures" / "cka.png", "CKA", paper=np.array([[1.0, 0.5], [np.nan, 1.0]]))
    doc = build_report(factory.records("figures/trend.png", "figures/cka.png"), run=factory.run(),
                       regression=factory.regression())
    return publish_report(doc, staging, report_dir)["html"]


def test_report_figures_decode_without_errors_and_fit_the_window(browser, report, tmp_path):
    result = _chromium(browser, report, tmp_path / "profile", "--window-size=1280,900", "--dump-dom")
    check = _self_check(result.stdout)
    # Three forest plots, the trend and the CKA heatmap (shown under two claims, embedded once).
    assert check.get("data-figures-total") == "5", check
    assert check.get("data-figures-decoded") == "5", check
    assert check.get("data-figures-ok") == "true", check
    assert json.loads(html.unescape(check["data-page-errors"])) == []
    assert _console_messages(result.stderr, report) == []
    # The verdict table wraps instead of scrolling sideways in a 1280-px window.
    assert int(check["data-page-width"]) <= int(check["data-window-width"]) == 1280, check

    screenshot = tmp_path / "screenshot.png"
    _chromium(browser, report, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={screenshot}")
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    from matplotlib.image import imread

    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.01  # something was drawn, not a blank page


def test_self_check_catches_broken_figure_and_network_reference(browser, report, tmp_path):
    """The instrument can fail: an undecodable image, a blocked network image and a too wide page are reported."""
    broken = report.with_name("broken.html")
    page = report.read_text(encoding="utf-8")
    injected = ('<img src="data:image/png;base64,AAAA" alt="broken">'
                '<img src="http://127.0.0.1:9/figure.png" alt="remote"><div style="width:2000px">wide</div>')
    broken.write_text(page.replace("</body>", injected + "</body>"), encoding="utf-8")
    result = _chromium(browser, broken, tmp_path / "profile", "--window-size=1280,900", "--dump-dom")
    check = _self_check(result.stdout)
    assert check.get("data-figures-total") == "7", check
    assert check.get("data-figures-decoded") == "5", check
    assert check.get("data-figures-ok") == "false", check
    errors = json.loads(html.unescape(check["data-page-errors"]))
    assert any("127.0.0.1:9" in error for error in errors), errors
    assert int(check["data-page-width"]) > int(check["data-window-width"]), check
