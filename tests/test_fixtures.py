"""The pytest glue's plain functions: claim families, world spec lists, report tables."""
from __future__ import annotations

import pytest

from analysis.stats import Evidence, directional_test
from fixtures.claims import CATALOGUE, Claim, case_id, claim, measure_family
from fixtures.gc import gc_families, nanmean
from fixtures.mw import mw_families
from fixtures.profile import load_profile
from fixtures.report import pivot_tables
from fixtures.worlds import WORLDS


def _claim(measure) -> Claim:
    c = Claim("MW-4", "sentence", world="w", cases=lambda p: [])
    c.measure(measure)
    return c


def test_family_is_holm_adjusted_and_keyed_by_instance_id():
    strong = [5.0, 5.1, 4.9, 5.2, 5.0, 5.05]
    weak = [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]

    def measure(case, world, family_size):
        r = directional_test(strong if case["k"] == "a" else weak, None, alpha=0.05, family_size=family_size)
        return Evidence.from_result("MW-4", case, r)

    fam = measure_family(_claim(measure), [{"k": "a"}, {"k": "b"}], world=None, alpha=0.05)
    a, b = fam["MW-4[a]"], fam["MW-4[b]"]
    assert a.verdict == "supported" and b.verdict == "inconclusive"
    assert a.p_adjusted >= a.p_value and b.p_adjusted >= b.p_value  # Holm never lowers a p-value
    assert a.details["sentence"] == "sentence"


def test_a_failing_case_becomes_an_error_and_the_rest_still_run():
    def measure(case, world, family_size):
        if case["k"] == "bad":
            raise RuntimeError("boom")
        return Evidence.from_result("MW-4", case, directional_test([1.0, 1.1, 0.9, 1.2], None))

    fam = measure_family(_claim(measure), [{"k": "bad"}, {"k": "ok"}], world=None, alpha=0.05)
    assert fam["MW-4[bad]"].verdict == "error" and "boom" in fam["MW-4[bad]"].notes[0]
    assert "Traceback" in fam["MW-4[bad]"].details["traceback"]
    assert fam["MW-4[ok]"].verdict == "supported"


def test_a_design_that_cannot_reach_alpha_is_not_asserted():
    def measure(case, world, family_size):
        return Evidence.from_result("MW-4", case, directional_test([1.0], None))  # one seed: no test possible

    ev = measure_family(_claim(measure), [{"k": "a"}], world=None, alpha=0.05)["MW-4[a]"]
    assert ev.asserted is False and ev.verdict == "inconclusive"
    assert any("cannot reach" in n for n in ev.notes)


def test_claim_ids_come_from_the_catalogue():
    with pytest.raises(ValueError, match="not in the catalogue"):
        claim("XX-1", "s", world="w", cases=lambda p: [])
    assert "MW-1" in CATALOGUE and "GC-6" in CATALOGUE and len(set(CATALOGUE)) == len(CATALOGUE)


def test_case_id_is_the_bracketed_instance_id():
    assert case_id({"exp": "digits-lenet5", "α": 0.5}) == "digits-lenet5,α=0.5"


def test_world_specs_follow_the_profile():
    p = load_profile("smoke")
    mw = mw_families(p)
    fam = mw[0]
    sec = p.section("mw")
    assert len(fam.independents) == len(sec["independent_seeds"])
    assert len(fam.students) == len(sec["kd_alphas"]) * len(sec["student_seeds"])
    # students and same-init controls start from the base model's initial weights
    base_init = fam.base.param("init_seed")
    assert all(s.param("init_seed") == base_init for s in [*fam.students.values(), *fam.controls.values()])
    assert all(s.parents == (fam.base,) for s in fam.students.values())
    gc = gc_families(p)[0]
    levels = p.section("gc")["retained_fractions"]
    assert list(gc.pruned) == levels
    # the hybrid tree: from each distilled level, every lower level
    assert set(gc.mixed) == {(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]}
    assert gc.distilled[levels[-1]].parents == (gc.pruned[levels[-1]], gc.teacher)
    registry = {"MW-1": Claim("MW-1", "s", "mw_world", cases=lambda p: [{}]),
                "GC-1": Claim("GC-1", "s", "gc_world", cases=lambda p: [{}])}
    keys = {s.key for s in WORLDS.specs_for(["MW-1", "GC-1"], p, registry)}
    assert {s.key for s in fam.eval_specs()} <= keys
    n_gc_models = len(gc_families(p)[0].model_specs()) * len(gc_families(p))
    n_cka = len(levels) * len(p.section("gc")["seeds"])  # one layer_cka artifact per (seed, level)
    assert len(keys) == len(fam.eval_specs()) + n_gc_models + n_cka
    assert {s.key for s in WORLDS.specs_for(["MW-1"], p, registry)} == {s.key for s in fam.eval_specs()}


def test_pivot_tables_put_ours_beside_the_paper():
    rows = [{"details": {"table_rows": [
        {"table": "T", "row": "mnist-lenet5", "column": "16-bit", "ours": -0.1, "paper": -0.07},
        {"table": "T", "row": "mnist-lenet5", "column": "8-bit", "ours": 0.2, "paper": None},
    ]}}]
    (t,) = pivot_tables(rows)
    assert t["columns"] == ["experiment", "16-bit", "8-bit"]
    assert t["rows"] == [["mnist-lenet5", "-0.10 (-0.07)", "+0.20 (—)"]]


def test_nanmean_is_nan_only_where_a_slice_is_empty():
    import numpy as np

    out = nanmean(np.array([[1.0, np.nan], [3.0, np.nan]]), axis=0)
    assert out[0] == 2.0 and np.isnan(out[1])


def test_training_health_names_models_near_chance_only():
    from compress.store import Spec
    from fixtures.world import training_health

    ok = Spec.make("train", arch="lenet5", dataset="digits", init_seed=0, seed=0)
    bad = Spec.make("train", arch="lenet5", dataset="digits", init_seed=1, seed=1)
    assert training_health({ok: 97.0}, 10) == []
    (note,) = training_health({ok: 97.0, bad: 11.0}, 10)
    assert "1 model(s) near chance" in note and "init 1 seed 1" in note and "init 0" not in note
