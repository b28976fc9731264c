"""Two looks at a claim: α spent over two stages of units, stage-wise p-values combined.

A fixed design spends as many units on a claim decided at p ≈ 1e-300 as on one at the edge. A two-stage design
trains ``first`` units, decides what it can, and trains up to ``maximum`` only where the answer is open and
reachable. This module is its statistics; which instances continue is the caller's (the family, the plan).

Construction (all fixed by the profile before the run):

* **Stage-wise p-values, inverse-normal combination** (Lehmacher & Wassmer 1999). Look 1 reads the ``first``
  units; look 2 reads the ``maximum − first`` new units *alone* (its own p-value from the same rule). Under a
  rule's null each stage's p is uniform, or stochastically larger for the intersection–union and Holm
  combinators, and the two are independent, so ``Z1 = Φ⁻¹(1 − p1)`` and
  ``Z2 = w1·Z1 + w2·Φ⁻¹(1 − p2)`` with the pre-set weights ``w1 = √t``, ``w2 = √(1 − t)``
  (``t = first / maximum``) are standard bivariate normal with correlation √t, or below it: exact for a t-test
  with two units a stage, no large-sample approximation, whatever the rule.
* **α spending** (Lan & DeMets 1983): O'Brien–Fleming-type ``α(t) = 2 − 2Φ(Φ⁻¹(1 − α/2)/√t)`` (default: little
  α at the first look, the last look's boundary near the fixed design's) or Pocock-type
  ``α(t) = α·ln(1 + (e − 1)t)``. The boundaries solve ``P(Z1 ≥ c1) = α(t)`` and
  ``P(Z1 < c1, Z2 ≥ c2) = α − α(t)``.
* **Stopping for futility is non-binding**: the boundaries ignore it, so an instance stopped at look 1 for
  low conditional power (or continued, because its units were trained for another instance) keeps type I ≤ α.
* **Repeated p-values** (the smallest α whose boundaries the looks seen so far cross) are valid p-values
  whatever the stopping rule, so Holm over a family and the verdict rule ``p < α`` apply to them unchanged;
  ``p ≤ α`` exactly when the level-α boundaries were crossed. They are computed per elementary one-sided test
  of a rule (:meth:`analysis.stats.rules.Rule.components`) and then combined as the rule combines fixed
  p-values (TOST, intersection–union, Holm over settings), so each form keeps its fixed design's size.
* **Conditional power** at the effect of interest: stage-2 components simulated with the maximum's new units
  (:meth:`analysis.stats.power.PowerModel.simulated_components`, the covariance look 1 measured) combined with
  look 1's.
* **Intervals, stage-wise adjusted**: the look's nominal level ``1 − Φ(c_k)`` replaces α (a repeated
  confidence interval, Jennison & Turnbull 1989), so the interval shown at the look that stopped keeps its
  coverage over both looks.

Written here, small, because no maintained Python package implements Lan–DeMets boundaries (R's gsDesign,
rpact and ldbounds do; ``tests/test_sequential.py`` checks the boundaries against gsDesign's published values).
Two looks need one bivariate normal probability, an integral of one variable (``scipy.integrate.quad``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, interpolate, optimize, stats
from scipy.special import ndtr, ndtri

from analysis._validation import check_choice, check_in_range, invalid

__all__ = ["SPENDING", "TwoStage", "spent"]

#: α spending functions ``(t, α) -> α(t)``, by the name a profile gives.
SPENDING = {
    "obrien-fleming": lambda t, a: 2.0 - 2.0 * float(ndtr(ndtri(1.0 - a / 2.0) / math.sqrt(t))),
    "pocock": lambda t, a: a * math.log(1.0 + (math.e - 1.0) * t),
}
_NAMES = {"obrien-fleming": "O'Brien–Fleming", "pocock": "Pocock"}


def spent(t: float, alpha: float, spending: str = "obrien-fleming") -> float:
    """α spent by information fraction ``t`` (0 < t ≤ 1) of a one-sided level-``alpha`` design."""
    check_choice("spending", "spent", spending, tuple(SPENDING))
    check_in_range("t", "spent", t, 0.0, 1.0)
    return min(alpha, SPENDING[spending](t, alpha)) if t < 1 else alpha


def _z(p) -> np.ndarray:
    """Φ⁻¹(1 − p): a one-sided p as a z (p = 0 → +∞, p = 1 → −∞; NaN passes through)."""
    return ndtri(1.0 - np.clip(np.asarray(p, dtype=float), 0.0, 1.0))


def _tail_beyond_first(c1: float, c2: float, rho: float) -> float:
    """``P(Z1 < c1, Z2 ≥ c2)`` for standard bivariate normal (Z1, Z2) with correlation ``rho`` (0 < rho < 1)."""
    s = math.sqrt(1.0 - rho * rho)

    def density(z1: float) -> float:
        return math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi) * float(ndtr((rho * z1 - c2) / s))

    value, _ = integrate.quad(density, -np.inf, c1, epsabs=1e-13, epsrel=1e-11, limit=200)
    return value


@functools.lru_cache(maxsize=4096)
def _bounds(t: float, alpha: float, spending: str) -> tuple[float, float]:
    a1 = spent(t, alpha, spending)
    c1 = float(ndtri(1.0 - a1))
    rest = alpha - a1
    rho = math.sqrt(t)
    # P(Z1 < c1, Z2 ≥ c2) falls from P(Z1 < c1) (c2 → −∞) to 0 (c2 → +∞): one root.
    c2 = optimize.brentq(lambda c: _tail_beyond_first(c1, c, rho) - rest, -10.0, 40.0, xtol=1e-12)
    return c1, float(c2)


@dataclass(frozen=True)
class TwoStage:
    """A two-look design: ``first`` units at look 1, ``maximum`` in all (see the module docstring).

    ``continue_at``: the conditional power at the effect of interest, with the maximum's units, that an open
    instance needs to get its stage-2 units (below it, it stops inconclusive with the units it would need).
    """

    first: int
    maximum: int
    alpha: float = 0.05
    spending: str = "obrien-fleming"
    continue_at: float = 0.5

    def __post_init__(self) -> None:
        for name in ("first", "maximum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise invalid(name, "TwoStage", "a number of units >= 2", value)
        if self.maximum <= self.first:
            raise invalid("maximum", "TwoStage", f"more units than the first stage's {self.first}", self.maximum)
        check_in_range("alpha", "TwoStage", self.alpha, 0.0, 0.5)
        check_choice("spending", "TwoStage", self.spending, tuple(SPENDING))
        check_in_range("continue_at", "TwoStage", self.continue_at, 0.0, 1.0)

    @property
    def fraction(self) -> float:
        """Information fraction at look 1: ``first / maximum`` (units are the information)."""
        return self.first / self.maximum

    @property
    def weights(self) -> tuple[float, float]:
        return math.sqrt(self.fraction), math.sqrt(1.0 - self.fraction)

    @property
    def added(self) -> int:
        """Units stage 2 adds."""
        return self.maximum - self.first

    def bounds(self, alpha: float | None = None) -> tuple[float, float]:
        """The z boundaries ``(c1, c2)`` of a one-sided level-``alpha`` test (default: the design's α)."""
        a = self.alpha if alpha is None else alpha
        check_in_range("alpha", "TwoStage.bounds", a, 0.0, 1.0)
        return _bounds(self.fraction, float(a), self.spending)

    def nominal(self, alpha: float | None = None) -> tuple[float, float]:
        """Each look's nominal one-sided level ``1 − Φ(c_k)``: a look's p below it crosses its boundary."""
        c1, c2 = self.bounds(alpha)
        return float(1.0 - ndtr(c1)), float(1.0 - ndtr(c2))

    def interval(self, estimate: float, se: float, df: float, stage: int) -> tuple[float, float]:
        """The repeated confidence interval at look ``stage`` (Jennison & Turnbull 1989): the units seen so far
        pooled, the t quantile at the look's nominal level instead of α; its ends are the bounds a one-sided
        test at that look uses, and its coverage holds over both looks."""
        if stage not in (1, 2):
            raise invalid("stage", "TwoStage.interval", "look 1 or 2", stage)
        if not (math.isfinite(se) and math.isfinite(df)):
            return (float("nan"), float("nan"))
        level = self.nominal()[stage - 1]
        q = float(stats.t.ppf(1.0 - level, df)) if se > 0 else 0.0
        return (float(estimate - q * se), float(estimate + q * se))

    def describe(self) -> str:
        c1, c2 = self.bounds()
        n1, n2 = self.nominal()
        return (f"two-stage design, {self.first} then up to {self.maximum} units; α = {self.alpha:g} spent "
                f"{_NAMES[self.spending]}-type (Lan–DeMets) over the looks at t = {self.fraction:.3g} and 1: "
                f"z ≥ {c1:.3f} (nominal p < {n1:.3g}) at look 1, combined z ≥ {c2:.3f} (nominal {n2:.3g}) at look 2; "
                f"stage-wise p-values combined by the inverse normal method (weights √t, √(1 − t)); stopping "
                f"for futility (conditional power < {self.continue_at:g}) non-binding")

    def combined(self, p1, p2) -> np.ndarray:
        """Look 2's z from the two stages' own p-values (vectorised)."""
        w1, w2 = self.weights
        with np.errstate(invalid="ignore"):
            return w1 * _z(p1) + w2 * _z(p2)

    def crossed(self, p1, p2=None, alpha: float | None = None) -> np.ndarray:
        """Whether the level-``alpha`` boundaries are crossed by look 1 (``p2`` None or NaN) or by look 2."""
        c1, c2 = self.bounds(alpha)
        z1 = _z(p1)
        hit = np.where(np.isnan(z1), False, z1 >= c1)
        if p2 is None:
            return hit
        z2 = self.combined(p1, p2)
        return hit | np.where(np.isnan(z2), False, z2 >= c2)

    def repeated_p(self, p1, p2=None) -> np.ndarray | float:
        """The smallest α whose boundaries the looks seen cross: a valid p-value (vectorised).

        ``p2`` None or NaN: only look 1 was seen; ``p1`` NaN: no p (NaN). ``repeated_p ≤ a`` exactly when the
        level-``a`` boundaries are crossed, up to the interpolation of look 2's boundary (relative 1e-5 in a).
        Look 2's value is floored at 1e-12 (as small as the spending resolves) and capped at 1.
        """
        p1a = np.asarray(p1, dtype=float)
        best = self._first_look_p(p1a)
        if p2 is not None:
            p2a = np.asarray(p2, dtype=float)
            second = self._second_look_p(self.combined(p1a, p2a))
            best = np.where(np.isnan(p2a) | np.isnan(best), best, np.fmin(best, second))
        return float(best) if np.ndim(best) == 0 else best

    def _first_look_p(self, p1: np.ndarray) -> np.ndarray:
        # α(t; a) = p1 solved for a, in closed form for both spending functions.
        t = self.fraction
        with np.errstate(invalid="ignore"):
            if self.spending == "obrien-fleming":
                a = 2.0 * (1.0 - ndtr(math.sqrt(t) * ndtri(1.0 - np.clip(p1, 0.0, 1.0) / 2.0)))
            else:
                a = p1 / math.log(1.0 + (math.e - 1.0) * t)
        return np.where(np.isnan(p1), np.nan, np.clip(a, 0.0, 1.0))

    def _second_look_p(self, z2: np.ndarray) -> np.ndarray:
        # c2(a) falls with a: the a with c2(a) = z2, read off a table of c2 at log-spaced a (monotone cubic).
        _, c2 = _look_two_table(self.fraction, self.spending)
        with np.errstate(invalid="ignore"):
            inside = 10.0 ** _look_two_spline(self.fraction, self.spending)(np.clip(-z2, -c2[0], -c2[-1]))
        out = np.where(z2 > c2[0], _FLOOR, np.where(z2 < c2[-1], 1.0, inside))
        return np.where(np.isnan(z2), np.nan, out)

    def pvalues(self, rule, first, second=None) -> tuple[np.ndarray, np.ndarray]:
        """A rule's ``(p_support, p_refute)`` over the two looks: each elementary test's repeated p-value
        (:meth:`~analysis.stats.rules.Rule.components`, look 1 on ``first``'s units, look 2 on ``second``'s new
        units alone), then the rule's own combination (:meth:`~analysis.stats.rules.Rule.assemble`).

        ``second`` None: stopped at look 1. Columns may carry leading axes (simulations); a NaN component of
        look 2 counts as not seen.
        """
        ones = rule.components(first)
        if second is None:
            return rule.assemble({k: self.repeated_p(v) for k, v in ones.items()})
        twos = rule.components(second)
        return rule.assemble({k: self.repeated_p(v, twos[k]) for k, v in ones.items()})

    def conditional_power(self, rule, first, stage2: dict, level: float | None = None) -> float:
        """P(supported at look 2 | look 1's data ``first``) at ``level`` (default α), with ``stage2`` the rule's
        components simulated under the effect of interest with :attr:`added` units
        (:meth:`analysis.stats.power.PowerModel.simulated_components`). 1 when look 1 is already supported;
        NaN when look 1 has no p."""
        level = self.alpha if level is None else level
        support, _ = self.pvalues(rule, first)
        if np.isnan(support):
            return float("nan")
        if support < level:
            return 1.0
        ones = rule.components(first)
        seq = {k: self.repeated_p(np.broadcast_to(v, np.shape(stage2[k])), stage2[k]) for k, v in ones.items()}
        p_support, _ = rule.assemble(seq)
        return float(np.mean(np.asarray(p_support) < level))


_FLOOR = 1e-12
_TABLE_LEVELS = np.logspace(-12, math.log10(0.999), 241)


@functools.lru_cache(maxsize=64)
def _look_two_table(t: float, spending: str) -> tuple[np.ndarray, np.ndarray]:
    """Look 2's boundary c2(a) at :data:`_TABLE_LEVELS` (falling in a)."""
    return _TABLE_LEVELS, np.array([_bounds(t, float(a), spending)[1] for a in _TABLE_LEVELS])


@functools.lru_cache(maxsize=64)
def _look_two_spline(t: float, spending: str):
    """log10 a as a monotone cubic (PCHIP) of −c2: smooth over the table, exact at its points."""
    levels, c2 = _look_two_table(t, spending)
    return interpolate.PchipInterpolator(-c2, np.log10(levels))
