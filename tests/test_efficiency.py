"""Tests for analysis.measure.efficiency: PE, the breakpoint rules and their parser, iso-accuracy counts.

Every curve is hand-made with its answer worked out in the comment beside it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from analysis._validation import InvalidParameterError
from analysis.measure.efficiency import (
    DEFAULT_BREAKPOINT_RULE,
    BreakpointRule,
    find_breakpoint,
    log_pe,
    normalized_efficiency,
    parameters_at_accuracy,
    parse_breakpoint_rule,
    performance_efficiency,
)

LEVELS5 = [0.0, 0.1, 0.2, 0.3, 0.4]
TENTHS5 = [100.0, 90.0, 81.0, 72.9, 65.61]  # each step removes 10 % of what is left


# --------------------------------------------------------------------------- PE


def test_pe_is_accuracy_over_parameters_vectorised():
    acc = np.array([[90.0, 80.0], [60.0, 30.0]])
    params = np.array([[100.0, 50.0], [10.0, 5.0]])
    np.testing.assert_allclose(performance_efficiency(acc, params), [[0.9, 1.6], [6.0, 6.0]])
    assert performance_efficiency(50.0, 4.0) == pytest.approx(12.5)
    np.testing.assert_allclose(performance_efficiency([90.0, 45.0], 9.0), [10.0, 5.0])  # broadcasting


def test_log_pe_is_the_log_and_a_difference_is_a_log_ratio():
    acc, params = np.array([90.0, 80.0, 0.0]), np.array([100.0, 50.0, 10.0])
    out = log_pe(acc, params)
    np.testing.assert_allclose(out[:2], np.log([0.9, 1.6]))
    assert out[2] == -math.inf  # accuracy 0
    assert out[1] - out[0] == pytest.approx(math.log(1.6 / 0.9))


def test_log_pe_differences_do_not_depend_on_units():
    a, b = log_pe([70.0, 60.0], [2e6, 5e5])
    a7, b7 = log_pe([70.0, 60.0], [0.2, 0.05])  # parameters in units of 10^7
    assert a - b == pytest.approx(a7 - b7)


def test_normalized_efficiency_is_retained_accuracy_over_retained_parameters():
    acc = np.array([[80.0, 76.0, 40.0], [50.0, 50.0, 25.0]])
    params = np.array([[1000.0, 500.0, 100.0], [10.0, 5.0, 5.0]])
    expected = [[1.0, (76 / 80) / 0.5, 0.5 / 0.1], [1.0, 2.0, 1.0]]
    np.testing.assert_allclose(normalized_efficiency(acc, params), expected)


@pytest.mark.parametrize("acc, params, bad", [
    ([90.0], [0.0], "0.0"),
    ([90.0], [-5.0], "-5.0"),
    ([90.0], [math.nan], "nan"),
    ([101.0], [5.0], "101.0"),
    ([-1.0], [5.0], "-1.0"),
])
def test_pe_rejects_bad_values_naming_them(acc, params, bad):
    with pytest.raises(InvalidParameterError, match=f"Got {bad} instead"):
        performance_efficiency(acc, params)


def test_normalized_efficiency_needs_a_positive_unpruned_accuracy():
    with pytest.raises(InvalidParameterError, match="unpruned"):
        normalized_efficiency([0.0, 10.0], [10.0, 5.0])


# --------------------------------------------------------------------------- rule parser


@pytest.mark.parametrize("text, kind, threshold", [
    ("drop<=1", "drop", 1.0),
    ("drop <= 0.5", "drop", 0.5),
    ("  drop<=2.5 ", "drop", 2.5),
    ("slope>e", "slope", math.e),
    ("slope>2.5", "slope", 2.5),
    ("slope > 1e-1", "slope", 0.1),
])
def test_parser_accepts_the_two_forms(text, kind, threshold):
    rule = parse_breakpoint_rule(text)
    assert (rule.kind, rule.threshold, rule.text) == (kind, pytest.approx(threshold), text)


def test_default_rule_is_a_one_point_drop():
    assert parse_breakpoint_rule(DEFAULT_BREAKPOINT_RULE) == BreakpointRule("drop", 1.0, "drop<=1")


@pytest.mark.parametrize("text", [
    "drop<1", "drop>=1", "slope>=2", "slope<2", "Drop<=1", "drop", "", "drop<=", "drop<=0", "drop<=-1",
    "slope>0", "slope>inf", "slope>nan", "drop<=e", "slope>x", "drop<=1 slope>e", None, 1.0,
])
def test_parser_rejects_anything_else_naming_the_text_and_the_forms(text):
    with pytest.raises(InvalidParameterError) as err:
        parse_breakpoint_rule(text)
    message = str(err.value)
    assert f"Got {text!r} instead" in message
    assert "'drop<=x'" in message and "'slope>f'" in message


# --------------------------------------------------------------------------- breakpoint: drop


@pytest.mark.parametrize("accuracy, rule, index", [
    ([80.0, 79.5, 79.3, 78.0, 70.0], "drop<=1", 2),    # 79.3 is 0.7 below, 78.0 is 2.0 below
    ([80.0, 79.5, 79.3, 78.0, 70.0], "drop<=2.5", 3),  # 78.0 is within 2.5
    ([80.3, 79.8, 79.3, 78.0, 70.0], "drop<=1", 2),    # exactly 1 point below counts (80.3 - 79.3 in floats)
    ([80.0, 80.2, 79.9, 79.5, 79.1], "drop<=1", 4),    # no significant drop: the highest level
    ([80.0, 78.0, 77.0, 60.0, 50.0], "drop<=1", 0),    # drop at the first step: the unpruned model
    ([80.0, 78.0, 79.5, 70.0, 60.0], "drop<=1", 2),    # the highest level within, past a dip
])
def test_drop_rule_on_hand_made_curves(accuracy, rule, index):
    bp = find_breakpoint(LEVELS5, accuracy, TENTHS5, rule)
    assert bp.index == index
    assert bp.level == LEVELS5[index]
    assert bp.rule.text == rule


def test_default_rule_is_used_when_none_is_given():
    assert find_breakpoint(LEVELS5, [80.0, 79.5, 79.3, 78.0, 70.0], TENTHS5).index == 2


def test_a_single_unpruned_level_is_its_own_breakpoint():
    assert find_breakpoint([0.0], [75.0], [10.0], "slope>e").index == 0


# --------------------------------------------------------------------------- breakpoint: slope


@pytest.mark.parametrize("accuracy, parameters, rule, index", [
    # every step removes 10 % of the parameters: a step breaks at a relative accuracy loss > 0.1 e = 0.272;
    # 80 -> 79 -> 78 lose 1.25 % and 1.27 %, 78 -> 50 loses 35.9 %: the step 2 -> 3 breaks, bp = level 2
    ([80.0, 79.0, 78.0, 50.0, 40.0], TENTHS5, "slope>e", 2),
    # no step loses more than 0.272 relatively: the highest level
    ([80.0, 70.0, 60.0, 50.0, 40.0], TENTHS5, "slope>e", 4),  # the worst step, 50 -> 40, loses 0.2
    # the first step breaks: 80 -> 50 loses 0.375 > 0.272: the unpruned model
    ([80.0, 50.0, 49.0, 48.0, 47.0], TENTHS5, "slope>e", 0),
    # halving the parameters: 80 -> 60 loses 0.25 of accuracy for 0.5 of parameters
    ([80.0, 60.0, 59.0], [100.0, 50.0, 25.0], "slope>2.5", 2),  # 0.25 < 2.5 * 0.5
    ([80.0, 60.0, 59.0], [100.0, 50.0, 25.0], "slope>0.4", 0),  # 0.25 > 0.4 * 0.5
    # a step that removes no parameters breaks on any accuracy loss (channel floor reached)
    ([80.0, 79.9, 79.8], [100.0, 90.0, 90.0], "slope>e", 1),
    ([80.0, 79.9, 79.9], [100.0, 90.0, 90.0], "slope>e", 2),  # ... but not without one
])
def test_slope_rule_on_hand_made_curves(accuracy, parameters, rule, index):
    levels = LEVELS5[: len(accuracy)]
    assert find_breakpoint(levels, accuracy, parameters, rule).index == index


def test_the_two_rules_can_disagree_on_one_curve():
    acc = [80.0, 79.0, 78.0, 50.0, 40.0]
    assert find_breakpoint(LEVELS5, acc, TENTHS5, "drop<=1").index == 1   # 78 is 2 points below
    assert find_breakpoint(LEVELS5, acc, TENTHS5, "slope>e").index == 2


@pytest.mark.parametrize("rule", ["drop<=1", "slope>e"])
def test_breakpoint_does_not_depend_on_parameter_units(rule):
    acc = [80.0, 79.0, 78.0, 50.0, 40.0]
    a = find_breakpoint(LEVELS5, acc, TENTHS5, rule)
    b = find_breakpoint(LEVELS5, acc, [p * 1e5 for p in TENTHS5], parse_breakpoint_rule(rule))
    assert a == b


# --------------------------------------------------------------------------- breakpoint: bad curves


@pytest.mark.parametrize("levels, message", [
    ([0.1, 0.2, 0.3], "starting at 0 .* Got 0.1 instead"),
    ([0.0, 0.2, 0.2], "strictly increasing levels; it follows 0.2. Got 0.2 instead"),
    ([0.0, 0.3, 0.2], "strictly increasing levels; it follows 0.3. Got 0.2 instead"),
    ([0.0, 0.5, 1.0], r"in \[0, 1\). Got 1.0 instead"),
    ([0.0, -0.1, 0.2], r"in \[0, 1\). Got -0.1 instead"),
    ([0.0, 10.0, 20.0], r"in \[0, 1\). Got 10.0 instead"),  # percent, not fractions
    ([0.0, math.nan, 0.2], r"in \[0, 1\). Got nan instead"),
])
def test_bad_levels_are_named(levels, message):
    with pytest.raises(InvalidParameterError, match=message):
        find_breakpoint(levels, [80.0, 79.0, 78.0], [100.0, 90.0, 80.0])


def test_bad_curves_are_named():
    lv = [0.0, 0.1, 0.2]
    with pytest.raises(InvalidParameterError, match=r"one value per level \(3\)"):
        find_breakpoint(lv, [80.0, 79.0], [100.0, 90.0, 80.0])
    with pytest.raises(InvalidParameterError, match="non-increasing .* it follows 90.0. Got 95.0 instead"):
        find_breakpoint(lv, [80.0, 79.0, 78.0], [100.0, 90.0, 95.0])
    with pytest.raises(InvalidParameterError, match="not a fraction.* Got 0.8 instead"):
        find_breakpoint(lv, [0.8, 0.79, 0.78], [100.0, 90.0, 80.0])
    with pytest.raises(InvalidParameterError, match="'rule'.*Got 'drop<1' instead"):
        find_breakpoint(lv, [80.0, 79.0, 78.0], [100.0, 90.0, 80.0], "drop<1")
    with pytest.raises(InvalidParameterError, match="non-empty"):
        find_breakpoint([], [], [])


# --------------------------------------------------------------------------- iso-accuracy


@pytest.mark.parametrize("target, expected", [
    (75.0, math.sqrt(1000.0 * 100.0)),  # half-way in accuracy = half-way in log parameters
    (72.5, 10 ** 2.25),
    (70.0, 100.0),                      # a level's own accuracy: its count
    (80.0, 1000.0),
    (60.0, 10.0),
    (85.0, math.nan),                   # above the curve: never reached
    (55.0, math.nan),                   # below the sparsest level: no extrapolation
])
def test_parameters_at_accuracy_known_answers(target, expected):
    out = parameters_at_accuracy([80.0, 70.0, 60.0], [1000.0, 100.0, 10.0], target)
    if math.isnan(expected):
        assert math.isnan(out)
    else:
        assert out == pytest.approx(expected)


def test_parameters_at_accuracy_takes_the_fewest_parameters_on_a_non_monotone_curve():
    acc, params = [80.0, 70.0, 75.0, 60.0], [1000.0, 100.0, 10.0, 1.0]
    # 72 is crossed between 80 and 70 and again between 75 and 60: the later crossing,
    # t = (75 - 72) / 15 = 0.2 of the way from 10 to 1 in log10 -> 10 ** 0.8
    assert parameters_at_accuracy(acc, params, 72.0) == pytest.approx(10 ** 0.8)
    # a curve that recovers above the target at its sparsest level never falls to it: censored
    assert math.isnan(parameters_at_accuracy([80.0, 70.0, 75.0], [1000.0, 100.0, 10.0], 72.0))


def test_parameters_at_accuracy_scales_with_the_parameter_unit():
    acc, params = [80.0, 71.0, 60.0], [900.0, 120.0, 10.0]
    base = parameters_at_accuracy(acc, params, 66.0)
    assert parameters_at_accuracy(acc, [p * 1e-7 for p in params], 66.0) == pytest.approx(base * 1e-7)
    assert 10.0 < base < 120.0


def test_parameters_at_accuracy_reproduces_a_breakpoint_count():
    # MH-2 interpolates at the lower of two breakpoint accuracies; on its own curve that is the level's count
    acc, params = [80.0, 79.5, 79.3, 78.0, 70.0], TENTHS5
    bp = find_breakpoint(LEVELS5, acc, params)
    assert parameters_at_accuracy(acc, params, acc[bp.index]) == pytest.approx(params[bp.index])


def test_parameters_at_accuracy_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="one count per accuracy"):
        parameters_at_accuracy([80.0, 70.0], [10.0], 75.0)
    with pytest.raises(InvalidParameterError, match="non-increasing"):
        parameters_at_accuracy([80.0, 70.0], [10.0, 20.0], 75.0)
    with pytest.raises(InvalidParameterError, match="'target_accuracy'.*Got nan instead"):
        parameters_at_accuracy([80.0, 70.0], [20.0, 10.0], math.nan)
    with pytest.raises(InvalidParameterError, match="'target_accuracy'.*Got '75' instead"):
        parameters_at_accuracy([80.0, 70.0], [20.0, 10.0], "75")
