"""The two-stage design (analysis.stats.sequential): boundaries against gsDesign, repeated p-values, conditional
power, and every rule form's type-I error under the two-stage construction in fake worlds with a known null.

Null simulations: 2,000 data sets per rule form and design (fixed seeds), each at the form's least favourable null
(STYLE.md §14; the scenarios of tests/test_claims_null.py): the rate of a wrong verdict lies in 0.03–0.07 at
α = 0.05, both when every open instance continues (the boundaries' own size) and when stage 2 is given only at
conditional power ≥ ``continue_at`` (non-binding futility: at most the boundaries' size).
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtr, ndtri

from analysis._validation import InvalidParameterError
from analysis.stats.power import PowerModel
from analysis.stats.rules import AllOf, AnyOf, Directional, Equivalence, NonInferiority, Trend
from analysis.stats.sequential import TwoStage, spent
from analysis.stats.units import UnitTable
from tests.nullrates import limit

ALPHA = 0.05
DRAWS = 2000
BAND = (0.03, 0.07)  # the target at α = 0.05 with 2,000 draws (±3 SE ≈ ±0.015)
DESIGNS = {"3 then 8": TwoStage(3, 8), "12 then 24": TwoStage(12, 24)}


# ---------------------------------------------------------------- boundaries
@pytest.mark.parametrize("spending, expected", [
    # gsDesign::gsDesign(k = 2, test.type = 1, alpha = 0.025, timing = 0.5, sfu = sfLDOF / sfLDPocock)$upper$bound
    ("obrien-fleming", (2.9626, 1.9686)),
    ("pocock", (2.1570, 2.2010)),
])
def test_boundaries_are_gsdesigns(spending, expected):
    c1, c2 = TwoStage(5, 10, alpha=0.025, spending=spending).bounds()
    assert (round(c1, 4), round(c2, 4)) == expected


@pytest.mark.parametrize("first, maximum", [(2, 3), (3, 8), (12, 24), (20, 21)])
@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_boundaries_spend_exactly_alpha(first, maximum, spending):
    """P(Z1 ≥ c1) = α(t) and P(Z1 ≥ c1 or Z2 ≥ c2) = α, checked with scipy's bivariate normal (another algorithm)."""
    d = TwoStage(first, maximum, spending=spending)
    c1, c2 = d.bounds()
    t = d.fraction
    assert 1 - ndtr(c1) == pytest.approx(spent(t, ALPHA, spending), rel=1e-9)
    both_below = stats.multivariate_normal(mean=[0, 0], cov=[[1, math.sqrt(t)], [math.sqrt(t), 1]]).cdf([c1, c2])
    assert 1 - both_below == pytest.approx(ALPHA, abs=2e-6)


def test_obrien_fleming_spends_little_at_the_first_look():
    d = TwoStage(12, 24)
    n1, n2 = d.nominal()
    assert n1 < 0.01 and 0.04 < n2 < ALPHA  # the last look near the fixed design's α


@settings(max_examples=150)
@given(p1=st.floats(1e-10, 1.0), p2=st.floats(1e-10, 1.0), a=st.sampled_from([1e-4, 0.001, 0.0125, 0.05, 0.1]),
       design=st.sampled_from([TwoStage(2, 3), TwoStage(3, 8), TwoStage(12, 24, spending="pocock")]))
def test_repeated_p_is_below_a_exactly_when_the_level_a_boundaries_are_crossed(p1, p2, a, design):
    for seen in (None, p2):
        rp = design.repeated_p(p1, seen)
        crossed = bool(design.crossed(p1, seen, alpha=a))
        if abs(rp - a) > 1e-5 * a:  # off the boundary itself (look 2's boundary is interpolated)
            assert (rp <= a) == crossed, (rp, a, crossed)


def test_repeated_p_is_vectorised_and_nan_at_look_two_means_not_seen():
    d = TwoStage(3, 8)
    p1, p2 = np.array([0.001, 0.2, 0.5]), np.array([0.01, np.nan, 0.5])
    assert np.allclose(d.repeated_p(p1, p2), [d.repeated_p(0.001, 0.01), d.repeated_p(0.2), d.repeated_p(0.5, 0.5)])


def test_repeated_p_never_rises_with_a_second_look():
    d = TwoStage(4, 10)
    for p1 in (0.001, 0.02, 0.3, 0.9):
        for p2 in (1e-6, 0.01, 0.5, 0.99):
            assert d.repeated_p(p1, p2) <= d.repeated_p(p1) + 1e-12


def test_no_p_at_look_one_gives_no_repeated_p():
    d, rule = TwoStage(4, 10), Directional("d", "x", delta=1.0)
    assert math.isnan(d.repeated_p(float("nan")))
    assert math.isnan(d.conditional_power(rule, {"x": np.array([1.0])}, {"support": np.array([0.1]),
                                                                           "refute": np.array([0.9])}))


@pytest.mark.parametrize("kw, bad", [
    ({"first": 1, "maximum": 5}, "first"), ({"first": 5, "maximum": 5}, "maximum"),
    ({"first": 2, "maximum": 5, "spending": "haybittle"}, "haybittle"),
    ({"first": 2, "maximum": 5, "continue_at": 1.5}, "continue_at"),
])
def test_bad_designs_are_named(kw, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        TwoStage(**kw)


def test_the_repeated_interval_is_wider_than_the_fixed_one_at_look_one_and_near_it_at_look_two():
    d = TwoStage(12, 24)
    fixed = stats.t.ppf(1 - ALPHA, 23)
    low1, high1 = d.interval(1.0, 0.2, 11, stage=1)
    low2, high2 = d.interval(1.0, 0.2, 23, stage=2)
    assert high1 - low1 > 2 * stats.t.ppf(1 - ALPHA, 11) * 0.2  # spends less α at look 1: wider
    assert 2 * fixed * 0.2 < high2 - low2 < 2 * fixed * 0.2 * 1.02  # look 2 near the fixed design's
    assert (low2 + high2) / 2 == pytest.approx(1.0)
    with pytest.raises(InvalidParameterError, match="stage"):
        d.interval(1.0, 0.2, 23, stage=3)


def test_the_report_sentence_names_the_boundaries_and_the_spending():
    text = TwoStage(12, 24).describe()
    assert "O'Brien–Fleming-type (Lan–DeMets)" in text and "12 then up to 24 units" in text and "non-binding" in text


# ---------------------------------------------------------------- conditional power
def _table(**columns) -> UnitTable:
    table = UnitTable("unit")
    for i, row in enumerate(zip(*columns.values())):
        table.add(f"u{i}", **dict(zip(columns, row)))
    return table


def test_conditional_power_matches_the_normal_formula_for_a_large_stage():
    """σ measured ≈ 1, δ = 0.4, 100 new units: CP = 1 − Φ((c2 − w1·z1)/w2 − δ√n2/σ) within simulation error."""
    d, rule = TwoStage(100, 200), Directional("d", "x", delta=0.4)
    rng = np.random.default_rng(3)
    z = rng.standard_normal(100)
    w1, w2 = d.weights
    _, c2 = d.bounds()
    for shift in (0.0, 0.1, 0.2):  # look 1's p from about 0.5 to 0.03
        x = z - z.mean() + shift
        table = _table(x=x)
        model = PowerModel(table, rule, simulations=4000, seed=1)
        p1 = float(rule.pvalues(table.data())[0])
        sd = float(np.std(x, ddof=1))
        expected = 1 - ndtr((c2 - w1 * ndtri(1 - p1)) / w2 - 0.4 * math.sqrt(100) / sd)
        got = d.conditional_power(rule, table.data(), model.simulated_components(d.added))
        assert got == pytest.approx(expected, abs=0.03)


def test_conditional_power_is_one_when_look_one_is_supported_and_grows_with_look_one():
    d, rule = TwoStage(6, 12), Directional("d", "x", delta=1.0)
    stage2 = {"support": np.random.default_rng(0).uniform(size=2000)}
    stage2["refute"] = 1 - stage2["support"]
    base = np.array([-1.0, 0.5, -0.5, 1.0, 0.0, 0.3])
    cps = [d.conditional_power(rule, {"x": base + m}, stage2) for m in (0.0, 0.5, 1.0, 1.5)]
    assert cps == sorted(cps) and cps[0] < cps[-1]
    assert d.conditional_power(rule, {"x": base + 5.0}, stage2) == 1.0


def test_a_rule_over_two_looks_is_its_components_combined_then_assembled():
    """Equivalence over two looks: TOST's max and the refutation's 2·min act on each tail's repeated p."""
    d, rule = TwoStage(4, 10), Equivalence("e", "x", low=-1.0, upp=1.0)
    rng = np.random.default_rng(5)
    first, second = {"x": rng.normal(0.2, 0.5, 4)}, {"x": rng.normal(0.2, 0.5, 6)}
    c1, c2 = rule.components(first), rule.components(second)
    rp = {k: d.repeated_p(c1[k], c2[k]) for k in c1}
    p_support, p_refute = d.pvalues(rule, first, second)
    assert p_support == pytest.approx(max(rp["above low"], rp["below upp"]))
    assert p_refute == pytest.approx(min(1.0, 2 * min(rp["below low"], rp["above upp"])))
    assert d.pvalues(rule, first)[0] == pytest.approx(max(d.repeated_p(c1["above low"]), d.repeated_p(c1["below upp"])))


# ---------------------------------------------------------------- type-I error of every rule form, two stages
def _kendall_tau_per_unit(rng, shape, levels=5):
    """Each unit's Kendall τ of pure noise over ``levels`` ordered levels: the exact (discrete) null of a trend."""
    x = rng.standard_normal((*shape, levels))
    pairs = list(combinations(range(levels), 2))
    return sum(np.sign(x[..., j] - x[..., i]) for i, j in pairs) / len(pairs)


def _normal(mean):
    return lambda rng, shape: mean + rng.standard_normal(shape)


# form: (rule, {column: generator at the least favourable null}, which p the wrong verdict uses)
SCENARIOS = {
    "directional": (Directional("d", "x", delta=0.5), {"x": _normal(0.0)}, "support"),
    "directional, refuted": (Directional("d", "x", delta=0.5), {"x": _normal(0.0)}, "refute"),
    "trend": (Trend("t", "tau", delta=0.3, scale="Kendall tau"), {"tau": _kendall_tau_per_unit}, "support"),
    "non-inferiority": (NonInferiority("n", "x", reference=0.0, margin=0.5), {"x": _normal(-0.5)}, "support"),
    # TOST's least favourable null: at one margin, the other far (with both near, TOST with 3 units is far below α)
    "equivalence": (Equivalence("e", "x", low=-0.5, upp=8.0), {"x": _normal(-0.5)}, "support"),
    # refuted when the (1 − α) interval lies wholly outside: size α/2 at one margin by construction (rules.py)
    "equivalence, refuted": (Equivalence("e", "x", low=-0.5, upp=8.0), {"x": _normal(-0.5)}, "refute"),
    # universal: one part at its boundary, the other strongly true (intersection–union's least favourable null)
    "universal": (AllOf("u", Directional("a", "x", delta=0.5), Directional("b", "y", delta=0.5)),
                  {"x": _normal(0.0), "y": _normal(5.0)}, "support"),
    # existential: every setting at its boundary
    "existential": (AnyOf("s", *(Directional(c, c, delta=0.5) for c in "xyz")),
                    {c: _normal(0.0) for c in "xyz"}, "support"),
}


def _simulate(rule, columns, which, design: TwoStage, seed: int, futility: bool, draws: int = DRAWS):
    """Share of ``draws`` null data sets given the wrong verdict ``which``, and the share of open ones continued."""
    rng = np.random.default_rng(seed)
    data = {k: gen(rng, (draws, design.maximum)) for k, gen in columns.items()}
    first = {k: v[:, : design.first] for k, v in data.items()}
    second = {k: v[:, design.first:] for k, v in data.items()}
    pick = 0 if which == "support" else 1
    look1 = design.pvalues(rule, first)[pick]
    stop = look1 < ALPHA
    go = ~stop
    if futility:
        for i in np.flatnonzero(~stop):
            row = {k: v[i] for k, v in first.items()}
            model = PowerModel(_table(**row), rule, simulations=100, seed=seed + int(i))
            go[i] = design.conditional_power(rule, row, model.simulated_components(design.added)) >= design.continue_at
    # Stopped data sets see no look 2 (NaN components count as not seen).
    second = {k: np.where(go[:, None], v, np.nan) for k, v in second.items()}
    final = design.pvalues(rule, first, second)[pick]
    return float(np.mean(final < ALPHA)), float(np.mean(go[~stop])) if (~stop).any() else 0.0


@pytest.mark.parametrize("design", DESIGNS.values(), ids=DESIGNS.keys())
@pytest.mark.parametrize("form", SCENARIOS)
def test_every_rule_form_keeps_its_type_one_error_over_two_stages(form, design, record_property):
    rule, columns, which = SCENARIOS[form]
    rate, _ = _simulate(rule, columns, which, design, seed=1000 + len(form), futility=False)
    record_property("type_one_error", rate)
    low, high = BAND if form != "equivalence, refuted" else (BAND[0] / 2, BAND[1] / 2)
    assert low <= rate <= high, f"{form}: wrong {which} in {rate:.3f} of {DRAWS} two-stage data sets"


@pytest.mark.slow
@pytest.mark.parametrize("form", SCENARIOS)
def test_stopping_for_futility_keeps_the_type_one_error(form, record_property):
    """Stage 2 only at conditional power ≥ 0.5 (the real PowerModel on look 1's units, 100 simulated stage 2s
    each; 1,000 data sets): non-binding futility can only lower the rate (measured 0.002–0.036 with 2,000 draws
    and 200 simulations; the support CP decides, so wrong refutations rarely get a second look)."""
    rule, columns, which = SCENARIOS[form]
    design = DESIGNS["3 then 8"]
    rate, continued = _simulate(rule, columns, which, design, seed=2000 + len(form), futility=True, draws=1000)
    record_property("type_one_error", rate)
    record_property("continued", continued)
    assert rate <= limit(1000), f"{form}: wrong {which} in {rate:.3f} of 1,000 data sets"
    assert 0.0 < continued < 1.0  # the futility rule did stop some and continue others


def test_two_stages_lose_little_power_against_the_fixed_design_at_the_maximum():
    """At the effect of interest, the O'Brien–Fleming two-stage design has nearly the fixed design's power (the
    reason to spend little α early), and stops at look 1 in a share of the worlds."""
    rule, design = Directional("d", "x", delta=0.8), TwoStage(12, 24)
    rng = np.random.default_rng(7)
    x = 0.8 + rng.standard_normal((DRAWS, design.maximum))
    fixed = float(np.mean(rule.pvalues({"x": x})[0] < ALPHA))
    p1 = rule.pvalues({"x": x[:, :12]})[0]
    p2 = rule.pvalues({"x": x[:, 12:]})[0]
    two = float(np.mean(design.crossed(p1, p2)))
    assert two >= fixed - 0.03
    assert 0.1 < float(np.mean(design.crossed(p1))) < 0.9
