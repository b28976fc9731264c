"""Tests for the claim-status report (document, Markdown, HTML, comparison, CLI), the landscape and the plots.

Publishing (atomic swap, umask, report-directory checks) is tested in
test_report_publish.py; the HTML in a real browser in test_browser.py.
"""
from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import evidence_factory as factory
import analysis.plots as plots
from analysis._validation import InvalidParameterError
from analysis.measure.landscape import default_perplexity, functional_landscape
from analysis.report import (
    SCHEMA_VERSION,
    VERDICTS,
    ReportError,
    ReportSchemaError,
    build_report,
    compare_reports,
    format_number,
    format_p,
    load_report,
    main,
    render_compare_markdown,
    render_html,
    render_markdown,
    write_report,
)
from analysis.report import _view

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TREND, CKA = "figures/trend.png", "figures/cka.png"
NBSP = "\u00a0"


def _draw_figures(report_dir: Path) -> None:
    plots.plot_trend([0.1, 0.3, 0.5], {"lenet": np.array([[0.1, 0.2, 0.4], [0.15, 0.25, 0.35]])},
                     report_dir / TREND, "JS divergence vs ratio", "ratio", "JS")
    plots.plot_heatmap(np.eye(3), ["l1", "l2", "l3"], ["l1", "l2", "l3"], report_dir / CKA, "CKA")


def _doc(**run_changes) -> dict:
    return build_report(factory.records(TREND, CKA), run=factory.run(**run_changes), regression=factory.regression())


@pytest.fixture()
def written(tmp_path: Path) -> tuple[Path, dict]:
    """A report written into tmp_path with its figures: (directory, document)."""
    _draw_figures(tmp_path)
    doc = _doc()
    write_report(doc, tmp_path)
    return tmp_path, doc


class _Page(HTMLParser):
    """Start tags (with attributes) and the text of a page, in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.chunks: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def images(self) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == "img"]


# ------------------------------------------------------------------ document


def test_summary_counts_relate_to_the_records():
    records = factory.records(TREND, CKA)
    doc = build_report(records, run=factory.run(), regression=factory.regression())
    summary = doc["summary"]
    expected = Counter(r["verdict"] for r in records)
    assert summary["verdicts"] == {v: expected.get(v, 0) for v in VERDICTS}
    assert summary["total"] == len(records) == sum(p["total"] for p in summary["per_paper"].values())
    assert list(summary["per_paper"]) == ["MW", "GC"]  # CLAIMS.md order, not alphabetical
    asserted = [r for r in records if r["asserted"]]
    with_power = [r for r in asserted if r["power"] is not None]
    assert summary["asserted"] == len(asserted) and summary["asserted_with_power"] == len(with_power)
    assert math.isclose(summary["powered_share"], sum(r["power"] >= 0.8 for r in with_power) / len(with_power))
    assert summary["fragile"] == sum(r["fragile"] for r in records) == 2
    assert summary["underpowered"] == sum(r["underpowered"] for r in records) == 2  # one of them cannot decide
    assert summary["cannot_decide"] == 1
    assert summary["design_status"] == {
        status: sum(r["asserted"] and r["design_status"] == status for r in records) for status in
        ("decided", "inconclusive-powered", "inconclusive-underpowered")}
    assert summary["design_status"]["inconclusive-powered"] == 1 and summary["design_status"]["decided"] >= 3
    assert summary["regression"] == factory.regression()["summary"]
    assert build_report(records, run=factory.run())["summary"]["regression"] is None


def test_claims_sorted_by_paper_claim_number_and_instance_numbers():
    records = [factory.evidence("MW-10"), factory.evidence("GC-1"), factory.evidence("MW-2", {"bits": 16}),
               factory.evidence("MW-2", {"bits": 8})]
    doc = build_report(records, run=factory.run())
    assert [r["instance_id"] for r in doc["claims"]] == ["MW-2[bits=8]", "MW-2[bits=16]", "MW-10[digits-lenet5]",
                                                        "GC-1[digits-lenet5]"]


def test_paper_tables_pivot_the_records_table_rows():
    doc = _doc()
    (table,) = doc["tables"]
    assert table["title"] == "GC Table 2: accuracy (%)"
    assert table["columns"] == ["experiment", "pruned", "distilled"]
    assert table["rows"] == [["digits-resnet18", "91.2 (93.1)", "92.5 (—)"]]
    assert table["note"] == "Each cell: ours (paper). paper: CIFAR-10"


def test_figures_are_listed_once_per_claim_forest_plot_first():
    doc = _doc()
    by_claim = {}
    for figure in doc["figures"]:
        by_claim.setdefault(figure["claim_id"], []).append(figure)
    assert [f["path"] for f in by_claim["MW-1"]] == ["figures/forest_MW-1.png", TREND, CKA]
    assert by_claim["MW-1"][1]["instances"] == ["MW-1[digits-lenet5,α=0.1]", "MW-1[digits-lenet5,α=0.9]"]
    assert [f["kind"] for f in by_claim["GC-2"]] == ["forest", "evidence"]
    # A forest plot needs an effect with a CI: none for the untested, the failed, or the one without a CI.
    assert {"MW-4", "MW-9", "GC-5"}.isdisjoint(by_claim)
    forest = by_claim["MW-3"][0]
    assert forest["instances"] == ["MW-3[digits-lenet5,bits=4]", "MW-3[digits-lenet5,bits=8]",
                                   "MW-3[digits-lenet5,bits=16]"]


def test_non_finite_and_numpy_values_become_plain_json():
    record = factory.evidence(statistic=np.float32(1.5), effect=float("inf"), p_value=float("nan"),
                              n={"units": np.int64(3)}, ci=np.array([0.1, 0.2]))
    claim = build_report([record], run=factory.run())["claims"][0]
    assert claim["p_value"] is None and claim["effect"] is None
    assert claim["statistic"] == 1.5 and type(claim["statistic"]) is float
    assert claim["n"] == {"units": 3} and type(claim["n"]["units"]) is int
    assert claim["ci"] == [0.1, 0.2]


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


@pytest.mark.parametrize(
    ("records", "run", "regression", "fragment"),
    [
        ([_without(factory.evidence(), "power")], factory.run(), None, "records[0]"),
        ([dict(factory.evidence(), design={"power": 0.5})], factory.run(), None, "'design'"),
        ([dict(factory.evidence(), verdict="maybe")], factory.run(), None, "records[0]['verdict']"),
        ([dict(factory.evidence(), instance_id="MW-1[other]")], factory.run(), None, "'instance_id'"),
        ([factory.evidence(), factory.evidence()], factory.run(), None, "twice"),
        ([factory.evidence(figures="figures/a.png")], factory.run(), None, "['figures']"),
        ("MW-1", factory.run(), None, "'records'"),
        ([factory.evidence()], _without(factory.run(), "deviations"), None, "'deviations'"),
        ([factory.evidence()], factory.run(deviations=[{"claims": "MW-*"}]), None, "run['deviations'][0]"),
        ([factory.evidence()], factory.run(baseline={"path": "x"}), None, "run['baseline']"),
        ([factory.evidence()], factory.run(), {"summary": "", "instances": {"MW-1": {"status": "moved", "failed": 0}},
                                                "removed": []}, "['status']"),
        ([factory.evidence(details={"table_rows": [{"table": "t", "row": "r", "column": "c", "ours": "x",
                                                     "paper": 1.0}]})], factory.run(), None, "table_rows"),
    ],
)
def test_build_report_names_the_bad_input(records, run, regression, fragment):
    with pytest.raises(InvalidParameterError, match="build_report") as info:
        build_report(records, run=run, regression=regression)
    assert fragment in str(info.value)


def test_json_round_trips_through_load_report(written):
    out, doc = written
    def no_constants(name):  # NaN, Infinity: not JSON, rejected by browsers and strict parsers
        raise AssertionError(f"{name} in claims.json")

    json.loads((out / "claims.json").read_text(encoding="utf-8"), parse_constant=no_constants)
    loaded = load_report(out / "claims.json")
    assert loaded == json.loads(json.dumps(doc)) and loaded["schema_version"] == SCHEMA_VERSION == 3
    assert {p.name for p in out.iterdir()} == {"claims.json", "claims.md", "index.html", "figures"}


# ------------------------------------------------------------------ rendering


def test_markdown_and_html_carry_the_same_evidence(written):
    out, doc = written
    markdown = (out / "claims.md").read_text(encoding="utf-8")
    page = _Page((out / "index.html").read_text(encoding="utf-8")).text
    for record in doc["claims"]:
        cells = _view.verdict_cells(record, doc["regression"])
        shown = [str(cells[c]) for c in _view.VERDICT_COLUMNS if c != "Effect [CI]"]
        shown += cells["Effect [CI]"] + cells["labels"]
        for text in shown:
            assert text in markdown, (record["instance_id"], text)
            assert text in page, (record["instance_id"], text)
    for claim_records in _view.claims_by_paper(doc)["MW"].values():
        common, each = _view.instance_items(claim_records, doc["run"], doc["regression"])
        for label, text in [*common, *(item for items in each for item in items)]:
            assert label in markdown and text in markdown and label in page and text in page, (label, text)


@pytest.mark.parametrize("view", ["markdown", "html"])
def test_views_show_labels_deciding_p_ci_power_stability_and_deviations(written, view):
    out, _ = written
    raw = (out / ("claims.md" if view == "markdown" else "index.html")).read_text(encoding="utf-8")
    text = raw if view == "markdown" else _Page(raw).text
    expected = [
        # labels (CLAIMS.md: underpowered, cannot decide, fragile, not asserted + reason, conditional on)
        "underpowered: needs 23 units for power 0.8", "cannot decide", "fragile",
        "not asserted: extension beyond the paper's α values", "conditional on teacher B_0",
        # the three design statuses: decided (low design power shown as the design's), powered, underpowered
        "0.12 at -0.223 · MDE -0.17 (design; decided)", "powered: effect near the margin",
        "0.41 at -0.223 · MDE -0.4 · 0.8 with 23 units",
        "decided, 1 inconclusive with power ≥ 0.8 (effect below the effect of interest, or at the margin), 2 "
        "inconclusive and "
        "underpowered",
        # the adjusted p that decided, which test; both adjusted p's when inconclusive
        "0.00160 (refute)", "0.0120 (support)", "support 0.420 · refute 0.770",
        # effect and CI at its level; a log ratio also as a ratio: exp(-0.31) = 0.733
        f"-0.31 [-0.42, -0.25] 90{NBSP}%{NBSP}CI", "ratio ×0.733 [0.657, 0.779]",
        # power at the effect of interest, MDE; stability; units
        "0.41 at -0.223 · MDE -0.4", "0.55: share of 200 resamples", "MDE none",
        # deviations: the claim's own and the profile's list
        factory.DEVIATION_DATA, "ResNet-18 at 1/8 width on digits", "TFLite float16",
        # compound rule: its parts, the deciding one marked
        "pruned then distilled", "distilled then pruned", "deciding",
        # regression: what failed the gate, what was only reported, what disappeared
        "changed · fails the gate", "fragile flip supported → inconclusive, reported only", "MW-2[digits-lenet5]",
        # environment against the baseline's
        "AVX512", "cpu_capability AVX512 → AVX2", "claims/findings/ci.json",
        # the error's message, the number claim's numbers
        "training diverged: loss is NaN after epoch 3", "0.7 / 0.71",
    ]
    missing = [e for e in expected if e not in text]
    assert not missing


def test_regression_section_separates_the_gate_from_what_is_only_reported(written):
    out, doc = written
    regression = factory.regression()
    groups = _view.regression_groups(doc)
    failed = {i for i, e in regression["instances"].items() if e["failed"]}
    reported = {i for i, e in regression["instances"].items()
                if not e["failed"] and e["status"] not in ("unchanged", "removed")}
    assert {row[0] for row in groups["failed"]} == failed == {"MW-1[digits-lenet5,α=0.9]", "GC-2[digits-resnet18]"}
    assert {row[0] for row in groups["reported"]} == reported == {"MW-1[digits-lenet5,α=0.5]"}
    markdown = (out / "claims.md").read_text(encoding="utf-8")
    gate = markdown.split("### Failed the gate", 1)[1].split("###", 1)[0]
    assert "| GC-2[digits-resnet18] | supported | supported | shifted | 0.00600 (raw 0.00200) | effect shifted" in gate
    assert "GC-2[digits-resnet18]: effect" not in markdown  # the line is shown without its instance id
    assert markdown.split("### In the baseline, not in this run", 1)[1].split("##", 1)[0].strip() == \
        "- MW-2[digits-lenet5]"


def test_html_embeds_each_figure_once_and_fetches_nothing(written):
    out, doc = written
    page = _Page((out / "index.html").read_text(encoding="utf-8"))
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, key, value)
    images = page.images()
    paths = {f["path"] for f in doc["figures"]}
    assert len(images) == len(paths) == 5  # three forest plots, the trend, and the CKA of MW-1 and GC-2 once
    decoded = {base64.b64decode(img["src"].split(",", 1)[1]) for img in images}
    assert decoded == {(out / path).read_bytes() for path in paths}
    assert all(data.startswith(PNG_SIGNATURE) for data in decoded)
    assert "is shown under MW-1" in page.text
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    for verdict in VERDICTS:
        assert f'class="verdict {verdict}"' in (out / "index.html").read_text(encoding="utf-8")


def test_each_claim_section_starts_its_figures_with_the_forest_plot(written):
    out, doc = written
    page = (out / "index.html").read_text(encoding="utf-8")
    for claim_id in ("MW-1", "MW-3", "GC-2"):
        section = page.split(f'id="{_view.anchor("claim", claim_id)}"', 1)[1].split("</article>", 1)[0]
        alts = [img["alt"] for img in _Page(section).images()]
        assert alts and alts[0] == f"{claim_id}: effect and confidence interval per instance"
    markdown = (out / "claims.md").read_text(encoding="utf-8")
    assert all(markdown.count(f"]({path})") == 1 for path in {f["path"] for f in doc["figures"]})


def test_forest_plots_are_drawn_for_claims_with_an_interval(written):
    out, doc = written
    drawn = sorted(p.name for p in (out / "figures").glob("forest_*.png"))
    assert drawn == ["forest_GC-2.png", "forest_MW-1.png", "forest_MW-3.png"]
    assert all((out / "figures" / name).read_bytes().startswith(PNG_SIGNATURE) for name in drawn)


def test_missing_figure_is_named_not_embedded(tmp_path):
    doc = build_report([factory.evidence(ci=None, figures=["figures/gone.png"])], run=factory.run())
    write_report(doc, tmp_path)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Figure not found" in page and "figures/gone.png" in page
    assert _Page(page).images() == []


def test_rendering_is_a_function_of_the_document(written):
    out, doc = written
    reloaded = load_report(out / "claims.json")
    assert render_markdown(reloaded) == (out / "claims.md").read_text(encoding="utf-8")
    assert render_html(reloaded, out) == (out / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_rebuild_is_identical_to_write_report(written):
    out, _ = written
    originals = {name: (out / name).read_bytes() for name in ("claims.md", "index.html")}
    json_before = (out / "claims.json").read_bytes()
    for name in originals:
        (out / name).unlink()
    result = _cli(str(out / "claims.json"), cwd=out.parent)
    assert result.returncode == 0, result.stderr
    assert {name: (out / name).read_bytes() for name in originals} == originals
    assert (out / "claims.json").read_bytes() == json_before


def _valid_doc() -> dict:
    return json.loads(json.dumps(build_report([factory.evidence()], run=factory.run())))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON list, expected an object"),
        (json.dumps({**_valid_doc(), "schema_version": 1}), "schema_version 1"),
        (json.dumps(_without(_valid_doc(), "schema_version")), "no 'schema_version'"),
        (json.dumps({**_valid_doc(), "run": []}), "'run' is []"),
        (json.dumps({**_valid_doc(), "summary": None}), "'summary' is null"),
        (json.dumps({**_valid_doc(), "claims": {}}), "'claims' is {}"),
        (json.dumps({**_valid_doc(), "claims": [_without(_valid_doc()["claims"][0], "stability")]}),
         "claims[0] (MW-1[digits-lenet5]) lacks 'stability'"),
    ],
)
def test_cli_rejects_bad_input_with_one_line_and_status_2(tmp_path, capsys, content, fragment):
    path = tmp_path / "claims.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and fragment in err, err
    assert not (tmp_path / "index.html").exists()


def test_cli_usage_errors_exit_2(tmp_path):
    result = _cli(cwd=tmp_path)
    assert result.returncode == 2 and "give a claims.json" in result.stderr and "Traceback" not in result.stderr


def test_load_report_errors_are_report_errors(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ReportSchemaError) as info:
        load_report(path)
    assert isinstance(info.value, ReportError) and isinstance(info.value, ValueError)


# ------------------------------------------------------------------ comparison


def test_compare_marks_changed_verdict_and_one_sided_instances():
    records_a = factory.records(TREND, CKA)
    records_b = [dict(r) for r in records_a[:-1]]
    records_b[0] = dict(records_b[0], verdict="inconclusive", decided_by=None, p_adjusted=0.6)
    records_b.append(factory.evidence("SH-1", {"exp": "vgg11"}))
    a = build_report(records_a, run=factory.run(profile="ci"))
    b = build_report(records_b, run=factory.run(profile="paper"))
    comparison = compare_reports(a, b)
    changed = [row["instance_id"] for row in comparison["rows"] if row["verdict_changed"]]
    assert changed == ["MW-1[digits-lenet5,α=0.1]"]
    assert comparison["only_a"] == ["GC-5[digits-resnet18]"] and comparison["only_b"] == ["SH-1[vgg11]"]
    n = len(records_a) - 1
    assert comparison["counts"] == {"both": n, "same_verdict": n - 1, "verdict_changed": 1, "only_a": 1, "only_b": 1}
    assert comparison["labels"] == ["ci", "paper"]
    assert all(row["differs"] == [] for row in comparison["rows"] if not row["verdict_changed"])
    assert next(r for r in comparison["rows"] if r["verdict_changed"])["differs"] == ["verdict", "p"]
    markdown = render_compare_markdown(comparison)
    (line,) = [line for line in markdown.splitlines() if "⚠ changed" in line]
    assert "MW-1[digits-lenet5,α=0.1]" in line and "**supported**" in line and "**inconclusive**" in line
    assert "Only in ci" in markdown and "SH-1[vgg11]" in markdown


def test_compare_of_a_report_with_itself_has_no_differences():
    doc = _doc()
    comparison = compare_reports(doc, doc)
    assert comparison["counts"]["verdict_changed"] == 0 and not comparison["only_a"] and not comparison["only_b"]
    assert all(not row["differs"] for row in comparison["rows"])


def test_cli_compare_writes_files_and_prints_markdown(tmp_path):
    a_dir, b_dir, out = tmp_path / "a", tmp_path / "b", tmp_path / "cmp"
    records_b = factory.records(TREND, CKA)
    records_b[0] = dict(records_b[0], verdict="refuted", decided_by="refute")
    write_report(build_report(factory.records(TREND, CKA), run=factory.run()), a_dir)
    write_report(build_report(records_b, run=factory.run()), b_dir)
    result = _cli("--compare", str(a_dir / "claims.json"), str(b_dir / "claims.json"), "--out", str(out),
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "compare.md").read_text(encoding="utf-8") == result.stdout
    assert "⚠ changed" in result.stdout and "MW-1[digits-lenet5,α=0.1]" in result.stdout
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert 'class="changed"' in page
    assert not any((a.get("src") or a.get("href") or "").startswith("http") for _, a in _Page(page).tags)


# ------------------------------------------------------------------ formatting


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1.0, allow_nan=False))
@example(1.0)
@example(0.001)
@example(0.000999)
def test_format_p_keeps_three_significant_digits(p):
    text = format_p(p)
    assert math.isclose(float(text), p, rel_tol=5e-3)
    assert ("e" in text) == (p < 1e-3)


def test_format_hand_cases():
    assert [format_p(x) for x in (0.04321, 0.5, 1.234e-7, None, 0.0)] == ["0.0432", "0.500", "1.23e-07", "—", "0"]
    assert [format_number(x) for x in (None, 3, -22.55, 0.123456, [-0.07, -0.05], {"a": 3})] == \
        ["—", "3", "-22.55", "0.1235", "-0.07 / -0.05", "a=3"]


@given(st.floats(min_value=-3, max_value=3), st.floats(min_value=0.001, max_value=2))
def test_log_ratio_effect_is_also_shown_as_its_ratio(effect, half_width):
    lines = _view.effect_lines({"effect": effect, "ci": [effect - half_width, effect + half_width],
                                "ci_level": 0.9, "scale": "log ratio"})
    ratio, low, high = (float(x) for x in
                        lines[1].removeprefix("ratio ×").replace("[", "").replace("]", "").replace(",", "").split())
    assert math.isclose(ratio, math.exp(effect), rel_tol=5e-3)
    assert low <= ratio <= high


# ------------------------------------------------------------------ landscape


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _landscape_outputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    base = 3 * rng.normal(size=(60, 10))
    outputs = {"base": _softmax(base), "quantized": _softmax(base + 0.01 * rng.normal(size=base.shape))}
    for i in range(4):
        outputs[f"independent-{i}"] = _softmax(3 * rng.normal(size=base.shape))
    return outputs


def test_landscape_is_deterministic_with_one_point_per_model():
    outputs = _landscape_outputs()
    first = functional_landscape(outputs, seed=3)
    second = functional_landscape(outputs, seed=3)
    assert list(first) == list(outputs)
    assert first == second
    assert all(len(xy) == 2 and all(math.isfinite(v) for v in xy) for xy in first.values())


def test_landscape_puts_near_copies_closer_than_independent_models():
    coords = {k: np.array(v) for k, v in functional_landscape(_landscape_outputs(), seed=0).items()}
    near = np.linalg.norm(coords["base"] - coords["quantized"])
    far = min(np.linalg.norm(coords["base"] - coords[f"independent-{i}"]) for i in range(4))
    assert near < far


def test_landscape_rejects_bad_input():
    outputs = _landscape_outputs()
    with pytest.raises(InvalidParameterError, match="at least 2 models"):
        functional_landscape({"base": outputs["base"]})
    with pytest.raises(InvalidParameterError, match="'perplexity'"):
        functional_landscape(outputs, perplexity=len(outputs))
    with pytest.raises(InvalidParameterError, match="same shape"):
        functional_landscape({"a": outputs["base"], "b": outputs["base"][:10]})


@pytest.mark.parametrize("n_models", [2, 3, 7, 200])
def test_default_perplexity_is_valid_for_sklearn(n_models):
    perplexity = default_perplexity(n_models)
    assert 1.0 <= perplexity < n_models and perplexity <= 30.0


# ------------------------------------------------------------------ plots


def _png_shape(path: Path) -> tuple[int, ...]:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    return imread(path).shape


def test_plots_write_non_empty_pngs(tmp_path):
    coords = {"B": (0.0, 0.0), "I1": (5.0, 1.0), "S": (4.0, 4.0), "Q8": (0.2, 0.1), "P30": (0.5, -0.4),
              "C": (3.0, 5.0)}
    groups = {"B": "base", "I1": "independent", "S": "student α=0.5", "Q8": "quantized 8-bit",
              "P30": "pruned 30%", "C": "same-init control"}
    paths = [
        plots.plot_landscape(coords, groups, tmp_path / "landscape.png", "MW landscape"),
        plots.plot_accuracy_deviation({"α=0.1": [8.1, 8.9, 9.0], "16-bit": -0.5, "pruned 70%": [-14.0]},
                                      tmp_path / "deviation.png", "CIFAR-10 LeNet",
                                      paper={"α=0.1": 8.74, "16-bit": -0.62, "pruned 70%": -14.56}),
        plots.plot_trend([0.1, 0.3, 0.5], {"a": np.ones((3, 3)), "b": [1.0, 2.0, 3.0]},
                         tmp_path / "trend.png", "trend", "ratio", "distance"),
        plots.plot_heatmap(np.eye(3), ["l1", "l2", "l3"], ["m1", "m2", "m3"], tmp_path / "heat.png", "CKA",
                           paper=np.full((3, 3), np.nan)),
    ]
    for path in paths:
        height, width = _png_shape(path)[:2]
        assert 200 <= height <= 1500 and 200 <= width <= 1500  # ~100 dpi, small
        assert path.stat().st_size < 300_000


def test_heatmap_with_paper_is_wider_than_alone(tmp_path):
    matrix = np.arange(6.0).reshape(2, 3)
    alone = plots.plot_heatmap(matrix, ["a", "b"], ["x", "y", "z"], tmp_path / "alone.png", "t")
    paired = plots.plot_heatmap(matrix, ["a", "b"], ["x", "y", "z"], tmp_path / "paired.png", "t", paper=matrix)
    assert _png_shape(paired)[1] > _png_shape(alone)[1]


def test_plots_reject_mismatched_input(tmp_path):
    with pytest.raises(InvalidParameterError, match="'groups'"):
        plots.plot_landscape({"a": (0, 0)}, {}, tmp_path / "x.png", "t")
    with pytest.raises(InvalidParameterError, match=r"values_by_series\['a'\]"):
        plots.plot_trend([1, 2], {"a": np.ones((2, 3))}, tmp_path / "x.png", "t", "x", "y")
    with pytest.raises(InvalidParameterError, match="'paper'"):
        plots.plot_heatmap(np.eye(2), ["a", "b"], ["c", "d"], tmp_path / "x.png", "t", paper=np.eye(3))
    assert not (tmp_path / "x.png").exists()


def test_hybrid_tree_figure_is_a_png_and_rejects_an_empty_distillation_path(tmp_path):
    from analysis._validation import InvalidParameterError
    from analysis.plots import plot_hybrid_tree

    path = plot_hybrid_tree({0.9: 96.0, 0.5: 93.0, 0.1: 80.0}, {0.9: 97.0, 0.5: 95.0, 0.1: 90.0},
                            {0.9: {0.5: 94.0, 0.1: 85.0}, 0.5: {0.1: 84.0}}, tmp_path / "tree.png", "tree")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(InvalidParameterError, match="'distilled'"):
        plot_hybrid_tree({}, {}, {}, tmp_path / "x.png", "t")
    assert not (tmp_path / "x.png").exists()


def _forest_rows(scales: tuple[str, ...]) -> list[dict]:
    verdicts = ("supported", "refuted", "inconclusive")
    return [{"label": f"instance {i}", "effect": 0.1 * i, "ci": [0.1 * i - 0.2, 0.1 * i + 0.15],
             "verdict": verdicts[i % 3], "asserted": i != 2, "scale": scale, "reference": 0.0,
             "margin": [-0.2, 0.2] if i % 2 else None, "effect_name": "effect"}
            for i, scale in enumerate(scales)]


def test_forest_plot_puts_each_scale_in_its_own_panel(tmp_path):
    one = plots.plot_forest(_forest_rows(("log ratio",) * 4), tmp_path / "one.png", "MW-1")
    two = plots.plot_forest(_forest_rows(("log ratio", "log ratio", "points", "points")), tmp_path / "two.png",
                            "MW-3")
    # Same rows, one more panel (its own axis and label): a taller figure of the same width.
    (h1, w1), (h2, w2) = _png_shape(one)[:2], _png_shape(two)[:2]
    assert w1 == w2 and h2 > h1


def test_forest_plot_is_deterministic(tmp_path):
    rows = _forest_rows(("log ratio", "points", "Kendall tau"))
    first = plots.plot_forest(rows, tmp_path / "a.png", "t").read_bytes()
    assert plots.plot_forest(rows, tmp_path / "b.png", "t").read_bytes() == first


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([], "'rows'"),
        ([dict(_forest_rows(("x",))[0], ci=[0.3, 0.1])], r"rows\[0\]\['ci'\]"),
        ([dict(_forest_rows(("x",))[0], effect=float("nan"))], r"rows\[0\]\['effect'\]"),
        ([dict(_forest_rows(("x",))[0], verdict="maybe")], r"rows\[0\]\['verdict'\]"),
    ],
)
def test_forest_plot_rejects_bad_rows(tmp_path, rows, fragment):
    with pytest.raises(InvalidParameterError, match=fragment):
        plots.plot_forest(rows, tmp_path / "x.png", "t")
    assert not (tmp_path / "x.png").exists()


def test_a_log_ratio_beyond_the_float_range_shows_as_infinite():
    """A distance of exactly 0 is the smallest double in a log (MWWorld.log_distance): log ratios near ±700."""
    lines = _view.effect_lines({"effect": 720.0, "ci": [650.0, 790.0], "ci_level": 0.9, "scale": "log ratio"})
    assert lines[1] == "ratio ×∞ [1.96e+282, ∞]"
