"""Tests of analysis.stats: hand-computed cases, reference implementations, invariances."""
from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from analysis._validation import InvalidParameterError
from analysis.stats import (
    VERDICTS,
    DesignCheck,
    Evidence,
    TestResult,
    adjust_family,
    bootstrap_ci,
    design_check,
    difference_test,
    directional_test,
    equivalence_test,
    holm,
    trend_test,
    verdict_from,
)

FAST = settings(max_examples=25, deadline=None)
MESSAGE = re.compile(r"^The '\w+' parameter of [\w.]+ must be .+\. Got .+ instead\.$", re.S)

# Per-model values: a few seeds, well-conditioned magnitudes.
finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
positive = st.floats(0.01, 100, allow_nan=False, allow_infinity=False)


def samples(elements=finite, min_size=3, max_size=8):
    return st.lists(elements, min_size=min_size, max_size=max_size).filter(
        lambda xs: np.std(xs) > 1e-3 * (1 + np.max(np.abs(xs)))
    )


@st.composite
def pairs(draw, elements=finite, min_size=3, max_size=8, log=False):
    n = draw(st.integers(min_size, max_size))
    a = draw(st.lists(elements, min_size=n, max_size=n))
    b = draw(st.lists(elements, min_size=n, max_size=n))
    a, b = np.array(a), np.array(b)
    # Keep samples and differences (or their logs) away from constant: a t-test
    # on identical values has no variance to divide by.
    for x in (np.log(a), np.log(b), np.log(a / b)) if log else (a, b, a - b):
        assume(np.std(x) > 1e-3 * (1 + np.max(np.abs(x))))
    return a, b


# --------------------------------------------------------------------------- references


def t_quantile_df2(q: float) -> float:
    """Closed-form quantile of Student's t with 2 degrees of freedom."""
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def reference_welch_tost(a, b, low, upp, alpha):
    """Two one-sided Welch t-tests written from the t distribution (Schuirmann 1987)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    diff = a.mean() - b.mean()
    p_lower = sps.t.sf((diff - low) / se, df)  # H0: diff <= low
    p_upper = sps.t.cdf((diff - upp) / se, df)  # H0: diff >= upp
    half = sps.t.ppf(1 - alpha, df) * se
    return max(p_lower, p_upper), (diff - half, diff + half)


def reference_paired_tost(a, b, low, upp, alpha):
    d = np.asarray(a, float) - np.asarray(b, float)
    se = d.std(ddof=1) / math.sqrt(d.size)
    df = d.size - 1
    p_lower = sps.t.sf((d.mean() - low) / se, df)
    p_upper = sps.t.cdf((d.mean() - upp) / se, df)
    half = sps.t.ppf(1 - alpha, df) * se
    return max(p_lower, p_upper), (d.mean() - half, d.mean() + half)


def reference_holm(ps):
    """Holm step-down adjustment by hand: adj_(i) = max_{j<=i} min(1, (m - j) p_(j))."""
    idx = [i for i, p in enumerate(ps) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: ps[i])
    out = list(ps)
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * ps[i]))
        out[i] = running
    return out


def brute_force_page_p(row):
    """One block: share of rank permutations whose L = Σ j·r_j is at least the observed L."""
    k = len(row)
    weights = np.arange(1, k + 1)
    observed = np.dot(weights, sps.rankdata(row))
    perms = list(itertools.permutations(range(1, k + 1)))
    return sum(np.dot(weights, p) >= observed - 1e-9 for p in perms) / len(perms)


# --------------------------------------------------------------------------- hand-computed


def test_one_sample_t_hand_computed():
    # mean 2, sd 1, n 3: t = 2 / (1/√3) = 2√3, df = 2, sf(t) = (1 - t/√(t²+2)) / 2.
    r = directional_test([1.0, 2.0, 3.0])
    t = 2 * math.sqrt(3)
    assert math.isclose(r.statistic, t, rel_tol=1e-12)
    assert math.isclose(r.p_support, 0.5 * (1 - t / math.sqrt(t * t + 2)), rel_tol=1e-9)
    half = t_quantile_df2(0.975) / math.sqrt(3)
    assert np.allclose(r.ci, (2 - half, 2 + half), rtol=1e-9)
    assert r.effect == 2.0 and r.n == {"a": 3} and r.ci_level == 0.95
    assert math.isclose(r.details["standardized_effect"], 2.0)


def test_paired_equals_one_sample_on_differences_hand_case():
    a, b = np.array([5.0, 7.0, 9.0]), np.array([4.0, 5.0, 6.0])  # differences 1, 2, 3
    paired = directional_test(a, b, paired=True)
    one = directional_test(a - b)
    assert math.isclose(paired.p_support, one.p_support, rel_tol=1e-12)
    assert np.allclose(paired.ci, one.ci)
    assert paired.n == {"pairs": 3}


def test_welch_ci_matches_formula():
    a, b = np.array([3.0, 4.0, 6.0, 9.0]), np.array([1.0, 1.5, 2.0])
    r = directional_test(a, b, alpha=0.1)
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = sps.t.ppf(0.95, df) * math.sqrt(va + vb)
    diff = a.mean() - b.mean()
    assert np.allclose(r.ci, (diff - half, diff + half), rtol=1e-9)
    assert math.isclose(r.details["df"], df, rel_tol=1e-9)
    assert math.isclose(r.p_support, sps.t.sf(diff / math.sqrt(va + vb), df), rel_tol=1e-9)


def test_log_effect_is_ratio_of_geometric_means():
    a, b = np.array([2.0, 8.0, 4.0]), np.array([1.0, 1.0, 8.0])  # geometric means 4 and 2
    r = directional_test(a, b, log=True)
    assert math.isclose(r.effect, 2.0, rel_tol=1e-12)
    assert r.ci[0] < r.effect < r.ci[1]
    assert "ratio" in r.effect_name


def test_trend_hand_computed_effects():
    values = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 2.0]])
    r = trend_test(values, levels=[10.0, 20.0, 30.0])
    # Row 1: tau 1, slope 0.15; row 2: tau -1/3, slope -0.05.
    assert np.allclose(r.details["kendall_tau_per_seed"], [1.0, -1 / 3])
    assert math.isclose(r.effect, (1 - 1 / 3) / 2)
    assert np.allclose(r.details["ols_slope_per_seed"], [0.15, -0.05])
    assert r.n == {"seeds": 2, "levels": 3}


def test_trend_orders_columns_by_level():
    values = np.array([[1.0, 3.0, 2.0], [2.0, 6.0, 4.0], [0.0, 9.0, 5.0]])
    shuffled = trend_test(values, levels=[1.0, 3.0, 2.0])
    ordered = trend_test(values[:, [0, 2, 1]], levels=[1.0, 2.0, 3.0])
    assert shuffled.p_support == ordered.p_support and shuffled.effect == ordered.effect


# --------------------------------------------------------------------------- TOST reference


@FAST
@given(a=samples(), b=samples(), center=finite, width=st.floats(0.1, 50), alpha=st.sampled_from([0.05, 0.1]))
def test_welch_tost_matches_reference(a, b, center, width, alpha):
    low, upp = center - width, center + width
    r = equivalence_test(a, b, low=low, upp=upp, alpha=alpha)
    p_ref, ci_ref = reference_welch_tost(a, b, low, upp, alpha)
    assert math.isclose(r.p_support, p_ref, rel_tol=1e-7, abs_tol=1e-12)
    assert np.allclose(r.ci, ci_ref, rtol=1e-7, atol=1e-9)
    assert math.isclose(r.ci_level, 1 - 2 * alpha)


@FAST
@given(ab=pairs(positive, log=True), alpha=st.sampled_from([0.05, 0.1]))
def test_log_ratio_tost_matches_reference_on_logs(ab, alpha):
    a, b = ab
    paired = equivalence_test(a, b, paired=True, low=0.8, upp=1.25, log_ratio=True, alpha=alpha)
    p_ref, ci_ref = reference_paired_tost(np.log(a), np.log(b), math.log(0.8), math.log(1.25), alpha)
    assert math.isclose(paired.p_support, p_ref, rel_tol=1e-7, abs_tol=1e-12)
    assert np.allclose(paired.ci, np.exp(ci_ref), rtol=1e-7)
    welch = equivalence_test(a, b, low=0.8, upp=1.25, log_ratio=True, alpha=alpha)
    p_ref, ci_ref = reference_welch_tost(np.log(a), np.log(b), math.log(0.8), math.log(1.25), alpha)
    assert math.isclose(welch.p_support, p_ref, rel_tol=1e-7, abs_tol=1e-12)
    assert np.allclose(welch.ci, np.exp(ci_ref), rtol=1e-7)


@FAST
@given(a=samples(), b=samples(), low=st.floats(-60, 0), width=st.floats(0.1, 60))
def test_tost_verdict_agrees_with_ci(a, b, low, width):
    upp = low + width
    r = equivalence_test(a, b, low=low, upp=upp, alpha=0.05)
    inside = low < r.ci[0] and r.ci[1] < upp
    outside = r.ci[1] < low or r.ci[0] > upp
    tol = 1e-9 * (1 + abs(low) + abs(upp))  # borderline draws are not decisive
    if min(abs(r.ci[0] - low), abs(r.ci[1] - upp), abs(r.ci[1] - low), abs(r.ci[0] - upp)) > tol:
        assert (r.p_support < 0.05) == inside
        assert (r.p_refute < 0.05) == outside


def test_one_sample_tost_matches_paired_against_zero():
    a = np.array([0.1, -0.2, 0.05, 0.15, -0.05])
    one = equivalence_test(a, low=-0.5, upp=0.5)
    paired = equivalence_test(a, np.zeros(5), paired=True, low=-0.5, upp=0.5)
    assert math.isclose(one.p_support, paired.p_support) and np.allclose(one.ci, paired.ci)


# --------------------------------------------------------------------------- Holm

p_entry = st.one_of(st.none(), st.floats(0, 1, allow_nan=False))


@FAST
@given(ps=st.lists(p_entry, min_size=0, max_size=12))
@example(ps=[0.01, 0.04, 0.03])
@example(ps=[None, 0.2, None])
def test_holm_matches_hand_implementation(ps):
    adjusted = holm(ps)
    expected = reference_holm(ps)
    assert len(adjusted) == len(ps)
    for p, got, want in zip(ps, adjusted, expected):
        if p is None:
            assert got is None
        else:
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
            assert p - 1e-15 <= got <= 1.0
    kept = [(p, q) for p, q in zip(ps, adjusted) if p is not None]
    for (p1, q1), (p2, q2) in itertools.product(kept, kept):
        if p1 < p2:
            assert q1 <= q2 + 1e-15


def test_holm_matches_statsmodels():
    # Few fixed vectors: multipletests runs gc.collect() on every Holm call.
    rng = np.random.default_rng(11)
    for ps in (rng.uniform(size=9) ** 3, np.array([0.02, 0.02, 0.5, 0.001, 1.0])):
        assert np.allclose(holm(list(ps)), multipletests(ps, method="holm")[1], rtol=1e-12, atol=0)


def test_holm_hand_case():
    assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


# --------------------------------------------------------------------------- directional properties


@FAST
@given(a=samples(), b=samples(), alternative=st.sampled_from(["greater", "less"]))
def test_directional_p_values_are_complementary_and_swap(a, b, alternative):
    r = directional_test(a, b, alternative=alternative)
    assert math.isclose(r.p_support + r.p_refute, 1.0, rel_tol=1e-9)
    swapped = directional_test(b, a, alternative=alternative)
    assert math.isclose(swapped.p_support, r.p_refute, rel_tol=1e-9, abs_tol=1e-15)
    assert math.isclose(swapped.p_refute, r.p_support, rel_tol=1e-9, abs_tol=1e-15)
    other = directional_test(a, b, alternative="less" if alternative == "greater" else "greater")
    assert math.isclose(other.p_support, r.p_refute, rel_tol=1e-9, abs_tol=1e-15)


@FAST
@given(ab=pairs(), shift=st.floats(-50, 50))
def test_paired_tests_are_shift_invariant(ab, shift):
    a, b = ab
    r = directional_test(a, b, paired=True)
    s = directional_test(a + shift, b + shift, paired=True)
    assert math.isclose(r.p_support, s.p_support, rel_tol=1e-6, abs_tol=1e-12)
    assert math.isclose(r.p_support + r.p_refute, 1.0, rel_tol=1e-9)
    e1 = equivalence_test(a, b, paired=True, low=-1.0, upp=1.0)
    e2 = equivalence_test(a + shift, b + shift, paired=True, low=-1.0, upp=1.0)
    assert math.isclose(e1.p_support, e2.p_support, rel_tol=1e-6, abs_tol=1e-12)


@FAST
@given(ab=pairs(positive, log=True), scale=st.floats(1e-3, 1e3))
def test_log_ratio_tests_are_scale_invariant(ab, scale):
    a, b = ab
    for paired in (True, False):
        r = directional_test(a, b, paired=paired, log=True)
        s = directional_test(a * scale, b * scale, paired=paired, log=True)
        assert math.isclose(r.p_support, s.p_support, rel_tol=1e-6, abs_tol=1e-12)
        assert math.isclose(r.effect, s.effect, rel_tol=1e-9)
        e = equivalence_test(a, b, paired=paired, low=0.8, upp=1.25, log_ratio=True)
        f = equivalence_test(a * scale, b * scale, paired=paired, low=0.8, upp=1.25, log_ratio=True)
        assert math.isclose(e.p_support, f.p_support, rel_tol=1e-6, abs_tol=1e-12)
        assert math.isclose(e.p_refute, f.p_refute, rel_tol=1e-6, abs_tol=1e-12)


# --------------------------------------------------------------------------- verdicts

RNG = np.random.default_rng(20240601)
NOISE = RNG.normal(size=(4, 12))


def verdict(result: TestResult) -> str:
    return verdict_from(result.p_support, result.p_refute, 0.05)


@pytest.mark.parametrize(
    "kwargs",
    [{"paired": False}, {"paired": True}, {"paired": False, "log": True}],
    ids=["welch", "paired", "welch-log"],
)
def test_directional_verdicts(kwargs):
    base = 10 + NOISE[0]
    assert verdict(directional_test(base + 5, base + NOISE[1] * 0.1, **kwargs)) == "supported"
    assert verdict(directional_test(base - 5, base + NOISE[1] * 0.1, **kwargs)) == "refuted"
    assert verdict(directional_test(base[:3] + NOISE[2, :3], base[:3], **kwargs)) == "inconclusive"


def test_one_sample_directional_verdicts():
    assert verdict(directional_test(3 + 0.1 * NOISE[0])) == "supported"
    assert verdict(directional_test(-3 + 0.1 * NOISE[0])) == "refuted"
    assert verdict(directional_test(NOISE[0, :3])) == "inconclusive"


@pytest.mark.parametrize("paired", [False, True], ids=["welch", "paired"])
def test_equivalence_verdicts(paired):
    base = 1.0 + 0.1 * np.abs(NOISE[0])
    close = base * np.exp(0.01 * NOISE[1])
    far = base * 3.0 * np.exp(0.01 * NOISE[1])
    noisy = base[:3] * np.exp(0.8 * NOISE[2, :3])
    eq = {"low": 0.8, "upp": 1.25, "log_ratio": True, "paired": paired}
    assert verdict(equivalence_test(close, base, **eq)) == "supported"
    assert verdict(equivalence_test(far, base, **eq)) == "refuted"
    assert verdict(equivalence_test(noisy, base[:3], **eq)) == "inconclusive"


def test_difference_verdicts():
    base = NOISE[0]
    assert verdict(difference_test(base + 10, base, low=-1, upp=1)) == "supported"
    assert verdict(difference_test(0.01 * NOISE[1], 0.01 * NOISE[2], low=-1, upp=1)) == "refuted"
    assert verdict(difference_test(NOISE[1, :3], NOISE[2, :3], low=-0.1, upp=0.1)) == "inconclusive"


def test_trend_verdicts():
    levels = np.arange(5, dtype=float)
    rising = levels + 0.1 * NOISE[:4, :5]
    assert verdict(trend_test(rising, levels)) == "supported"
    assert verdict(trend_test(-rising, levels)) == "refuted"
    assert verdict(trend_test(rising, levels, alternative="decreasing")) == "refuted"
    assert verdict(trend_test(-rising, levels, alternative="decreasing")) == "supported"
    flat = np.array([[1.0, 3.0, 2.0], [2.0, 1.0, 3.0], [3.0, 2.0, 1.0]])
    assert verdict(trend_test(flat)) == "inconclusive"


def test_verdict_rules():
    assert verdict_from(0.01, 0.99, 0.05) == "supported"
    assert verdict_from(0.2, 0.01, 0.05) == "refuted"
    assert verdict_from(0.2, 0.3, 0.05) == "inconclusive"
    assert verdict_from(None, None, 0.05) == "inconclusive"
    assert verdict_from(float("nan"), float("nan"), 0.05) == "inconclusive"
    assert verdict_from(0.05, 0.05, 0.05) == "inconclusive"  # strict inequality
    assert set(VERDICTS) == {"supported", "refuted", "inconclusive", "error"}


# --------------------------------------------------------------------------- Page's test


def test_trend_one_seed_matches_brute_force_permutations():
    row = np.array([0.3, 0.1, 0.5, 0.9])
    r = trend_test(row[None, :])
    assert math.isclose(r.p_support, brute_force_page_p(row), rel_tol=1e-12)
    assert math.isclose(r.p_refute, brute_force_page_p(row[::-1]), rel_tol=1e-12)
    assert math.isnan(r.ci[0]) and math.isnan(r.ci[1])


def test_trend_two_levels_is_a_sign_test():
    values = np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 5.0], [4.0, 1.0], [0.0, 1.0], [0.0, 0.5]])
    r = trend_test(values)
    increasing = int(np.sum(values[:, 1] > values[:, 0]))
    assert math.isclose(r.p_support, sps.binom.sf(increasing - 1, len(values), 0.5), rel_tol=1e-12)


@pytest.mark.parametrize("m,k", [(1, 3), (1, 5), (2, 2), (5, 2), (2, 3), (3, 4), (6, 5)])
def test_page_min_p_is_one_over_k_factorial_to_the_m(m, k):
    check = design_check("page", m, n_levels=k)
    assert math.isclose(check.min_p, math.factorial(k) ** -m, rel_tol=1e-9)
    assert check.can_reach_alpha == (check.min_p < 0.05)


# --------------------------------------------------------------------------- design checks


def test_page_design_reachability():
    small = design_check("page", 2, n_levels=2)
    assert not small.can_reach_alpha and math.isclose(small.min_p, 0.25)
    assert "cannot reach significance" in small.message
    assert design_check("page", 6, n_levels=5).can_reach_alpha
    two_by_three = design_check("page", 2, n_levels=3, family_size=4)
    assert two_by_three.min_p < 0.05 and not two_by_three.can_reach_alpha  # 0.028 > 0.05/4
    assert "0.028" in two_by_three.message and "0.0125" in two_by_three.message


def test_trend_result_carries_design_check():
    r = trend_test(np.array([[1.0, 2.0], [1.0, 2.0]]))
    assert not r.design.can_reach_alpha and r.p_support >= 0.05


@pytest.mark.parametrize("kind", ["t1", "t_paired", "tost1", "tost_paired"])
def test_t_design_needs_two_seeds(kind):
    assert not design_check(kind, 1).can_reach_alpha
    assert design_check(kind, 1).power is None
    two = design_check(kind, 2)
    assert two.can_reach_alpha and 0 < two.power < 1


def test_welch_design_needs_two_seeds_per_group_and_power_grows():
    assert not design_check("t_welch", (1, 5)).can_reach_alpha
    powers = [design_check("t_welch", (n, n)).power for n in (2, 4, 8, 16)]
    assert all(p1 < p2 for p1, p2 in zip(powers, powers[1:]))
    assert design_check("t1", 5, family_size=4).power < design_check("t1", 5).power


def test_single_seed_test_is_flagged_not_crashed():
    r = directional_test([1.0], [0.5], paired=True)
    assert not r.design.can_reach_alpha and math.isnan(r.p_support)
    assert verdict(r) == "inconclusive"
    e = Evidence.from_result("MW-3", {}, r)
    assert any("cannot reach significance" in note for note in e.notes)


# --------------------------------------------------------------------------- Evidence


def make_evidence(p, p_refute, **kwargs):
    result = TestResult(
        test="one-sided paired t-test",
        statistic=float("nan"),
        p_support=p,
        p_refute=p_refute,
        effect=np.float64(0.5),
        effect_name="mean difference (a − b)",
        ci=(float("-inf"), 1.0),
        ci_level=0.95,
        n={"pairs": 3},
        design=DesignCheck(True, None, np.float32(0.4), "ok"),
        details={"arr": np.arange(3), "nested": {"x": float("nan")}},
    )
    return Evidence.from_result("MW-1", {"setting": "digits-lenet5", "α": 0.5}, result, **kwargs)


def test_evidence_round_trip_through_json():
    e = make_evidence(0.01, 0.99, paper_value={"16-bit": -0.07}, figures=["a.png"])
    d = e.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = Evidence.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert d["statistic"] is None and d["ci"] == [None, 1.0]
    assert d["details"]["arr"] == [0, 1, 2] and d["details"]["nested"]["x"] is None
    assert isinstance(back.design, DesignCheck) and isinstance(back.ci, tuple)
    assert back.instance_id == "MW-1[digits-lenet5,α=0.5]"
    assert Evidence("GC-1").instance_id == "GC-1"


def test_evidence_from_result_uses_raw_p():
    e = make_evidence(0.01, 0.99)
    assert e.verdict == "supported" and e.p_value == e.p_adjusted == 0.01
    with pytest.raises(InvalidParameterError, match=MESSAGE):
        Evidence("MW-1", verdict="passed")
    with pytest.raises(InvalidParameterError, match=MESSAGE):
        Evidence.from_dict({"claim_id": "MW-1", "verdikt": "supported"})


def test_adjust_family_sets_verdicts_from_adjusted_p():
    family = [make_evidence(0.01, 0.99), make_evidence(0.04, 0.96), make_evidence(0.03, 0.97)]
    failed = Evidence.from_error("MW-1", {"α": 0.9}, "training diverged")
    number = Evidence("MW-3", verdict="supported", asserted=False, paper_value=-0.07, ours_value=-0.05)
    assert all(e.verdict == "supported" for e in family)  # raw p < 0.05
    adjusted = adjust_family([*family, failed, number])
    assert [e.p_adjusted for e in adjusted[:3]] == pytest.approx([0.03, 0.06, 0.06])
    assert [e.verdict for e in adjusted[:3]] == ["supported", "inconclusive", "inconclusive"]
    assert [e.p_value for e in adjusted[:3]] == [0.01, 0.04, 0.03]
    assert adjusted[3].verdict == "error" and adjusted[3].p_adjusted is None
    assert adjusted[4].verdict == "supported"  # no p-values: verdict kept
    assert family[1].verdict == "supported"  # inputs untouched
    refuting = adjust_family([make_evidence(0.9, 0.001), make_evidence(0.9, 0.03), make_evidence(0.9, 0.04)])
    assert [e.p_refute_adjusted for e in refuting] == pytest.approx([0.003, 0.06, 0.06])
    assert [e.verdict for e in refuting] == ["refuted", "inconclusive", "inconclusive"]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = 5 + NOISE[3]
    ci1 = bootstrap_ci(values, rng=7)
    ci2 = bootstrap_ci(values, rng=np.random.default_rng(7))
    assert ci1 == ci2
    assert ci1[0] < values.mean() < ci1[1]
    narrow = bootstrap_ci(values, level=0.5, rng=7)
    assert ci1[0] <= narrow[0] and narrow[1] <= ci1[1]
    assert all(math.isnan(v) for v in bootstrap_ci([1.0], rng=0))


def test_trend_bootstrap_is_deterministic_per_rng():
    values = np.arange(4.0) + NOISE[:3, :4]
    assert trend_test(values, rng=3).ci == trend_test(values, rng=3).ci
    assert trend_test(values).ci == trend_test(values, rng=0).ci


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call",
    [
        lambda: directional_test([]),
        lambda: directional_test([1.0, 2.0], [1.0, 2.0, 3.0], paired=True),
        lambda: directional_test([1.0, 2.0], alpha=1.5),
        lambda: directional_test([1.0, 2.0], alpha=0.0),
        lambda: directional_test([1.0, 2.0], alternative="two-sided"),
        lambda: directional_test([1.0, -2.0], [1.0, 2.0], log=True),
        lambda: equivalence_test([1.0, 2.0], [1.0, 2.0], low=1.0, upp=1.0),
        lambda: equivalence_test([1.0, 2.0], [1.0, 2.0], low=1.25, upp=0.8, log_ratio=True),
        lambda: equivalence_test([1.0, 0.0], [1.0, 2.0], low=0.8, upp=1.25, log_ratio=True),
        lambda: equivalence_test([1.0, 2.0], [1.0, 2.0], low=-1, upp=1, alpha=0.6),
        lambda: difference_test([1.0, 2.0], [1.0, 2.0], low=1.0, upp=-1.0),
        lambda: trend_test(np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])),
        lambda: trend_test(np.array([1.0, 2.0, 3.0])),
        lambda: trend_test(np.ones((2, 3)), levels=[1.0, 1.0, 2.0]),
        lambda: design_check("anova", 3),
        lambda: design_check("page", 3),
        lambda: design_check("t_welch", 3, paired=True),
        lambda: holm([0.5, 1.5]),
        lambda: bootstrap_ci([1.0, 2.0], rng=None),
    ],
)
def test_bad_input_raises_one_message_format(call):
    with pytest.raises(InvalidParameterError, match=MESSAGE):
        call()
