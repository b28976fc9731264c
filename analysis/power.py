"""Power of a claim's design as run, and its minimum detectable effect, by simulation.

CLAIMS.md: "The report gives the power of the design as run (test, n units,
Holm family, combination rule, SD measured in the run) at that effect, and
the minimum detectable effect at 80 % power." A closed formula exists for a
single t-test but not for intersection–union or existential combinations of
correlated parts, so every design is simulated the same way:

* per group of units, the per-unit values of every column are drawn from a
  multivariate normal with the **covariance measured in the run** (so the
  parts of a compound claim keep their correlation) and the **means the
  rule's effect of interest implies** (a directional part at δ in the claimed
  direction, a non-inferiority or equivalence part at its reference: no
  difference);
* the rule decides every simulated data set at level α/m (Holm's first step
  for a family of m instances, so the figure is conservative for the other
  steps);
* power = the share supported. The minimum detectable effect is the factor
  c on every effect of interest (on every margin, for equivalence and
  non-inferiority) at which power reaches 80 %, by bisection on common random
  numbers (the same draws for every c, so power is monotone in c).

The normal model is an approximation for bounded or tied per-unit values
(Kendall τ, interpolated thresholds); the report says the figure is simulated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_in_range, invalid
from .rules import Rule
from .units import UnitTable, column_key

__all__ = ["PowerModel", "TARGET_POWER"]

TARGET_POWER = 0.8
_MAX_FACTOR = 64.0  # beyond 64 × the effect of interest the MDE is reported as "none found"


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """A with A·Aᵀ = cov for a symmetric positive semi-definite cov (singular allowed)."""
    values, vectors = np.linalg.eigh(cov)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


@dataclass
class _Group:
    group: str | None
    columns: list[str]
    mean: np.ndarray  # (k,)
    root: np.ndarray  # (k, k)
    draws: np.ndarray  # (sims, n, k) standard normal


class PowerModel:
    """Simulated replicates of one instance's design (see the module docstring).

    Parameters
    ----------
    table : UnitTable
        The measured per-unit values (their covariance and unit counts).
    rule : Rule
        The instance's decision rule.
    simulations : int
        Simulated data sets per power evaluation.
    seed : int
        Seed of the draws (the result is deterministic).
    """

    def __init__(self, table: UnitTable, rule: Rule, *, simulations: int = 2000, seed: int = 0):
        if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations < 10:
            raise invalid("simulations", "PowerModel", "an int >= 10", simulations)
        self.rule, self.simulations = rule, simulations
        self._data = table.data()
        rng = np.random.default_rng(seed)
        self._groups = []
        for g in table.groups:
            cols, mat = table.matrix(g)
            n, k = mat.shape
            cov = np.cov(mat, rowvar=False, ddof=1).reshape(k, k) if n >= 2 else np.zeros((k, k))
            self._groups.append(_Group(g, cols, mat.mean(axis=0), _sqrt_psd(cov), rng.standard_normal((simulations, n, k))))

    def sd(self) -> dict[str, float]:
        """Measured SD of every column the rule reads (the spread the simulation uses)."""
        out = {}
        for grp in self._groups:
            cov = grp.root @ grp.root.T
            for j, c in enumerate(grp.columns):
                key = column_key(c, grp.group)
                if key in self.rule.keys():
                    out[key] = float(np.sqrt(max(cov[j, j], 0.0)))
        return out

    def pvalues(self, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Simulated ``(p_support, p_refute)`` with the effects of interest × ``factor``."""
        means = self.rule.means_under_effect(self._data, factor)
        data = {}
        for grp in self._groups:
            mu = grp.mean.copy()
            for j, c in enumerate(grp.columns):
                key = column_key(c, grp.group)
                if key in means:
                    mu[j] = means[key]
            sims = mu + grp.draws @ grp.root.T
            for j, c in enumerate(grp.columns):
                data[column_key(c, grp.group)] = sims[..., j]
        return self.rule.scaled(factor).pvalues(data)

    def power(self, level: float, factor: float = 1.0) -> float:
        """Share of simulated data sets supported at ``level`` (α/m)."""
        check_in_range("level", "PowerModel.power", level, 0.0, 1.0)
        p_support, _ = self.pvalues(factor)
        return float(np.mean(p_support < level))

    def can_decide(self, level: float) -> bool:
        """False when even an overwhelming effect cannot be supported (e.g. fewer than two units)."""
        return self.power(level, factor=1e3) > 0

    def mde_factor(self, level: float, target: float = TARGET_POWER, *, iterations: int = 14) -> float:
        """Smallest c with power(c) ≥ ``target`` (inf if none up to 64; nan if undecidable)."""
        if not self.can_decide(level):
            return float("nan")
        if self.power(level, _MAX_FACTOR) < target:
            return float("inf")
        low, high = 0.0, 1.0
        while self.power(level, high) < target:
            low, high = high, high * 2
        for _ in range(iterations):
            mid = (low + high) / 2
            if self.power(level, mid) >= target:
                high = mid
            else:
                low = mid
        return high
