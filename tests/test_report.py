"""Tests for the claim-status report, the functional landscape and the plots."""
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

from analysis import plots
from analysis._validation import InvalidParameterError
from analysis.landscape import default_perplexity, functional_landscape
from analysis.report import (
    SCHEMA_VERSION,
    VERDICTS,
    ReportSchemaError,
    build_report,
    collect_environment,
    compare_reports,
    format_number,
    format_p,
    load_report,
    render_compare_markdown,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN = {
    "profile": "ci",
    "profile_hash": "0123abcd",
    "seeds": [2, 24, 42],
    "device": "cpu",
    "wall_time_s": 81.5,
    "artifacts": {"built": 4, "loaded": 17},
    "environment": {"python": "3.11", "torch": "2.4", "device_name": "test-cpu"},
}


def _record(claim_id: str, instance: str, verdict: str, p: float | None, **extra) -> dict:
    """A record in the Evidence schema (analysis/evidence.py)."""
    record = {
        "claim_id": claim_id,
        "instance_id": f"{claim_id}[{instance}]",
        "params": {"arch": "lenet", "kd": "text"},
        "sentence": f"Sentence of {claim_id}.",
        "verdict": verdict,
        "asserted": True,
        "not_asserted_reason": "",
        "form": "directional",
        "test": "one-sided one-sample t-test over units",
        "unit": "base model B_i with its own independent I_i",
        "conditional_on": None,
        "statistic": 2.75,
        "p_value": p,
        "p_adjusted": None if p is None else min(1.0, 3 * p),
        "p_refute": None if p is None else 1 - p,
        "p_refute_adjusted": None if p is None else min(1.0, 3 * p),
        "decided_by": {"supported": "support", "refuted": "refute"}.get(verdict),
        "alpha": 0.05,
        "effect": -0.0425,
        "effect_name": "mean log distance ratio",
        "scale": "log ratio",
        "ci": [-0.08, -0.005],
        "ci_level": 0.9,
        "reference": 0.0,
        "margin": None,
        "effect_of_interest": 0.693,
        "n": {"units": 8},
        "power": 0.91,
        "mde": 0.52,
        "power_detail": {"level": 0.0167, "simulations": 2000},
        "underpowered": False,
        "cannot_decide": False,
        "stability": 0.97,
        "fragile": False,
        "deviations": ["data: paper MNIST; ours digits"],
        "parts": [],
        "replicates": {},
        "paper_value": "landscapes only",
        "ours_value": 0.1234,
        "figures": [],
        "notes": [],
        "environment": {"torch": "2.4", "numerics": "portable"},
        "details": {},
    }
    record.update(extra)
    return record


PARTS = [{"name": "fp16 closer", "form": "directional", "p_support": 1e-4, "p_refute": 0.99, "effect": -1.2,
          "scale": "log ratio", "ci": [-1.5, -0.9], "ci_level": 0.9, "effect_of_interest": 0.69, "decided": False},
         {"name": "int8 accuracy", "form": "equivalence", "p_support": 0.003, "p_refute": 1.0, "effect": 0.1,
          "scale": "relative %", "ci": [-0.2, 0.4], "ci_level": 0.9, "effect_of_interest": 1.0, "decided": True}]


def _records(figure: str | None = None) -> list[dict]:
    figures = [figure] if figure else []
    return [
        _record("MW-1", "resnet,w=0.1", "supported", 3.2e-5, figures=figures, form="universal", parts=PARTS),
        _record("MW-1", "resnet,w=0.9", "refuted", 0.0125, figures=figures, fragile=True, stability=0.61),
        _record("MW-2", "lenet", "inconclusive", 0.41, power=0.0, underpowered=True, cannot_decide=True),
        _record("MW-9", "mobilenet", "error", None, notes=["training diverged"], power=None, stability=None),
        _record("GC-3", "vgg", "supported", 0.002, asserted=False, not_asserted_reason="an extension, reported only"),
    ]


REGRESSION = {"summary": "1 supported, 1 known not supported, 1 changed, 0 shifted, 0 fragile flips, 1 added, 0 removed",
              "environment_differences": ["cpu_capability: AVX2 → DEFAULT"],
              "instances": {"MW-1[resnet,w=0.9]": {"baseline_verdict": "supported", "status": "changed", "failed": True,
                                                   "shift_p": None, "shift_p_adjusted": None,
                                                   "line": "MW-1[resnet,w=0.9]: supported → refuted (robust)"},
                            "GC-3[vgg]": {"baseline_verdict": None, "status": "added", "failed": False,
                                          "shift_p": None, "shift_p_adjusted": None, "line": "GC-3[vgg]: added"}},
              "removed": []}


@pytest.fixture()
def figure_path(tmp_path: Path) -> Path:
    return plots.plot_trend([0.1, 0.3, 0.5], {"lenet": np.array([[0.1, 0.2, 0.4], [0.15, 0.25, 0.35]])},
                            tmp_path / "figures" / "trend.png", "JS divergence vs ratio", "ratio", "JS")


@pytest.fixture()
def report_dir(tmp_path: Path, figure_path: Path) -> tuple[Path, dict]:
    relative = figure_path.relative_to(tmp_path).as_posix()
    doc = build_report(
        _records(relative), run=RUN, regression=REGRESSION,
        tables=[{"title": "Accuracy deviation (relative %)", "columns": ["model", "16-bit", "8-bit"],
                 "rows": [["LeNet", -0.07, -0.05], ["ResNet-50", 0.0, None]], "note": "paper's Table 4"}],
    )
    write_report(doc, tmp_path)
    return tmp_path, doc


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


# ------------------------------------------------------------------ report


def test_summary_counts_match_records():
    records = _records()
    doc = build_report(records, run=RUN)
    expected = Counter(r["verdict"] for r in records)
    assert doc["summary"]["verdicts"] == {v: expected.get(v, 0) for v in VERDICTS}
    assert doc["summary"]["total"] == len(records)
    per_paper = doc["summary"]["per_paper"]
    assert list(per_paper) == ["MW", "GC"]  # CLAIMS.md order, not alphabetical
    assert sum(p["total"] for p in per_paper.values()) == len(records)
    assert per_paper["MW"]["supported"] == 1 and per_paper["GC"]["supported"] == 1
    assert doc["summary"]["regression"] is None and doc["regression"] is None
    # asserted instances with a power figure: MW-1 ×2, MW-2; two of three reach 0.8
    assert (doc["summary"]["asserted_tested"], doc["summary"]["powered"]) == (3, 2)
    assert (doc["summary"]["fragile"], doc["summary"]["underpowered"], doc["summary"]["not_asserted"]) == (1, 1, 1)


def test_environment_is_collected_when_the_run_gives_none():
    import platform

    doc = build_report(_records(), run={"profile": "ci"})
    env = doc["run"]["environment"]
    assert env == collect_environment()
    assert env["python"] == platform.python_version()
    assert {"torch", "torchvision", "numpy", "scipy", "statsmodels", "sklearn", "device_name"} <= set(env)


def test_claims_sorted_by_paper_then_claim_number():
    records = [_record("MW-10", "a", "supported", 0.01), _record("GC-1", "a", "refuted", 0.01),
               _record("MW-2", "a", "supported", 0.01)]
    doc = build_report(records, run=RUN)
    assert [r["claim_id"] for r in doc["claims"]] == ["MW-2", "MW-10", "GC-1"]


def test_json_round_trip_and_validates(report_dir):
    out, doc = report_dir
    text = (out / "claims.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    loaded = load_report(out / "claims.json")
    assert loaded == json.loads(json.dumps(doc))
    assert loaded["schema_version"] == SCHEMA_VERSION
    assert loaded["run"]["artifacts"] == {"built": 4, "loaded": 17}
    assert {p.name for p in out.iterdir()} == {"claims.json", "claims.md", "index.html", "figures"}


def test_non_finite_and_numpy_values_become_plain_json():
    record = _record("MW-3", "x", "inconclusive", float("nan"), statistic=np.float32(1.5),
                     effect=float("inf"), n={"a": np.int64(3)}, ci=np.array([0.1, 0.2]))
    doc = build_report([record], run=RUN)
    claim = doc["claims"][0]
    assert claim["p_value"] is None and claim["effect"] is None
    assert claim["statistic"] == 1.5 and type(claim["statistic"]) is float
    assert claim["n"] == {"a": 3} and type(claim["n"]["a"]) is int
    assert claim["ci"] == [0.1, 0.2]
    json.dumps(doc, allow_nan=False)  # raises on any NaN left behind


def test_markdown_shows_the_evidence_behind_every_verdict(report_dir):
    out, doc = report_dir
    markdown = (out / "claims.md").read_text(encoding="utf-8")
    for record in doc["claims"]:
        assert record["instance_id"] in markdown and record["sentence"] in markdown
    for verdict, count in doc["summary"]["verdicts"].items():
        assert f"{count} {verdict}" in markdown
    assert "2 of 3 asserted instances (67%) reach power 0.8" in markdown
    assert REGRESSION["summary"] in markdown and "**FAILS** MW-1[resnet,w=0.9]: supported → refuted" in markdown
    assert "cpu_capability: AVX2 → DEFAULT" in markdown
    assert "support p_adj = 9.60e-05" in markdown  # the p that decided it, adjusted
    assert "refute p_adj = 0.0375" in markdown
    assert "support p_adj = 1.00; refute p_adj = 1.00" in markdown  # inconclusive: both
    assert "(90 % CI [-0.08, -0.005])" in markdown and "ratio 0.958" in markdown
    assert "*fragile*" in markdown and "*cannot decide*" in markdown
    assert "not asserted: an extension, reported only" in markdown
    assert "data: paper MNIST; ours digits" in markdown  # deviations beside the verdict
    assert "| int8 accuracy | equivalence |" in markdown and "◀" in markdown  # parts, deciding part marked
    assert markdown.count("(figures/trend.png)") == 1  # two instances share it: shown once, under its claim
    assert "| LeNet | -0.07 | -0.05 |" in markdown and "| ResNet-50 | 0 | — |" in markdown


def test_html_is_self_contained_and_embeds_the_plotted_figure(report_dir, figure_path):
    out, doc = report_dir
    page = (out / "index.html").read_text(encoding="utf-8")
    tags = _tags(page)
    for tag, attrs in tags:
        for key in ("src", "href"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, key, value)
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == sum(len(v) for v in doc["figures"].values()) == 1
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == figure_path.read_bytes()
    csp = [a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    for record in doc["claims"]:
        assert record["instance_id"] in page
    for verdict in VERDICTS:
        assert f'class="verdict {verdict}"' in page
    assert "test-cpu" in page and "0123abcd" in page  # environment block
    assert "underpowered" in page and "fragile" in page and "Declared deviations" in page


def test_missing_figure_is_named_not_linked(tmp_path):
    doc = build_report([_record("MW-1", "a", "supported", 0.01, figures=["figures/gone.png"])], run=RUN)
    write_report(doc, tmp_path)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Figure not found" in page and "figures/gone.png" in page
    assert not [t for t, _ in _tags(page) if t == "img"]


@pytest.mark.parametrize(
    ("records", "fragment"),
    [
        ([{"claim_id": "MW-1", "instance_id": "MW-1[a]", "verdict": "maybe"}], "'verdict'"),
        ([{"claim_id": "MW-1", "verdict": "supported"}], "'instance_id'"),
        ([_record("MW-1", "a", "supported", 0.1), _record("MW-1", "a", "refuted", 0.1)], "twice"),
        (["not a dict"], "records[0]"),
    ],
)
def test_build_report_rejects_bad_records(records, fragment):
    with pytest.raises(InvalidParameterError, match="build_report") as info:
        build_report(records, run=RUN)
    assert fragment in str(info.value)


def test_load_report_rejects_unknown_schema_version(tmp_path):
    path = tmp_path / "future_claims.json"
    path.write_text(json.dumps({"schema_version": 999, "run": {}, "summary": {}, "claims": []}))
    with pytest.raises(ReportSchemaError) as info:
        load_report(path)
    message = str(info.value)
    assert str(path) in message and "999" in message and str(SCHEMA_VERSION) in message
    assert isinstance(info.value, ValueError)


def test_load_report_rejects_non_json(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text("{not json")
    with pytest.raises(ReportSchemaError, match="not valid JSON"):
        load_report(path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_rebuild_is_identical_to_write_report(report_dir):
    out, _ = report_dir
    originals = {name: (out / name).read_bytes() for name in ("claims.md", "index.html")}
    json_before = (out / "claims.json").read_bytes()
    for name in originals:
        (out / name).unlink()
    result = _cli(str(out / "claims.json"), cwd=out.parent)
    assert result.returncode == 0, result.stderr
    assert {name: (out / name).read_bytes() for name in originals} == originals
    assert (out / "claims.json").read_bytes() == json_before


def test_cli_errors_name_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "claims.json"
    result = _cli(str(missing), cwd=tmp_path)
    assert result.returncode == 2 and str(missing) in result.stderr
    future = tmp_path / "claims.json"
    future.write_text(json.dumps({"schema_version": 999}))
    result = _cli(str(future), cwd=tmp_path)
    assert result.returncode == 2 and str(future) in result.stderr and "999" in result.stderr
    assert _cli(cwd=tmp_path).returncode == 2  # neither a report nor --compare


def test_compare_marks_changed_verdict_and_one_sided_instances():
    records_a = _records()
    records_b = [dict(r) for r in records_a[:-1]]
    records_b[1] = dict(records_b[1], verdict="inconclusive", p_value=0.2, p_adjusted=0.6)
    records_b.append(_record("SH-1", "vgg11", "supported", 0.03))
    a = build_report(records_a, run=dict(RUN, profile="ci"))
    b = build_report(records_b, run=dict(RUN, profile="paper"))
    comparison = compare_reports(a, b)
    changed = [row["instance_id"] for row in comparison["rows"] if row["verdict_changed"]]
    assert changed == ["MW-1[resnet,w=0.9]"]
    assert comparison["only_a"] == ["GC-3[vgg]"] and comparison["only_b"] == ["SH-1[vgg11]"]
    assert comparison["counts"] == {"both": 4, "same_verdict": 3, "verdict_changed": 1, "only_a": 1, "only_b": 1}
    assert comparison["labels"] == ["ci", "paper"]
    unchanged = [row for row in comparison["rows"] if not row["verdict_changed"]]
    assert all(row["differs"] == [] for row in unchanged)
    markdown = render_compare_markdown(comparison)
    changed_lines = [line for line in markdown.splitlines() if "⚠ changed" in line]
    assert len(changed_lines) == 1 and "MW-1[resnet,w=0.9]" in changed_lines[0]
    assert "**refuted**" in changed_lines[0] and "**inconclusive**" in changed_lines[0]
    assert "Only in ci" in markdown and "GC-3[vgg]" in markdown and "SH-1[vgg11]" in markdown


def test_compare_of_a_report_with_itself_has_no_differences():
    doc = build_report(_records(), run=RUN)
    comparison = compare_reports(doc, doc)
    assert comparison["counts"]["verdict_changed"] == 0
    assert not comparison["only_a"] and not comparison["only_b"]
    assert all(not row["differs"] for row in comparison["rows"])


def test_cli_compare_writes_files_and_prints_markdown(tmp_path):
    a_dir, b_dir, out = tmp_path / "a", tmp_path / "b", tmp_path / "cmp"
    records_b = _records()
    records_b[0] = dict(records_b[0], verdict="refuted")
    write_report(build_report(_records(), run=RUN), a_dir)
    write_report(build_report(records_b, run=RUN), b_dir)
    result = _cli("--compare", str(a_dir / "claims.json"), str(b_dir / "claims.json"), "--out", str(out),
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "compare.md").read_text(encoding="utf-8") == result.stdout
    assert "⚠ changed" in result.stdout and "MW-1[resnet,w=0.1]" in result.stdout
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert 'class="changed"' in page
    assert not any((a.get("src") or a.get("href") or "").startswith("http") for _, a in _tags(page))


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
        plots.plot_accuracy_deviation({"w=0.1": [8.1, 8.9, 9.0], "16-bit": -0.5, "pruned 70%": [-14.0]},
                                      tmp_path / "deviation.png", "CIFAR-10 LeNet",
                                      paper={"w=0.1": 8.74, "16-bit": -0.62, "pruned 70%": -14.56}),
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


@pytest.mark.parametrize(("doc", "needle"), [
    ({"schema_version": 2, "run": [], "summary": {}, "claims": []}, "'run' must be an object"),
    ({"schema_version": 2, "run": {}, "summary": None, "claims": []}, "'summary' must be an object"),
    ({"schema_version": 2, "run": {}, "summary": {"total": 0}, "claims": []}, "'summary' lacks the 'verdicts' key"),
    ({"schema_version": 2, "run": {}, "summary": {"total": 0, "verdicts": {}, "per_paper": {}}, "claims": {}},
     "'claims' must be a list"),
])
def test_cli_rejects_malformed_documents_with_one_line_and_status_2(tmp_path, doc, needle):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(doc))
    result = _cli(str(path), cwd=tmp_path)
    assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr


def test_publish_swaps_the_whole_report_in_and_a_failure_keeps_the_previous_one(tmp_path, monkeypatch):
    from analysis.report import ReportError, new_staging_dir, publish_report

    report_dir = tmp_path / "reports" / "ci"
    first = publish_report(build_report(_records(), run=RUN), new_staging_dir(report_dir), report_dir)
    before = {p.name: p.read_bytes() for p in report_dir.iterdir() if p.is_file()}
    assert report_dir.is_symlink() and first["html"].exists()
    assert (report_dir / "figures").is_dir() and list((report_dir / "figures").glob("forest_*.png"))
    mode = (report_dir / "claims.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~_current_umask()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("analysis.report._write_atomic", full)
    with pytest.raises(ReportError, match="previous report is unchanged"):
        publish_report(build_report(_records()[:2], run=RUN), new_staging_dir(report_dir), report_dir)
    assert {p.name: p.read_bytes() for p in report_dir.iterdir() if p.is_file()} == before


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_check_report_dir_names_the_path_and_the_flag(tmp_path):
    from analysis.report import ReportError, check_report_dir

    check_report_dir(tmp_path / "new")
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ReportError, match=r"--report-dir .*a-file is not usable: .*is a file"):
        check_report_dir(afile)
