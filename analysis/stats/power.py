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
  numbers (the same draws for every c, so power is monotone in c);
* the **units needed** for 80 % power at the effect of interest: the same
  simulation with more (or fewer) units, every group scaled in proportion and
  the covariance kept as measured — the smallest total with power ≥ 0.8, found
  by a doubling search and bisection over whole units, up to
  :data:`MAX_UNITS`. Beside it a **power curve** (power at a grid of unit
  counts), which the findings baseline keeps so that ``--plan`` can predict a
  profile's power before anything is trained.

The normal model is an approximation for bounded or tied per-unit values
(Kendall τ, interpolated thresholds); the report says the figure is simulated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis._validation import check_in_range, invalid
from analysis.stats.rules import Rule
from analysis.stats.units import UnitTable, column_key

__all__ = ["MAX_UNITS", "PowerModel", "TARGET_POWER", "UNIT_GRID", "group_sizes", "power_at_units"]

TARGET_POWER = 0.8
_MAX_FACTOR = 64.0  # beyond 64 × the effect of interest the MDE is reported as "none found"
#: The largest design the units-needed search looks at (in total over the groups); beyond it: "more than".
MAX_UNITS = 1000
#: Unit counts at which the power curve is simulated (up to the caller's bound; the design's own count is always
#: included).
UNIT_GRID = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500,
             600, 800, 1000)
# Simulated values held at once (sims × units × columns, or × units for Kruskal–Wallis' tie matrix): a large
# design is simulated in chunks of data sets so that the memory stays near 100 MB.
_CHUNK_VALUES = 12_000_000


def group_sizes(sizes: dict, total: int) -> dict:
    """Group sizes for ``total`` units, in proportion to ``sizes`` (largest remainders; at least 2 per group)."""
    n = sum(sizes.values())
    if not sizes or n <= 0:
        return dict(sizes)
    shares = {g: total * k / n for g, k in sizes.items()}
    out = {g: int(np.floor(v)) for g, v in shares.items()}
    for g in sorted(shares, key=lambda g: out[g] - shares[g])[: max(0, total - sum(out.values()))]:
        out[g] += 1
    return {g: max(2, v) for g, v in out.items()}


def power_at_units(curve, units: float) -> float | None:
    """Power at ``units`` read off a power curve ``[[units, power], …]`` (linear between its points).

    None when ``units`` lies outside the curve; the curve is monotone up to simulation noise, so the
    interpolation is taken on its running maximum.
    """
    points = sorted((float(u), float(p)) for u, p in (curve or []))
    if not points or not points[0][0] <= units <= points[-1][0]:
        return None
    xs = np.array([u for u, _ in points])
    ys = np.maximum.accumulate(np.array([p for _, p in points]))
    return float(np.interp(units, xs, ys))


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
        self.rule, self.simulations, self._seed = rule, simulations, seed
        self._data = table.data()
        rng = np.random.default_rng(seed)
        self._groups = []
        for g in table.groups:
            cols, mat = table.matrix(g)
            n, k = mat.shape
            cov = np.cov(mat, rowvar=False, ddof=1).reshape(k, k) if n >= 2 else np.zeros((k, k))
            self._groups.append(_Group(g, cols, mat.mean(axis=0), _sqrt_psd(cov), rng.standard_normal((simulations, n, k))))
        self._power_cache: dict = {}

    def _read(self, grp: _Group) -> bool:
        keys = self.rule.keys()
        return any(column_key(c, grp.group) in keys for c in grp.columns)

    @property
    def units(self) -> int:
        """Units in the design as run, over the groups the rule reads (a table may carry others, reported only)."""
        return sum(self.sizes().values())

    def sizes(self) -> dict:
        """Units per group the rule reads, as run (``{None: n}`` for an ungrouped table)."""
        return {grp.group: grp.draws.shape[1] for grp in self._groups if self._read(grp)}

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

    def _simulated(self, draws: list[np.ndarray], factor: float, *, components: bool = False):
        means = self.rule.means_under_effect(self._data, factor)
        data = {}
        for grp, z in zip(self._groups, draws):
            mu = grp.mean.copy()
            for j, c in enumerate(grp.columns):
                key = column_key(c, grp.group)
                if key in means:
                    mu[j] = means[key]
            sims = mu + z @ grp.root.T
            for j, c in enumerate(grp.columns):
                data[column_key(c, grp.group)] = sims[..., j]
        rule = self.rule.scaled(factor)
        return rule.components(data) if components else rule.pvalues(data)

    def pvalues(self, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Simulated ``(p_support, p_refute)`` of the design as run, with the effects of interest × ``factor``."""
        return self._simulated([grp.draws for grp in self._groups], factor)

    def power(self, level: float, factor: float = 1.0, *, units: int | None = None) -> float:
        """Share of simulated data sets supported at ``level`` (α/m).

        ``units``: the same design with this many units in total (every group scaled in proportion,
        :func:`group_sizes`; the measured covariance kept); None: the design as run.
        """
        check_in_range("level", "PowerModel.power", level, 0.0, 1.0)
        if units is None or units == self.units:
            p_support, _ = self.pvalues(factor)
            return float(np.mean(p_support < level))
        key = (level, factor, int(units))
        if key not in self._power_cache:
            self._power_cache[key] = self._power_with(level, factor, int(units))
        return self._power_cache[key]

    def _power_with(self, level: float, factor: float, units: int) -> float:
        p_support, _ = self.rule.scaled(factor).assemble(self.simulated_components(units, factor))
        return float(np.mean(np.asarray(p_support) < level))

    def simulated_components(self, units: int, factor: float = 1.0) -> dict[str, np.ndarray]:
        """The rule's components (:meth:`~analysis.stats.rules.Rule.components`), ``simulations`` of each, for a
        design with ``units`` in total and the effects of interest × ``factor`` true: every group scaled in
        proportion, the measured covariance kept. The second stage of a two-stage design is one
        (:meth:`analysis.stats.sequential.TwoStage.conditional_power`)."""
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 2:
            raise invalid("units", "PowerModel.simulated_components", "a number of units >= 2", units)
        units = int(units)
        sizes = group_sizes(self.sizes(), units)
        # Fresh draws per unit count (seeded by it): deterministic, independent of the order of calls. Groups
        # the rule does not read keep their size (their values are never looked at).
        sizes.update({grp.group: grp.draws.shape[1] for grp in self._groups if grp.group not in sizes})
        rng = np.random.default_rng([self._seed, units])
        width = max(max(len(grp.columns) for grp in self._groups), max(sizes.values()))
        chunk = max(1, min(self.simulations, _CHUNK_VALUES // max(1, sum(sizes.values()) * width)))
        out: dict[str, list] = {}
        for start in range(0, self.simulations, chunk):
            m = min(chunk, self.simulations - start)
            draws = [rng.standard_normal((m, sizes[grp.group], len(grp.columns))) for grp in self._groups]
            for k, v in self._simulated(draws, factor, components=True).items():
                out.setdefault(k, []).append(np.broadcast_to(v, (m,)))
        return {k: np.concatenate(v) for k, v in out.items()}

    def units_needed(self, level: float, target: float = TARGET_POWER, *, max_units: int = MAX_UNITS) -> int | None:
        """The smallest total number of units with power ≥ ``target`` at the effect of interest.

        Searched by doubling from the design as run, then bisection over whole units (power grows with the
        units up to simulation noise); below the design when it already has more power than ``target``.
        None when even ``max_units`` units do not reach it, or when nothing varies to scale (fewer than two
        units measured).
        """
        n = self.units
        if n < 2:
            return None
        if self.power(level) >= target:
            low, high = 1, n
        else:
            low, high = n, None
            while high is None:
                probe = min(max_units, 2 * low)
                if self.power(level, units=probe) >= target:
                    high = probe
                elif probe >= max_units:
                    return None
                else:
                    low = probe
        while high - low > 1:
            mid = (low + high) // 2
            if mid >= 2 and self.power(level, units=mid) >= target:
                high = mid
            else:
                low = mid
        # Groups get at least two units each, so a grouped design's total can exceed the count asked for.
        return sum(group_sizes(self.sizes(), max(high, 2)).values())

    def power_curve(self, level: float, *, up_to: int | None = None) -> list[list[float]]:
        """``[[units, power], …]`` at the :data:`UNIT_GRID` counts up to ``up_to`` (default: twice the design),
        and at the design's own count."""
        top = min(MAX_UNITS, up_to if up_to is not None else 2 * self.units)
        counts = sorted({u for u in UNIT_GRID if u <= top} | {self.units})
        return [[u, self.power(level, units=u)] for u in counts if u >= 2]

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
