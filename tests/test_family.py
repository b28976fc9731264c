"""Family decisions: Holm (vs statsmodels), verdicts, power and MDE (vs statsmodels), stability."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from analysis.stats.evidence import Evidence
from analysis.stats.family import FamilySettings, Measurement, decide_family, holm, verdict_from
from analysis.stats.power import PowerModel
from analysis.stats.rules import AllOf, Directional, Equivalence, GroupDifference, NonInferiority
from analysis.stats.units import UnitTable

FAST = FamilySettings(power_simulations=2000, stability_resamples=200)


def table_of(values, column="x", unit="unit"):
    t = UnitTable(unit)
    for i, v in enumerate(values):
        t.add(f"u{i}", models=[f"m{i}"], **({column: v} if np.isscalar(v) else v))
    return t


@settings(max_examples=25)  # statsmodels' multipletests runs gc.collect() on every call (~0.2 s with torch loaded)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_matches_statsmodels(p):
    ref = multipletests(p, method="holm")[1]
    assert np.allclose(holm(p), ref, rtol=1e-12, atol=1e-15)


def test_holm_leaves_nan_out_of_the_family_and_works_per_row():
    p = np.array([[0.01, np.nan, 0.04], [0.5, 0.02, np.nan]])
    out = holm(p)
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 2])
    assert out[0, 0] == pytest.approx(0.02) and out[0, 2] == pytest.approx(0.04)
    assert out[1, 1] == pytest.approx(0.04) and out[1, 0] == pytest.approx(0.5)


def test_verdict_from_is_vectorised_and_treats_nan_as_not_significant():
    v = verdict_from([0.01, 0.5, np.nan], [0.9, 0.01, np.nan], 0.05)
    assert v.tolist() == ["supported", "refuted", "inconclusive"]
    assert verdict_from(0.01, 0.9, 0.05) == "supported"


def test_power_of_a_single_directional_matches_the_noncentral_t():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 12)
    sd = x.std(ddof=1)
    rule = Directional("d", "x", alternative="greater", delta=0.8)
    model = PowerModel(table_of(x), rule, simulations=20000, seed=1)
    expected = TTestPower().power(effect_size=0.8 / sd, nobs=12, alpha=0.05, alternative="larger")
    assert model.power(0.05) == pytest.approx(expected, abs=0.015)
    # and the MDE is where statsmodels puts 80 % power
    mde = TTestPower().solve_power(nobs=12, alpha=0.05, power=0.8, alternative="larger") * sd
    assert model.mde_factor(0.05) * 0.8 == pytest.approx(mde, rel=0.05)


def test_power_of_non_inferiority_at_no_difference_grows_with_the_margin():
    x = np.random.default_rng(0).normal(0, 0.2, 8)
    model_small = PowerModel(table_of(x), NonInferiority("n", "x", margin=0.05), seed=2)
    model_large = PowerModel(table_of(x), NonInferiority("n", "x", margin=0.5), seed=2)
    assert model_small.power(0.05) < 0.5 < model_large.power(0.05)


def test_combined_power_is_that_of_the_combination_not_the_minimum_of_its_parts():
    rng = np.random.default_rng(5)
    rows = [{"a": rng.normal(), "b": rng.normal()} for _ in range(10)]  # independent parts
    t = table_of(rows)
    parts = [Directional("a", "a", delta=0.9), Directional("b", "b", delta=0.9)]
    pa = PowerModel(t, parts[0], seed=4).power(0.05)
    pb = PowerModel(t, parts[1], seed=4).power(0.05)
    both = PowerModel(t, AllOf("both", *parts), seed=4).power(0.05)
    assert both < min(pa, pb)  # an intersection of (nearly) independent tests is less powerful than each part
    assert both == pytest.approx(pa * pb, abs=0.04)


def test_one_unit_cannot_decide():
    model = PowerModel(table_of([1.0]), Directional("d", "x", delta=1), seed=0)
    assert not model.can_decide(0.05) and math.isnan(model.mde_factor(0.05))


def _measure(values, rule, **kw):
    return Measurement("MW-4", {"case": kw.pop("case", "a")}, table_of(values), rule, **kw)


def test_family_is_holm_adjusted_powered_and_stable():
    strong = [1.0, 1.1, 0.9, 1.2, 1.05, 0.95]
    weak = [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]
    rule = Directional("d", "x", alternative="greater", delta=0.5)
    out = decide_family([_measure(strong, rule, case="a"), _measure(weak, rule, case="b")], FAST)
    a, b = out
    assert a.verdict == "supported" and b.verdict == "inconclusive"
    assert a.p_adjusted == pytest.approx(min(1, 2 * a.p_value)) and a.decided_by == "support"
    assert b.p_adjusted >= b.p_value and b.decided_by is None
    assert a.power_detail["level"] == pytest.approx(0.025)  # α / m, m = 2
    assert a.stability == pytest.approx(1.0) and not a.fragile
    assert a.ci_level == pytest.approx(0.9) and a.ci[0] > 0
    assert a.replicates["units"] == [f"u{i}" for i in range(6)]


def test_a_borderline_verdict_is_fragile():
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, 8)
    x = x - x.mean() + 0.75 * x.std(ddof=1)  # p near 0.05
    (ev,) = decide_family([_measure(list(x), Directional("d", "x", delta=0.5))], FAST)
    assert 0.2 < ev.stability < 0.8 and ev.fragile


def test_not_asserted_instances_stay_out_of_the_family():
    rule = Directional("d", "x", alternative="greater", delta=0.5)
    strong = [1.0, 1.1, 0.9, 1.2, 1.05, 0.95]
    out = decide_family([_measure(strong, rule, case="a"),
                         _measure(strong, rule, case="b", asserted=False, not_asserted_reason="extension")], FAST)
    assert out[0].p_adjusted == pytest.approx(out[0].p_value)  # m = 1
    assert out[1].asserted is False and out[1].not_asserted_reason == "extension"


def test_errors_pass_through_and_untested_claims_keep_their_verdict():
    err = Evidence.from_error("MW-4", {"case": "x"}, "boom")
    number = Measurement("GC-1", {"check": "Table 1"}, verdict="refuted", form="number", test="range check")
    out = decide_family([err, number], FAST)
    assert out[0].verdict == "error" and out[1].verdict == "refuted" and out[1].p_value is None


def test_zero_variance_is_noted_as_exact():
    (ev,) = decide_family([_measure([0.0, 0.0, 0.0, 0.0], Equivalence("e", "x", low=-1, upp=1))], FAST)
    assert ev.verdict == "supported" and any("Exact, no variance" in n for n in ev.notes)


def test_evidence_round_trips_through_json():
    (ev,) = decide_family([_measure([1.0, 1.1, 0.9, 1.2], Directional("d", "x", delta=0.5))], FAST)
    d = ev.to_dict()
    back = Evidence.from_dict(d)
    assert back.to_dict() == d and d["instance_id"] == "MW-4[a]"


# ---------------------------------------------------------------- units needed and the power curve


@pytest.mark.parametrize("sd_scale, delta", [(1.0, 0.8), (1.0, 0.4), (2.0, 0.5)])
def test_units_needed_for_a_directional_match_statsmodels(sd_scale, delta):
    x = np.random.default_rng(7).normal(0, sd_scale, 10)
    sd = x.std(ddof=1)
    model = PowerModel(table_of(x), Directional("d", "x", delta=delta), simulations=4000, seed=3)
    expected = TTestPower().solve_power(effect_size=delta / sd, power=0.8, alpha=0.05, alternative="larger")
    needed = model.units_needed(0.05)
    assert needed == pytest.approx(math.ceil(expected), abs=max(2, 0.08 * expected))
    # the search's answer is where the simulated power crosses 0.8
    assert model.power(0.05, units=needed) >= 0.8 > model.power(0.05, units=needed - 1) - 0.03


def test_units_needed_below_the_design_when_it_has_more_power_than_needed():
    x = np.random.default_rng(1).normal(0, 0.2, 30)
    model = PowerModel(table_of(x), Directional("d", "x", delta=1.0), seed=0)
    assert model.power(0.05) == 1.0 and 2 <= model.units_needed(0.05) < 6


def test_units_needed_is_none_beyond_the_search_and_for_one_unit():
    x = np.random.default_rng(2).normal(0, 5.0, 6)
    model = PowerModel(table_of(x), Directional("d", "x", delta=0.01), simulations=200, seed=0)
    assert model.units_needed(0.05, max_units=200) is None
    assert PowerModel(table_of([1.0]), Directional("d", "x", delta=1), seed=0).units_needed(0.05) is None


def test_grouped_designs_scale_every_group_in_proportion():
    t = UnitTable("u")
    rng = np.random.default_rng(4)
    for i in range(12):
        t.add(f"a{i}", models=[f"a{i}"], group="a", x=rng.normal())
    for i in range(6):
        t.add(f"b{i}", models=[f"b{i}"], group="b", x=rng.normal())
    from analysis.stats.power import group_sizes
    assert group_sizes({"a": 12, "b": 6}, 36) == {"a": 24, "b": 12}
    assert group_sizes({"a": 12, "b": 6}, 3) == {"a": 2, "b": 2}  # at least two a group
    rule = GroupDifference("g", "x", "a", "b", delta=1.0)
    model = PowerModel(t, rule, simulations=2000, seed=1)
    sd = math.sqrt((np.var(t.data()["x|a"], ddof=1) + np.var(t.data()["x|b"], ddof=1)) / 2)
    expected_b = TTestIndPower().solve_power(effect_size=1.0 / sd, power=0.8, alpha=0.05, ratio=2.0,
                                             alternative="larger")
    assert model.units_needed(0.05) == pytest.approx(3 * expected_b, rel=0.2)


def test_power_curve_rises_and_contains_the_design():
    x = np.random.default_rng(3).normal(0, 1, 8)
    model = PowerModel(table_of(x), Directional("d", "x", delta=0.6), seed=0)
    curve = model.power_curve(0.05, up_to=60)
    counts, powers = zip(*curve)
    assert 8 in counts and counts == tuple(sorted(counts)) and max(counts) <= 60
    assert dict(curve)[8] == pytest.approx(model.power(0.05))
    assert np.all(np.diff(powers) > -0.03) and powers[-1] > 0.95 > 0.5 > powers[0]
    from analysis.stats.power import power_at_units
    assert power_at_units(curve, 8) == pytest.approx(dict(curve)[8], abs=0.02)
    assert power_at_units(curve, 1000) is None


def _inconclusive(rule, values):
    (ev,) = decide_family([_measure(values, rule)], FAST)
    return ev


def test_a_decided_verdict_is_never_labelled_underpowered_however_low_the_design_power():
    # A huge effect decided with four units, against a tiny effect of interest the design cannot resolve.
    values = [5.0, 5.5, 4.5, 6.0]
    (ev,) = decide_family([_measure(values, Directional("d", "x", delta=0.01))], FAST)
    assert ev.verdict == "supported" and ev.power < 0.8
    assert ev.design_status == "decided" and not ev.underpowered


def test_inconclusive_verdicts_are_powered_or_underpowered_with_the_units_they_need():
    z = np.random.default_rng(8).normal(0.0, 1.0, 6)
    noisy = list(z - z.mean() + 0.1)  # a small positive mean, widely spread
    under = _inconclusive(Directional("d", "x", delta=0.5), noisy)
    assert under.verdict == "inconclusive" and under.design_status == "inconclusive-underpowered"
    assert under.underpowered and under.units_needed > 6
    assert under.power_detail["power_curve"][-1][0] >= under.units_needed
    x = np.random.default_rng(9).normal(0.0, 0.05, 30)
    precise = list(x - x.mean() + 0.005)  # near zero, tightly measured
    powered = _inconclusive(Directional("d", "x", delta=0.5), precise)
    assert powered.verdict == "inconclusive" and powered.design_status == "inconclusive-powered"
    assert not powered.underpowered and any("smaller than the effect of interest" in n for n in powered.notes)
