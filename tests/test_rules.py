"""Decision rules against independent references (scipy, statsmodels) and their combination logic."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from analysis._validation import InvalidParameterError
from analysis.stats.rules import (AllOf, AnyOf, Directional, Equivalence, GroupDifference, GroupsDiffer,
                                  NonInferiority, Trend)
from analysis.stats.units import UnitTable, column_key

ALPHA = 0.05
samples = st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=3, max_size=12).filter(
    lambda v: np.std(v) > 1e-3)


def data(**columns):
    return {k: np.asarray(v, dtype=float) for k, v in columns.items()}


# ---------------------------------------------------------------- leaves vs scipy / statsmodels
@settings(max_examples=60)
@given(x=samples, null=st.floats(-1, 1), delta=st.floats(0.1, 2))
def test_directional_matches_scipy_one_sided_t(x, null, delta):
    for side in ("greater", "less"):
        rule = Directional("d", "x", alternative=side, delta=delta, null=null)
        p_s, p_r = rule.pvalues(data(x=x))
        opposite = "less" if side == "greater" else "greater"
        assert math.isclose(p_s, stats.ttest_1samp(x, null, alternative=side).pvalue, rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(p_r, stats.ttest_1samp(x, null, alternative=opposite).pvalue, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60)
@given(x=samples, low=st.floats(-3, -0.1), upp=st.floats(0.1, 3))
def test_equivalence_support_is_statsmodels_tost(x, low, upp):
    p_s, _ = Equivalence("e", "x", low=low, upp=upp).pvalues(data(x=x))
    ref = ttost_paired(np.asarray(x), np.zeros(len(x)), low, upp)[0]
    assert math.isclose(p_s, ref, rel_tol=1e-7, abs_tol=1e-12)


def test_equivalence_refutation_is_a_size_alpha_test_ci_wholly_outside():
    x = np.array([3.0, 3.2, 2.9, 3.1, 3.05])
    rule = Equivalence("e", "x", low=-1, upp=1)
    out = rule.evaluate(data(x=x), ALPHA)
    p_above = stats.ttest_1samp(x, 1.0, alternative="greater").pvalue
    assert math.isclose(out.p_refute, min(1.0, 2 * p_above), rel_tol=1e-9)
    # refuted at α exactly when the (1 − α) two-sided CI lies above the margin
    ci = stats.ttest_1samp(x, 0).confidence_interval(1 - ALPHA)
    assert (out.p_refute < ALPHA) == (ci.low > 1.0)


@pytest.mark.parametrize("side", ["greater", "less"])
def test_non_inferiority_bound_and_interval(side):
    x = np.array([0.05, -0.1, 0.12, 0.02, -0.03, 0.08])
    rule = NonInferiority("n", "x", reference=0.0, margin=0.22, alternative=side)
    out = rule.evaluate(data(x=x), ALPHA)
    bound = -0.22 if side == "greater" else 0.22
    assert math.isclose(out.p_support, stats.ttest_1samp(x, bound, alternative=side).pvalue, rel_tol=1e-9)
    lo, hi = out.ci  # the (1 − 2α) interval: its ends are the one-sided (1 − α) bounds
    assert out.ci_level == pytest.approx(1 - 2 * ALPHA)
    assert (out.p_support < ALPHA) == ((lo > bound) if side == "greater" else (hi < bound))


@settings(max_examples=40)
@given(a=samples, b=samples, delta=st.floats(0.1, 3))
def test_group_difference_is_welch(a, b, delta):
    table = data(**{column_key("x", "A"): a, column_key("x", "B"): b})
    rule = GroupDifference("g", "x", group_a="A", group_b="B", alternative="greater", delta=delta)
    p_s, p_r = rule.pvalues(table)
    assert math.isclose(p_s, stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue, rel_tol=1e-7, abs_tol=1e-12)
    assert math.isclose(p_r, stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue, rel_tol=1e-7, abs_tol=1e-12)


@settings(max_examples=40)
@given(a=samples, b=samples, c=samples)
def test_groups_differ_is_scipy_kruskal_and_refuted_by_welch_tost(a, b, c):
    a, b, c = (np.round(np.asarray(v), 1) for v in (a, b, c))  # ties on purpose: the tie correction is tested
    if np.unique(np.concatenate([a, b, c])).size < 2:
        return
    table = data(**{column_key("r", g): v for g, v in zip("ABC", (a, b, c))})
    p_s, p_r = GroupsDiffer("k", "r", groups=("A", "B", "C"), delta=0.5).pvalues(table)
    assert math.isclose(p_s, stats.kruskal(a, b, c).pvalue, rel_tol=1e-7, abs_tol=1e-12)
    pairs = [(a, b), (a, c), (b, c)]
    ref = max(ttost_ind(x, y, -0.5, 0.5, usevar="unequal")[0] for x, y in pairs)
    assert math.isclose(p_r, ref, rel_tol=1e-6, abs_tol=1e-12)


def test_vectorised_pvalues_equal_one_at_a_time():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1, size=(50, 7))
    rule = AllOf("all", Directional("d", "x", alternative="greater", delta=0.5), Equivalence("e", "x", low=-2, upp=2))
    batch = rule.pvalues({"x": x})
    for i in range(50):
        one = rule.pvalues({"x": x[i]})
        assert np.allclose([batch[0][i], batch[1][i]], one)


# ---------------------------------------------------------------- edge cases
def test_zero_variance_gives_exact_p_and_zero_over_zero_gives_nothing():
    rule = Equivalence("e", "x", low=-1, upp=1)
    assert rule.pvalues(data(x=[0.0, 0.0, 0.0]))[0] == 0.0  # exactly inside the margin: shown
    d = Directional("d", "x", alternative="greater", delta=1)
    assert d.pvalues(data(x=[0.0, 0.0, 0.0])) == (1.0, 1.0)  # 0/0: nothing shown either way
    assert d.pvalues(data(x=[2.0, 2.0, 2.0]))[0] == 0.0


def test_one_unit_cannot_decide():
    out = Directional("d", "x", alternative="greater", delta=1).evaluate(data(x=[3.0]), ALPHA)
    assert math.isnan(out.p_support) and math.isnan(out.p_refute) and math.isnan(out.ci[0])


def test_bad_rule_parameters_are_named():
    with pytest.raises(InvalidParameterError, match="'delta'"):
        Directional("d", "x", alternative="greater", delta=0)
    with pytest.raises(InvalidParameterError, match="'alternative'"):
        Directional("d", "x", alternative="up", delta=1)
    with pytest.raises(InvalidParameterError, match="low < 0 < upp"):
        Equivalence("e", "x", low=0.2, upp=1)
    with pytest.raises(InvalidParameterError, match="distinct names"):
        AllOf("a", Directional("d", "x", delta=1), Directional("d", "y", delta=1))


# ---------------------------------------------------------------- combinators
def _fixed(name, p_support, p_refute):
    """A leaf whose p-values are given: a Directional on a column built to give them is overkill here."""

    class Fixed(Directional):
        def components(self, d):
            return {"support": np.float64(p_support), "refute": np.float64(p_refute)}

    return Fixed(name, "x", alternative="greater", delta=1)


def test_all_of_is_intersection_union_and_holm_refutation():
    rule = AllOf("all", _fixed("a", 0.01, 0.9), _fixed("b", 0.04, 0.02), _fixed("c", 0.03, 0.5))
    p_s, p_r = rule.pvalues({"x": np.zeros(3)})
    assert p_s == pytest.approx(0.04)  # max: every part must hold
    assert p_r == pytest.approx(3 * 0.02)  # some part refuted, Holm over 3: k · min


def test_any_of_is_holm_support_and_all_refuted():
    rule = AnyOf("any", _fixed("a", 0.01, 0.9), _fixed("b", 0.04, 0.02))
    p_s, p_r = rule.pvalues({"x": np.zeros(3)})
    assert p_s == pytest.approx(0.02) and p_r == pytest.approx(0.9)


def test_nan_part_blocks_support_of_all_of_whatever_its_position():
    for order in ((0, 1), (1, 0)):
        parts = [_fixed("ok", 0.001, 0.9), _fixed("nan", float("nan"), float("nan"))]
        rule = AllOf("all", *(parts[i] for i in order))
        p_s, p_r = rule.pvalues({"x": np.zeros(3)})
        assert math.isnan(p_s)
        assert p_r == pytest.approx(min(1.0, 2 * 0.9))


def test_deciding_part_is_the_bottleneck_or_the_refuter():
    x = {"a": np.array([1.0, 1.2, 0.9, 1.1]), "b": np.array([0.1, -0.2, 0.3, 0.2])}
    rule = AllOf("all", Directional("strong", "a", delta=0.5), Directional("weak", "b", delta=0.5))
    out = rule.evaluate(x, ALPHA)
    assert out.deciding("inconclusive").name == "weak"
    rule2 = AllOf("all", Directional("strong", "a", delta=0.5), Directional("wrong way", "a", alternative="less", delta=0.5))
    assert rule2.evaluate(x, ALPHA).deciding("refuted").name == "wrong way"


def test_trend_is_a_directional_on_per_unit_tau():
    out = Trend("t", "tau", alternative="greater", delta=0.5).evaluate(data(tau=[1.0, 0.8, 1.0, 0.6]), ALPHA)
    assert out.form == "trend" and out.p_support < 0.01 and "per-unit" in out.test


# ---------------------------------------------------------------- the unit table
def test_unit_table_refuses_a_model_in_two_units():
    t = UnitTable("base with its own partner")
    t.add("u0", models=["B0", "I0"], x=1.0)
    with pytest.raises(InvalidParameterError, match="'I0' is used by units 'u0' and 'u1'"):
        t.add("u1", models=["B1", "I0"], x=2.0)


def test_conditional_on_model_may_be_shared_and_is_recorded():
    t = UnitTable("student seed", conditional_on="teacher")
    t.add("s0", models=["teacher", "S0"], x=1.0)
    t.add("s1", models=["teacher", "S1"], x=2.0)
    assert t.conditional_on == "teacher" and t.data()["x"].tolist() == [1.0, 2.0]


def test_unit_table_groups_and_columns():
    t = UnitTable("base")
    t.add("a0", group="A", models=["a0"], r=0.1)
    t.add("b0", group="B", models=["b0"], r=0.5)
    t.add("a1", group="A", models=["a1"], r=0.2)
    d = t.data()
    assert d["r|A"].tolist() == [0.1, 0.2] and d["r|B"].tolist() == [0.5]
    with pytest.raises(InvalidParameterError, match="columns of the other units"):
        t.add("a2", group="A", models=["a2"], q=1.0)
    with pytest.raises(InvalidParameterError, match="finite"):
        t.add("a3", group="A", models=["a3"], r=float("nan"))
