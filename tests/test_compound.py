"""Intersection–union combination of component tests (analysis.compound.all_of)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._validation import InvalidParameterError
from analysis.compound import all_of
from analysis.stats import directional_test

STRONG = [5.0, 5.1, 4.9, 5.2, 5.0, 5.05]
WEAK = [0.1, -0.2, 0.3, 0.0, 0.2, -0.1]
NEG = [-5.0, -5.1, -4.9, -5.2, -5.0, -5.05]


def test_support_is_the_largest_component_p_and_needs_every_component():
    a, b = directional_test(STRONG, None), directional_test(WEAK, None)
    r = all_of({"a": a, "b": b})
    assert r.p_support == max(a.p_support, b.p_support)
    assert r.p_support >= 0.05  # one weak component: the conjunction is not supported
    assert all_of({"a": a, "a2": directional_test(STRONG, None)}).p_support < 0.05


def test_refutation_is_bonferroni_over_the_components_that_can_refute():
    a, c = directional_test(STRONG, None), directional_test(NEG, None)
    r = all_of({"a": a, "c": c})
    assert r.p_refute == pytest.approx(min(1.0, 2 * min(a.p_refute, c.p_refute)))
    only_a = all_of({"a": a, "c": c}, refute_on=("a",))
    assert only_a.p_refute == pytest.approx(a.p_refute)  # c's refutation does not count


def test_first_component_gives_effect_and_all_are_kept_in_details():
    a, b = directional_test(STRONG, None), directional_test(WEAK, None)
    r = all_of({"a": a, "b": b})
    assert (r.effect, r.ci, r.n) == (a.effect, a.ci, a.n)
    assert set(r.details["components"]) == {"a", "b"}
    assert r.test.startswith("all of: a (")


def test_design_can_reach_alpha_only_if_every_component_can():
    r = all_of({"ok": directional_test(STRONG, None), "one seed": directional_test([1.0], None)})
    assert r.design.can_reach_alpha is False


@settings(max_examples=30)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=8), st.lists(st.floats(-3, 3), min_size=3, max_size=8))
def test_conjunction_is_never_easier_to_support_than_a_component(x, y):
    x = [v + 0.01 * i for i, v in enumerate(x)]  # avoid zero variance
    y = [v + 0.01 * i for i, v in enumerate(y)]
    a, b = directional_test(x, None), directional_test(y, None)
    r = all_of({"a": a, "b": b})
    assert r.p_support >= a.p_support and r.p_support >= b.p_support


def test_bad_input_names_the_parameter():
    with pytest.raises(InvalidParameterError, match="'results'"):
        all_of({})
    with pytest.raises(InvalidParameterError, match="'refute_on'"):
        all_of({"a": directional_test(STRONG, None)}, refute_on=("zzz",))
