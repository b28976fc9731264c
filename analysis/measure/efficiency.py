"""Performance efficiency, breakpoints and iso-accuracy parameter counts of pruning curves (MH paper).

A *pruning curve* is one model pruned at increasing levels: ``levels`` (the
fraction pruned, starting at 0 = unpruned, strictly increasing, in [0, 1)),
``accuracy`` in percent and ``parameters`` (the parameter count after pruning,
positive, non-increasing) at each level. Numbers and arrays in; nothing here
knows how the counts were made (coupled or non-zero counting is the caller's).

* :func:`performance_efficiency` — the paper's Eq. 2, PE = (ω1 · accuracy) /
  (ω2 · parameters) with ω1 = ω2 = 0.5 (§4.2): the weights cancel, so PE =
  accuracy / parameters. :func:`log_pe` is its log (the scale MH-1 and MH-5
  compare on).
* :func:`normalized_efficiency` — our reading of the unexplained "normalized
  efficiency score" of Figs. 3–4: each curve's PE divided by its own unpruned
  PE, i.e. (retained accuracy fraction) / (retained parameter fraction); 1 at
  the unpruned model.
* :func:`parse_breakpoint_rule` / :func:`find_breakpoint` — the declared
  breakpoint rules (the paper has none: "where accuracy drops significantly
  faster relative to parameter reduction", §4.1). ``"drop<=x"``: the highest
  level whose accuracy is at most x points below the unpruned model's (the
  default, x = 1). ``"slope>f"``: the last level before the first step whose
  relative accuracy loss exceeds f × its relative parameter loss (f = ``e``
  in CLAIMS.md). The same rule serves weight and channel pruning.
* :func:`parameters_at_accuracy` — the iso-accuracy parameter count of MH-2,
  interpolated linearly in log(parameters) against accuracy.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from analysis._validation import invalid

__all__ = [
    "BREAKPOINT_RULE_FORMS",
    "DEFAULT_BREAKPOINT_RULE",
    "Breakpoint",
    "BreakpointRule",
    "find_breakpoint",
    "log_pe",
    "normalized_efficiency",
    "parameters_at_accuracy",
    "parse_breakpoint_rule",
    "performance_efficiency",
]

DEFAULT_BREAKPOINT_RULE = "drop<=1"
#: The accepted rule texts, as error messages name them.
BREAKPOINT_RULE_FORMS = "'drop<=x' (x > 0 accuracy points) or 'slope>f' (f > 0, or 'e')"

# Ties at a threshold count as within it: 80.3 - 79.3 is 1.0000000000000142 in floating point.
_TOL = 1e-9


# --------------------------------------------------------------------------- performance efficiency


def _positive_array(param: str, owner: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise invalid(param, owner, "finite numbers > 0", arr[bad].flat[0].item())
    return arr


def _accuracy_array(param: str, owner: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 100)
    if bad.any():
        raise invalid(param, owner, "accuracies in percent, in [0, 100]", arr[bad].flat[0].item())
    return arr


def performance_efficiency(accuracy, parameters) -> np.ndarray:
    """PE = accuracy / parameters, element-wise (broadcasting).

    The paper's Eq. 2 is (ω1 · Accuracy) / (ω2 · Number of parameters after
    pruning) with ω1 = ω2 = 0.5 (§4.2); the weights cancel, so PE is the plain
    ratio. Its scale depends on the units (accuracy in %, parameters as a
    count); only ratios of PE (:func:`log_pe` differences) are unit-free.

    Parameters
    ----------
    accuracy : array_like
        Accuracy in percent, in [0, 100].
    parameters : array_like
        Parameter counts after pruning, > 0.

    Returns
    -------
    ndarray
        The broadcast shape of the inputs (a 0-d value for two scalars).
    """
    owner = "performance_efficiency"
    return _accuracy_array("accuracy", owner, accuracy) / _positive_array("parameters", owner, parameters)


def log_pe(accuracy, parameters) -> np.ndarray:
    """log PE = log(accuracy) − log(parameters), element-wise; −inf at accuracy 0.

    A difference of two log PEs is the log of their ratio, the scale of MH-1
    (δ = log 1.25) and MH-5 (δ = log 1.1).
    """
    owner = "log_pe"
    acc = _accuracy_array("accuracy", owner, accuracy)
    params = _positive_array("parameters", owner, parameters)
    with np.errstate(divide="ignore"):
        return np.log(acc) - np.log(params)


def normalized_efficiency(accuracy, parameters) -> np.ndarray:
    """Each curve's PE divided by its unpruned PE (the first entry along the last axis).

    Our reading of the paper's "normalized efficiency score" (Figs. 3–4), which
    it does not define: PE(l) / PE(0) = (acc(l) / acc(0)) / (params(l) /
    params(0)), the retained accuracy fraction over the retained parameter
    fraction. It is 1 at the unpruned model, unit-free, and comparable across
    models of different size; it exceeds 1 wherever accuracy falls
    proportionally less than parameters.

    Parameters
    ----------
    accuracy, parameters : array_like
        Curves along the last axis (shape ``(..., n_levels)``), the unpruned
        model first; the unpruned accuracy must be > 0.
    """
    owner = "normalized_efficiency"
    acc = _accuracy_array("accuracy", owner, accuracy)
    params = _positive_array("parameters", owner, parameters)
    if acc.ndim == 0 or params.ndim == 0:
        raise invalid("accuracy", owner, "curves along the last axis (at least 1-d)", accuracy)
    if (acc[..., 0] <= 0).any():
        raise invalid("accuracy", owner, "curves whose unpruned (first) accuracy is > 0", 0.0)
    pe = acc / params
    return pe / pe[..., :1]


# --------------------------------------------------------------------------- breakpoint rules


@dataclass(frozen=True)
class BreakpointRule:
    """A parsed breakpoint rule: ``kind`` 'drop' (threshold in points) or 'slope' (a factor)."""

    kind: str
    threshold: float
    text: str


_RULE = re.compile(r"^(drop)\s*<=\s*(\S+)$|^(slope)\s*>\s*(\S+)$")


def parse_breakpoint_rule(text: str) -> BreakpointRule:
    """Parse a rule text of a profile, before any training.

    Accepted forms (spaces around the operator are allowed): ``"drop<=x"``
    with x > 0 accuracy points, and ``"slope>f"`` with f > 0 or ``"e"``
    (Euler's number). Anything else raises, naming the text and the forms.
    """
    owner = "parse_breakpoint_rule"
    match = _RULE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise invalid("rule", owner, BREAKPOINT_RULE_FORMS, text)
    kind = match.group(1) or match.group(3)
    number = match.group(2) or match.group(4)
    if kind == "slope" and number == "e":
        value = math.e
    else:
        try:
            value = float(number)
        except ValueError:
            value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise invalid("rule", owner, f"{BREAKPOINT_RULE_FORMS}, with a finite number > 0", text)
    return BreakpointRule(kind=kind, threshold=value, text=text)


@dataclass(frozen=True)
class Breakpoint:
    """Where a pruning curve breaks: ``index`` into the curve and its ``level`` (fraction pruned)."""

    index: int
    level: float
    rule: BreakpointRule


def _curve(owner: str, levels, accuracy, parameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated 1-d float arrays of one pruning curve (module docstring)."""
    lv = np.asarray(levels, dtype=float)
    if lv.ndim != 1 or lv.size == 0:
        raise invalid("levels", owner, "a non-empty 1-d sequence of pruning levels", levels)
    for i, x in enumerate(lv):
        if not (math.isfinite(x) and 0.0 <= x < 1.0):
            raise invalid("levels", owner, "pruning levels in [0, 1)", float(x))
        if i == 0 and x != 0.0:
            raise invalid("levels", owner, "levels starting at 0 (the unpruned model)", float(x))
        if i and not x > lv[i - 1]:
            raise invalid("levels", owner, f"strictly increasing levels; it follows {float(lv[i - 1])!r}", float(x))
    acc = _accuracy_array("accuracy", owner, accuracy)
    params = _positive_array("parameters", owner, parameters)
    for name, arr in (("accuracy", acc), ("parameters", params)):
        if arr.shape != lv.shape:
            raise invalid(name, owner, f"one value per level ({lv.size})", arr.tolist())
    if acc[0] <= 1.0:
        raise invalid("accuracy", owner, "in percent: an unpruned accuracy > 1 (not a fraction)", float(acc[0]))
    for i in range(1, params.size):
        if params[i] > params[i - 1]:
            raise invalid(
                "parameters", owner,
                f"non-increasing parameter counts as pruning increases; it follows {float(params[i - 1])!r}",
                float(params[i]),
            )
    return lv, acc, params


def find_breakpoint(levels, accuracy, parameters, rule: str | BreakpointRule = DEFAULT_BREAKPOINT_RULE) -> Breakpoint:
    """The breakpoint of one pruning curve under ``rule`` (the same for weight and channel pruning).

    Parameters
    ----------
    levels : sequence of float
        Fractions pruned, starting at 0 (the unpruned model), strictly
        increasing, in [0, 1).
    accuracy : sequence of float
        Accuracy in percent at each level (the unpruned one > 1: a guard
        against fractions, for which a points threshold is meaningless).
    parameters : sequence of float
        Parameter counts after pruning, > 0, non-increasing (equal counts are
        allowed: channel pruning can reach its one-channel-per-group floor).
    rule : str or BreakpointRule
        ``"drop<=x"``: the highest level whose accuracy is at most x points
        below the unpruned accuracy — the highest such level, even if a lower
        level dipped further (fine-tuning noise). ``"slope>f"``: the first
        step i−1 → i with relative accuracy loss (a[i−1] − a[i]) / a[i−1]
        greater than f × its relative parameter loss (p[i−1] − p[i]) / p[i−1]
        breaks the curve, and the breakpoint is level i−1, the last level
        before that step (the parallel of "drop": the last level still fine).
        A step that removes no parameters breaks on any accuracy loss. With no
        such step, or no drop beyond x, the breakpoint is the highest level;
        with a break at the first step it is level 0 (the unpruned model).

    Returns
    -------
    Breakpoint
    """
    owner = "find_breakpoint"
    parsed = rule if isinstance(rule, BreakpointRule) else parse_breakpoint_rule(rule)
    lv, acc, params = _curve(owner, levels, accuracy, parameters)
    if parsed.kind == "drop":
        within = np.flatnonzero(acc[0] - acc <= parsed.threshold + _TOL)
        index = int(within[-1])  # never empty: the unpruned model is within
    else:
        index = lv.size - 1
        for i in range(1, lv.size):
            accuracy_loss = (acc[i - 1] - acc[i]) / acc[i - 1] if acc[i - 1] > 0 else 0.0
            parameter_loss = (params[i - 1] - params[i]) / params[i - 1]
            if accuracy_loss > parsed.threshold * parameter_loss + _TOL:
                index = i - 1
                break
    return Breakpoint(index=index, level=float(lv[index]), rule=parsed)


# --------------------------------------------------------------------------- iso-accuracy


def parameters_at_accuracy(accuracy_curve, parameter_curve, target_accuracy: float) -> float:
    """The fewest parameters at which a pruning curve still has ``target_accuracy`` (MH-2).

    The curve joins consecutive points (in pruning order) by straight lines in
    the plane (log parameters, accuracy), i.e. log(parameters) is linearly
    interpolated against accuracy within a segment. The answer is the point
    just before the curve falls below the target for the last time: after the
    last level with accuracy >= target, on the segment down to the next
    level. If the target equals a level's accuracy, that level's count.

    Returns NaN — no extrapolation — when the target is outside the curve:
    above every accuracy on it (never reached), or below the accuracy of its
    last (sparsest) level (the curve never falls to the target; the answer
    lies beyond the measured levels). The caller reports such a pair as
    censored.

    Parameters
    ----------
    accuracy_curve : sequence of float
        Accuracy in percent, in pruning order (unpruned first).
    parameter_curve : sequence of float
        Parameter counts, > 0, non-increasing, same length.
    target_accuracy : float
        Accuracy in percent.
    """
    owner = "parameters_at_accuracy"
    acc = _accuracy_array("accuracy_curve", owner, accuracy_curve)
    params = _positive_array("parameter_curve", owner, parameter_curve)
    if acc.ndim != 1 or acc.size == 0:
        raise invalid("accuracy_curve", owner, "a non-empty 1-d sequence", accuracy_curve)
    if params.shape != acc.shape:
        raise invalid("parameter_curve", owner, f"one count per accuracy ({acc.size})", params.tolist())
    if np.any(np.diff(params) > 0):
        raise invalid("parameter_curve", owner, "non-increasing parameter counts (pruning order)", params.tolist())
    if isinstance(target_accuracy, bool) or not isinstance(target_accuracy, (int, float, np.floating, np.integer)):
        raise invalid("target_accuracy", owner, "a finite number (percent)", target_accuracy)
    target = float(target_accuracy)
    if not math.isfinite(target):
        raise invalid("target_accuracy", owner, "a finite number (percent)", target_accuracy)
    reached = np.flatnonzero(acc >= target)
    if reached.size == 0:
        return math.nan
    last = int(reached[-1])
    if acc[last] == target:
        return float(params[last])
    if last == acc.size - 1:
        return math.nan
    a0, a1 = acc[last], acc[last + 1]  # a0 > target > a1
    t = (a0 - target) / (a0 - a1)
    log_p = math.log(params[last]) + t * (math.log(params[last + 1]) - math.log(params[last]))
    return float(math.exp(log_p))
