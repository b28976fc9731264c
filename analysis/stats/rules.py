"""Decision rules: the claim forms of CLAIMS.md as small tests on per-unit values.

A rule reads per-unit columns (:class:`analysis.stats.units.UnitTable`) and gives two
one-sided p-values — ``p_support`` for the claim, ``p_refute`` for its
opposite — plus the effect, its interval at the level the decision uses and
the effect of interest declared in the profile. Leaves:

=====================  ==========================================================  ======================
rule                   supported when                                              refuted when
=====================  ==========================================================  ======================
:class:`Directional`   one-sided t in the stated direction, p < α                  opposite direction, p < α
:class:`Trend`         per-unit τ (or slope) one-sided t (a Directional on τ)      opposite direction
:class:`NonInferiority`  lower one-sided (1−α) bound > L (or upper < U)            the other bound beyond L
:class:`Equivalence`   TOST: (1−2α) CI inside the margin                           (1−α) CI wholly outside
:class:`GroupDifference`  one-sided Welch between two groups of units              opposite direction
:class:`GroupsDiffer`  Kruskal–Wallis (two-sided: "they differ")                   every pair TOST-equivalent
=====================  ==========================================================  ======================

Combinators: :class:`AllOf` (universal / compound: intersection–union,
``p_support = max``, refuted when some part is refuted, Holm over the parts:
``p_refute = k·min``) and :class:`AnyOf` (existential: Holm over the settings,
``p_support = k·min``; refuted when every setting is refuted: ``p_refute =
max``).

Every rule computes its p-values vectorised over leading axes
(:meth:`Rule.pvalues`), so the same code decides a claim, simulates its power
(:mod:`analysis.stats.power`) and resamples its units (:mod:`analysis.stats.family`). The
t machinery is written here (a few lines of numpy around
``scipy.stats.t``) because scipy's tests are not vectorised over many
simulated data sets; ``tests/test_rules.py`` checks every p against scipy and
statsmodels.

Zero variance is a legitimate case (every fp16 model has exactly its base's
accuracy): t is ±∞ and p ∈ {0, 1}; 0/0 gives p = 1 for both sides (nothing
shown). Fewer than two units give p = NaN (the design cannot decide).

One module though long: the claim forms are one small class hierarchy (leaves
and combinators under ``Rule``) sharing the vectorised one-sided tests.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from analysis._validation import check_choice, invalid
from analysis.stats.units import Data, column_key

__all__ = [
    "Outcome",
    "Rule",
    "Directional",
    "Trend",
    "NonInferiority",
    "Equivalence",
    "GroupDifference",
    "GroupsDiffer",
    "AllOf",
    "AnyOf",
]

_SIDES = ("greater", "less")


# --------------------------------------------------------------------------- vectorised t machinery


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard error and df along the last axis (NaN se with fewer than 2 values)."""
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    if n < 2:
        nan = np.full(mean.shape, np.nan)
        return mean, nan, nan
    se = x.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean, se, np.full(mean.shape, float(n - 1))


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference of means, its Welch standard error and Welch–Satterthwaite df."""
    na, nb = a.shape[-1], b.shape[-1]
    diff = a.mean(axis=-1) - b.mean(axis=-1)
    if na < 2 or nb < 2:
        nan = np.full(diff.shape, np.nan)
        return diff, nan, nan
    va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    se = np.sqrt(va + vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    # Both variances zero: the df are undefined but irrelevant (t is ±inf or 0/0).
    df = np.where(np.isfinite(df), df, float(na + nb - 2))
    return diff, se, df


def _t(estimate: np.ndarray, null: float | np.ndarray, se: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (estimate - null) / se


def _p_greater(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(T ≥ t): p of a one-sided test for "greater"; NaN t (0/0) gives 1."""
    p = stats.t.sf(t, df)
    return np.where(np.isnan(t) & ~np.isnan(df), 1.0, p)


def _p_less(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    p = stats.t.cdf(t, df)
    return np.where(np.isnan(t) & ~np.isnan(df), 1.0, p)


def _sides(up: np.ndarray, down: np.ndarray, alternative: str) -> dict[str, np.ndarray]:
    """A one-sided test's two components: support in the claimed direction, refute in the other."""
    return {"support": up, "refute": down} if alternative == "greater" else {"support": down, "refute": up}


def _interval(estimate: float, se: float, df: float, alpha: float) -> tuple[float, float]:
    """The two-sided (1 − 2α) interval: its ends are the one-sided (1 − α) bounds a one-sided test at α uses."""
    if not (math.isfinite(se) and math.isfinite(df)):
        return (float("nan"), float("nan"))
    q = float(stats.t.ppf(1 - alpha, df)) if se > 0 else 0.0
    return (float(estimate - q * se), float(estimate + q * se))


def _kruskal(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Kruskal–Wallis p (tie-corrected, chi-square approximation, as scipy.stats.kruskal), vectorised."""
    x = np.concatenate(samples, axis=-1)
    n_total = x.shape[-1]
    ranks = stats.rankdata(x, axis=-1)
    h = np.zeros(x.shape[:-1])
    start = 0
    for s in samples:
        n = s.shape[-1]
        h += ranks[..., start : start + n].sum(axis=-1) ** 2 / n
        start += n
    h = 12.0 / (n_total * (n_total + 1)) * h - 3 * (n_total + 1)
    tie_size = (x[..., :, None] == x[..., None, :]).sum(axis=-1)  # size of each value's tie group
    correction = 1.0 - (tie_size**2 - 1).sum(axis=-1) / (n_total**3 - n_total)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.chi2.sf(h / correction, len(samples) - 1)
    return np.where(correction > 0, p, 1.0)  # all values tied: no evidence of a difference


# --------------------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """A rule evaluated on one data set.

    ``parts`` holds the components of a combinator (empty for a leaf).
    ``estimate``/``se``/``df`` describe the leaf's effect for the findings
    regression (current vs baseline estimate over their combined SE).
    """

    name: str
    form: str
    test: str
    p_support: float
    p_refute: float
    effect: float = float("nan")
    effect_name: str = ""
    scale: str = ""
    ci: tuple[float, float] = (float("nan"), float("nan"))
    ci_level: float | None = None
    reference: float | None = None
    margin: tuple[float | None, float | None] | None = None
    effect_of_interest: float | None = None
    effect_bound: float | None = None  # the largest effect the scale allows (|τ| ≤ 1): an MDE beyond it is none
    statistic: float = float("nan")
    estimate: float = float("nan")
    se: float = float("nan")
    df: float = float("nan")
    n: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    parts: list["Outcome"] = field(default_factory=list)

    def leaves(self) -> list["Outcome"]:
        return [self] if not self.parts else [leaf for p in self.parts for leaf in p.leaves()]

    def deciding(self, verdict: str) -> "Outcome":
        """The leaf that decided ``verdict`` (the bottleneck of a conjunction, the best of a disjunction)."""
        return self if not self.parts else self._decider(verdict).deciding(verdict)

    def _decider(self, verdict: str) -> "Outcome":
        def key(attr):
            return lambda o: (math.inf if math.isnan(getattr(o, attr)) else getattr(o, attr))

        if self.form == "existential":
            if verdict == "refuted":
                return max(self.parts, key=key("p_refute"))
            return min(self.parts, key=key("p_support"))
        if verdict == "refuted":
            return min(self.parts, key=key("p_refute"))
        return max(self.parts, key=key("p_support"))


# --------------------------------------------------------------------------- rules


class Rule:
    """Base of the decision rules. Subclasses define the p-values and the alternative for power."""

    name: str
    form: str

    def components(self, data: Data) -> dict[str, np.ndarray]:
        """The one-sided p-values of the rule's elementary tests, by name, for data whose columns have shape
        (..., units); each is uniform (or larger) at its own null.

        :meth:`assemble` turns them into the rule's two p-values. A two-stage design
        (:mod:`analysis.stats.sequential`) combines each component over the stages first, so the rule's
        combination (IUT max, Bonferroni–Holm k·min, TOST) acts on valid sequential p-values, as on fixed ones.
        """
        raise NotImplementedError(f"{type(self).__name__} must define components")

    def assemble(self, ps: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(p_support, p_refute)`` from :meth:`components` (fixed-design or sequential p-values)."""
        return ps["support"], ps["refute"]

    def pvalues(self, data: Data) -> tuple[np.ndarray, np.ndarray]:
        """``(p_support, p_refute)`` for data whose columns have shape (..., units)."""
        return self.assemble(self.components(data))

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} must define evaluate")

    def keys(self) -> set[str]:
        """The :data:`~analysis.stats.units.Data` keys this rule reads."""
        raise NotImplementedError(f"{type(self).__name__} must define keys")

    def means_under_effect(self, data: Data, factor: float) -> dict[str, float]:
        """Column means (per key) when the effect of interest × ``factor`` is true (power simulation)."""
        raise NotImplementedError(f"{type(self).__name__} must define means_under_effect")

    def scaled(self, factor: float) -> "Rule":
        """This rule with its margins × ``factor`` (equivalence, non-inferiority); others unchanged."""
        return self

    def leaves(self) -> list["Rule"]:
        return [self]


def _column(data: Data, key: str, owner: str) -> np.ndarray:
    try:
        return np.asarray(data[key], dtype=float)
    except KeyError:
        raise invalid("data", owner, f"a column {key!r}", sorted(data)) from None


@dataclass(frozen=True)
class _OneSample(Rule):
    """Shared parts of the rules on one column of per-unit values."""

    name: str
    column: str
    group: str | None = None
    scale: str = ""
    effect_name: str = ""

    @property
    def key(self) -> str:
        return column_key(self.column, self.group)

    def keys(self) -> set[str]:
        return {self.key}

    def _stats(self, data: Data):
        return _moments(_column(data, self.key, type(self).__name__))

    def _base_outcome(self, data: Data, alpha: float, test: str, p_s, p_r, statistic, **kw) -> Outcome:
        x = _column(data, self.key, type(self).__name__)
        mean, se, df = (float(v) for v in _moments(x))
        return Outcome(
            name=self.name, form=self.form, test=test, p_support=float(p_s), p_refute=float(p_r),
            effect=mean, effect_name=self.effect_name or f"mean of {self.column}", scale=self.scale,
            ci=_interval(mean, se, df, alpha), ci_level=1 - 2 * alpha, statistic=float(statistic),
            estimate=mean, se=se, df=df, n={"units": int(x.shape[-1])}, values={self.key: x.tolist()}, **kw,
        )


@dataclass(frozen=True)
class Directional(_OneSample):
    """Mean of per-unit values beyond ``null`` in the claimed direction; δ = the effect of interest.

    Per-unit *differences* (log d(Q, B) − log d(I, B)) make this the paired
    test of "A is closer than C"; ``null`` tests against another value
    (MW-7: "lost more than 5 points").
    """

    alternative: str = "greater"
    delta: float = 0.0
    null: float = 0.0
    form: str = "directional"

    def __post_init__(self) -> None:
        check_choice("alternative", type(self).__name__, self.alternative, _SIDES)
        if not (self.delta > 0):
            raise invalid("delta", type(self).__name__, "the effect of interest, a number > 0", self.delta)

    def components(self, data: Data):
        mean, se, df = self._stats(data)
        t = _t(mean, self.null, se)
        up, down = _p_greater(t, df), _p_less(t, df)
        return _sides(up, down, self.alternative)

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        mean, se, df = self._stats(data)
        p_s, p_r = self.pvalues(data)
        sign = ">" if self.alternative == "greater" else "<"
        test = f"one-sided one-sample t-test over units, mean {sign} {self.null:g} (δ = {self.delta:g})"
        return self._base_outcome(data, alpha, test, p_s, p_r, _t(mean, self.null, se),
                                  reference=self.null, effect_of_interest=self.delta)

    def means_under_effect(self, data: Data, factor: float) -> dict:
        sign = 1.0 if self.alternative == "greater" else -1.0
        return {self.key: self.null + sign * factor * self.delta}


@dataclass(frozen=True)
class Trend(Directional):
    """A trend decided per unit: the column holds each unit's Kendall τ (or slope) over the levels."""

    form: str = "trend"

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        out = super().evaluate(data, alpha)
        word = "rising" if self.alternative == "greater" else "falling"
        out.effect_bound = 1.0 if self.scale == "Kendall tau" else None
        out.test = (f"per-unit {self.effect_name or self.column} over the levels, one-sided one-sample t-test "
                    f"across units ({word}; δ = {self.delta:g})")
        return out


@dataclass(frozen=True)
class NonInferiority(_OneSample):
    """The mean is not below ``reference − margin`` (``greater``) or not above ``reference + margin`` (``less``).

    Power is taken at a true mean equal to ``reference`` (no difference); the
    minimum detectable effect is the smallest margin with 80 % power.
    """

    reference: float = 0.0
    margin: float = 0.0
    alternative: str = "greater"
    form: str = "non-inferiority"

    def __post_init__(self) -> None:
        check_choice("alternative", type(self).__name__, self.alternative, _SIDES)
        if not (self.margin > 0):
            raise invalid("margin", type(self).__name__, "a number > 0", self.margin)

    @property
    def bound(self) -> float:
        return self.reference - self.margin if self.alternative == "greater" else self.reference + self.margin

    def components(self, data: Data):
        mean, se, df = self._stats(data)
        t = _t(mean, self.bound, se)
        up, down = _p_greater(t, df), _p_less(t, df)
        return _sides(up, down, self.alternative)

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        mean, se, df = self._stats(data)
        p_s, p_r = self.pvalues(data)
        word = "lower" if self.alternative == "greater" else "upper"
        sign = ">" if self.alternative == "greater" else "<"
        test = (f"non-inferiority: one-sided one-sample t-test, {word} (1−α) bound {sign} {self.bound:.4g} "
                f"(reference {self.reference:g}, margin {self.margin:g})")
        margin = (self.bound, None) if self.alternative == "greater" else (None, self.bound)
        return self._base_outcome(data, alpha, test, p_s, p_r, _t(mean, self.bound, se),
                                  reference=self.reference, margin=margin, effect_of_interest=self.margin)

    def means_under_effect(self, data: Data, factor: float) -> dict:
        return {self.key: self.reference}

    def scaled(self, factor: float) -> "NonInferiority":
        return dataclasses.replace(self, margin=self.margin * factor)


@dataclass(frozen=True)
class Equivalence(_OneSample):
    """TOST: the mean lies within ``reference + low`` … ``reference + upp`` (``low < 0 < upp``)."""

    low: float = 0.0
    upp: float = 0.0
    reference: float = 0.0
    form: str = "equivalence"

    def __post_init__(self) -> None:
        if not (self.low < 0 < self.upp):
            raise invalid("low", type(self).__name__, "a margin with low < 0 < upp", (self.low, self.upp))

    def _tails(self, data: Data):
        mean, se, df = self._stats(data)
        t_low, t_upp = _t(mean, self.reference + self.low, se), _t(mean, self.reference + self.upp, se)
        return t_low, t_upp, df

    def components(self, data: Data):
        t_low, t_upp, df = self._tails(data)
        return {"above low": _p_greater(t_low, df), "below upp": _p_less(t_upp, df),
                "below low": _p_less(t_low, df), "above upp": _p_greater(t_upp, df)}

    def assemble(self, ps):
        p_support = np.maximum(ps["above low"], ps["below upp"])
        # Refuted by a test of size α: the (1−α) interval wholly outside the margin, i.e. the smaller
        # one-sided p below α/2. min(p_below, p_above) < α alone would have size up to 2α.
        p_refute = np.minimum(1.0, 2 * np.minimum(ps["below low"], ps["above upp"]))
        return p_support, p_refute

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        t_low, t_upp, df = self._tails(data)
        p_s, p_r = self.pvalues(data)
        lo, hi = self.reference + self.low, self.reference + self.upp
        test = f"TOST equivalence over units, margin [{lo:.4g}, {hi:.4g}]"
        # The statistic of the one-sided component with the larger p (the one that decides TOST).
        statistic = float(t_low if _p_greater(t_low, df) >= _p_less(t_upp, df) else t_upp)
        return self._base_outcome(data, alpha, test, p_s, p_r, statistic, reference=self.reference,
                                  margin=(lo, hi), effect_of_interest=min(-self.low, self.upp))

    def means_under_effect(self, data: Data, factor: float) -> dict:
        return {self.key: self.reference}

    def scaled(self, factor: float) -> "Equivalence":
        return dataclasses.replace(self, low=self.low * factor, upp=self.upp * factor)


@dataclass(frozen=True)
class GroupDifference(Rule):
    """Welch's one-sided test that group ``a``'s units have a larger (or smaller) mean than group ``b``'s."""

    name: str
    column: str
    group_a: str
    group_b: str
    alternative: str = "greater"
    delta: float = 0.0
    scale: str = ""
    effect_name: str = ""
    form: str = "directional"

    def __post_init__(self) -> None:
        check_choice("alternative", type(self).__name__, self.alternative, _SIDES)
        if not (self.delta > 0):
            raise invalid("delta", type(self).__name__, "the effect of interest, a number > 0", self.delta)

    def keys(self) -> set[str]:
        return {column_key(self.column, self.group_a), column_key(self.column, self.group_b)}

    def _ab(self, data: Data):
        owner = type(self).__name__
        return (_column(data, column_key(self.column, self.group_a), owner),
                _column(data, column_key(self.column, self.group_b), owner))

    def components(self, data: Data):
        diff, se, df = _welch(*self._ab(data))
        t = _t(diff, 0.0, se)
        up, down = _p_greater(t, df), _p_less(t, df)
        return _sides(up, down, self.alternative)

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        a, b = self._ab(data)
        diff, se, df = (float(v) for v in _welch(a, b))
        p_s, p_r = self.pvalues(data)
        sign = ">" if self.alternative == "greater" else "<"
        return Outcome(
            name=self.name, form=self.form, p_support=float(p_s), p_refute=float(p_r),
            test=f"one-sided Welch t-test between groups of units, {self.group_a} {sign} {self.group_b} (δ = {self.delta:g})",
            effect=diff, effect_name=self.effect_name or f"difference of means of {self.column} ({self.group_a} − {self.group_b})",
            scale=self.scale, ci=_interval(diff, se, df, alpha), ci_level=1 - 2 * alpha, reference=0.0,
            effect_of_interest=self.delta, statistic=float(_t(diff, 0.0, se)), estimate=diff, se=se, df=df,
            n={"units": int(a.size + b.size), self.group_a: int(a.size), self.group_b: int(b.size)},
            values={column_key(self.column, self.group_a): a.tolist(), column_key(self.column, self.group_b): b.tolist()},
        )

    def means_under_effect(self, data: Data, factor: float) -> dict:
        a, b = self._ab(data)
        centre = (a.mean() + b.mean()) / 2
        half = (1.0 if self.alternative == "greater" else -1.0) * factor * self.delta / 2
        return {column_key(self.column, self.group_a): centre + half, column_key(self.column, self.group_b): centre - half}


@dataclass(frozen=True)
class GroupsDiffer(Rule):
    """Kruskal–Wallis test that the groups differ (two-sided; no order claimed).

    Refuted when every pair of groups is shown equivalent within ±δ (Welch TOST,
    intersection–union over the pairs).
    """

    name: str
    column: str
    groups: tuple[str, ...]
    delta: float = 0.0
    scale: str = ""
    effect_name: str = ""
    form: str = "directional"

    def __post_init__(self) -> None:
        if len(self.groups) < 2:
            raise invalid("groups", type(self).__name__, "at least two groups", self.groups)
        if not (self.delta > 0):
            raise invalid("delta", type(self).__name__, "the effect of interest, a number > 0", self.delta)

    def keys(self) -> set[str]:
        return {column_key(self.column, g) for g in self.groups}

    def _samples(self, data: Data):
        return [_column(data, column_key(self.column, g), type(self).__name__) for g in self.groups]

    def components(self, data: Data):
        samples = self._samples(data)
        out = {"differ": _kruskal(samples)}
        for (i, a), (j, b) in itertools.combinations(enumerate(samples), 2):
            diff, se, df = _welch(a, b)
            out[f"{i}-{j} above -delta"] = _p_greater(_t(diff, -self.delta, se), df)
            out[f"{i}-{j} below +delta"] = _p_less(_t(diff, self.delta, se), df)
        return out

    def assemble(self, ps):
        # Refuted when every pair is TOST-equivalent: intersection–union over the pairs and their two tails.
        tails = [v for k, v in ps.items() if k != "differ"]
        return ps["differ"], np.max(np.stack(np.broadcast_arrays(*tails)), axis=0)

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        samples = self._samples(data)
        p_s, p_r = self.pvalues(data)
        means = [float(s.mean()) for s in samples]
        if len(samples) == 2:
            diff, se, df = (float(v) for v in _welch(*samples))
            effect, ci, name = diff, _interval(diff, se, df, alpha), f"difference of means ({self.groups[0]} − {self.groups[1]})"
        else:
            diff, se, df = max(means) - min(means), float("nan"), float("nan")
            effect, ci, name = diff, (float("nan"), float("nan")), "range of the group means"
        return Outcome(
            name=self.name, form=self.form, p_support=float(p_s), p_refute=float(p_r),
            test=(f"Kruskal–Wallis across {len(self.groups)} groups of units (two-sided); refuted when every "
                  f"pair is equivalent within ±{self.delta:g} (Welch TOST)"),
            effect=effect, effect_name=self.effect_name or f"{self.column}: {name}", scale=self.scale, ci=ci,
            ci_level=1 - 2 * alpha, reference=0.0, margin=(-self.delta, self.delta), effect_of_interest=self.delta,
            statistic=float("nan"), estimate=effect, se=se, df=df,
            n={"units": int(sum(s.size for s in samples)), **{g: int(s.size) for g, s in zip(self.groups, samples)}},
            values={column_key(self.column, g): s.tolist() for g, s in zip(self.groups, samples)},
        )

    def means_under_effect(self, data: Data, factor: float) -> dict:
        samples = self._samples(data)
        centre = float(np.mean([s.mean() for s in samples]))
        spread = np.linspace(-0.5, 0.5, len(samples)) * factor * self.delta
        return {column_key(self.column, g): centre + d for g, d in zip(self.groups, spread)}


# --------------------------------------------------------------------------- combinators


class _Combinator(Rule):
    def __init__(self, name: str, *rules: Rule):
        if not rules:
            raise invalid("rules", type(self).__name__, "at least one rule", rules)
        for r in rules:
            if not isinstance(r, Rule):
                raise invalid("rules", type(self).__name__, "Rule objects", r)
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise invalid("rules", type(self).__name__, "rules with distinct names", names)
        self.name, self.rules = name, tuple(rules)

    def keys(self) -> set[str]:
        return set().union(*(r.keys() for r in self.rules))

    def leaves(self) -> list[Rule]:
        return [leaf for r in self.rules for leaf in r.leaves()]

    def components(self, data: Data) -> dict:
        # "<part index>|<part name>/<component>": unique whatever the part names hold.
        return {f"{i}|{r.name}/{k}": v for i, r in enumerate(self.rules) for k, v in r.components(data).items()}

    def _part_pvalues(self, ps: dict) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for i, r in enumerate(self.rules):
            prefix = f"{i}|{r.name}/"
            out.append(r.assemble({k[len(prefix):]: v for k, v in ps.items() if k.startswith(prefix)}))
        return out

    def means_under_effect(self, data: Data, factor: float) -> dict:
        out: dict = {}
        for r in self.rules:
            out.update(r.means_under_effect(data, factor))
        return out

    def scaled(self, factor: float) -> "_Combinator":
        return type(self)(self.name, *(r.scaled(factor) for r in self.rules))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {', '.join(map(repr, self.rules))})"

    def _parts(self, data: Data, alpha: float) -> list[Outcome]:
        return [r.evaluate(data, alpha) for r in self.rules]


def _stack(values: list[np.ndarray]) -> np.ndarray:
    return np.stack(np.broadcast_arrays(*values))


class AllOf(_Combinator):
    """Every part holds (universal over settings, or the parts of a compound claim).

    Support: intersection–union test (Berger 1982), ``p = max p_i``, a valid
    level-α test of the conjunction with no adjustment. Refutation: some part
    refuted, Holm over the k parts, whose smallest adjusted p is ``k·min p_i``.
    A part that cannot decide (NaN) blocks support.
    """

    form = "universal"

    def assemble(self, ps_by_name):
        ps, pr = zip(*self._part_pvalues(ps_by_name))
        support = np.nanmax(np.where(np.isnan(_stack(ps)), np.inf, _stack(ps)), axis=0)
        support = np.where(np.isinf(support), np.nan, support)
        refute = np.minimum(1.0, len(pr) * np.nanmin(np.where(np.isnan(_stack(pr)), np.inf, _stack(pr)), axis=0))
        refute = np.where(np.isinf(refute), np.nan, refute)
        return support, refute

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        parts = self._parts(data, alpha)
        p_s, p_r = self.pvalues(data)
        return Outcome(name=self.name, form=self.form, test=f"all of {len(parts)} parts (intersection–union)",
                       p_support=float(p_s), p_refute=float(p_r), parts=parts)


class AnyOf(_Combinator):
    """Some setting holds (existential): Holm over the k settings (``k·min p_i``); refuted when all are."""

    form = "existential"

    def assemble(self, ps_by_name):
        ps, pr = zip(*self._part_pvalues(ps_by_name))
        stacked = _stack(ps)
        support = np.minimum(1.0, len(ps) * np.nanmin(np.where(np.isnan(stacked), np.inf, stacked), axis=0))
        support = np.where(np.isinf(support), np.nan, support)
        refute = _stack(pr).max(axis=0)  # NaN (a setting that cannot decide) blocks refutation
        return support, refute

    def evaluate(self, data: Data, alpha: float) -> Outcome:
        parts = self._parts(data, alpha)
        p_s, p_r = self.pvalues(data)
        return Outcome(name=self.name, form=self.form, test=f"some of {len(parts)} settings (Holm over the settings)",
                       p_support=float(p_s), p_refute=float(p_r), parts=parts)
