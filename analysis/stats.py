"""Statistical tests that turn per-model values into claim verdicts.

Thin wrappers over scipy and statsmodels: arrays in, dataclasses out, explicit
randomness (STYLE.md §6). The unit of analysis is the trained model (seed):
every array holds one value per model, never per test example
(CLAIMS.md, "How a claim becomes a verdict").

Each test returns a :class:`TestResult` with two one-sided p-values:

- ``p_support``: p of the test in the claimed direction (or the TOST p for an
  equivalence claim);
- ``p_refute``: p of the test for the opposite conclusion.

A claim is *supported* if ``p_support < α``, *refuted* if ``p_refute < α``,
otherwise *inconclusive* (:func:`verdict_from`). Families of parametrized cases
are Holm-adjusted by :func:`adjust_family`, which sets the verdicts of the
:class:`Evidence` records from the adjusted p-values. Every result carries a
:class:`DesignCheck` saying whether the design (number of seeds and levels) can
reach α at all, so a design that cannot is flagged rather than reported as
inconclusive data.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from ._validation import check_choice, check_in_range, invalid

__all__ = [
    "VERDICTS",
    "DESIGN_KINDS",
    "DesignCheck",
    "TestResult",
    "Evidence",
    "directional_test",
    "equivalence_test",
    "difference_test",
    "trend_test",
    "holm",
    "verdict_from",
    "adjust_family",
    "design_check",
    "bootstrap_ci",
]

VERDICTS = ("supported", "refuted", "inconclusive", "error")

#: Kinds understood by :func:`design_check`. "t1"/"tost1" are one-sample tests
#: (a paired test is a one-sample test on the differences).
DESIGN_KINDS = ("t1", "t_paired", "t_welch", "tost1", "tost_paired", "tost_welch", "page")

_REFERENCE_D = 1.0  # standardized effect (Cohen's d) at which power is reported

# scipy 1.15 renamed bootstrap's `random_state` to `rng` (SPEC 7); we support scipy>=1.11.
_BOOTSTRAP_RNG_KW = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"

# Exact enumeration of Page's null distribution is used only where scipy refuses
# (one block, or two levels); beyond this many levels a single block falls back
# to the normal approximation.
_PAGE_ENUMERATE_MAX_LEVELS = 8


# --------------------------------------------------------------------------- records


@dataclass
class DesignCheck:
    """Whether a design (seeds, levels) can reach the family-corrected level at all.

    Attributes
    ----------
    can_reach_alpha : bool
        False when no data could give ``p < α / m``.
    min_p : float or None
        Smallest p the design can produce (rank tests); None for t-based tests.
    power : float or None
        Power at Cohen's d = 1 at level ``α / m`` (t-based tests); None otherwise
        or when the test has no degrees of freedom.
    message : str
        One human sentence.
    """

    can_reach_alpha: bool
    min_p: float | None
    power: float | None
    message: str


@dataclass
class TestResult:
    """Outcome of one statistical test on per-model values.

    ``p_support`` is the p-value of the test in the claimed direction (the TOST
    p for an equivalence claim); ``p_refute`` the p-value of the test for the
    opposite conclusion. Both are NaN when the design cannot produce a test
    (see ``design``).
    """

    __test__ = False  # not a pytest test class despite the name

    test: str
    statistic: float
    p_support: float
    p_refute: float
    effect: float
    effect_name: str
    ci: tuple[float, float]
    ci_level: float
    n: dict[str, int]
    design: DesignCheck
    details: dict = field(default_factory=dict)


@dataclass
class Evidence:
    """The record of one claim instance: verdict, statistics and the paper's number.

    Built from a :class:`TestResult` by :meth:`from_result` (raw p-values; the
    adjusted ones equal the raw ones until :func:`adjust_family` runs), or
    directly for number claims (``asserted=False`` when only reported), or by
    :meth:`from_error` when the experiment could not run.
    """

    claim_id: str
    params: dict = field(default_factory=dict)
    verdict: str = "inconclusive"
    test: str = ""
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    p_refute: float | None = None
    p_refute_adjusted: float | None = None
    effect: float | None = None
    effect_name: str = ""
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    n: dict[str, int] = field(default_factory=dict)
    paper_value: Any = None
    ours_value: Any = None
    figures: list[str] = field(default_factory=list)
    design: DesignCheck | None = None
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    asserted: bool = True

    def __post_init__(self) -> None:
        check_choice("verdict", "Evidence", self.verdict, VERDICTS)

    @property
    def instance_id(self) -> str:
        """``claim_id[v1,key=v2,...]``: strings bare, other values as ``key=value``.

        Example: ``Evidence("MW-1", {"setting": "digits-lenet5", "α": 0.5})``
        gives ``MW-1[digits-lenet5,α=0.5]``; no params gives ``MW-1``.
        """
        if not self.params:
            return self.claim_id
        parts = [v if isinstance(v, str) else f"{k}={v}" for k, v in self.params.items()]
        return f"{self.claim_id}[{','.join(parts)}]"

    def to_dict(self) -> dict:
        """JSON-able dict: NaN/inf become None, numpy scalars and arrays become Python."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping) -> Evidence:
        """Inverse of :meth:`to_dict` (non-finite numbers come back as None)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise invalid("d", "Evidence.from_dict", f"a dict with keys among {sorted(names)}", unknown)
        kw = dict(d)
        if kw.get("design") is not None:
            kw["design"] = DesignCheck(**kw["design"])
        if kw.get("ci") is not None:
            kw["ci"] = tuple(kw["ci"])
        for name in ("params", "n", "details"):
            if name in kw:
                kw[name] = dict(kw[name])
        for name in ("figures", "notes"):
            if name in kw:
                kw[name] = list(kw[name])
        return cls(**kw)

    @classmethod
    def from_result(
        cls,
        claim_id: str,
        params: Mapping,
        result: TestResult,
        *,
        paper_value: Any = None,
        ours_value: Any = None,
        notes: Sequence[str] = (),
        figures: Sequence[str] = (),
        details: Mapping | None = None,
        asserted: bool = True,
        alpha: float = 0.05,
    ) -> Evidence:
        """Evidence from a :class:`TestResult`, with raw p-values.

        The adjusted p-values are set equal to the raw ones and the verdict is
        computed from them (a family of one); :func:`adjust_family` replaces both
        for a family of parametrized cases.
        """
        _check_alpha(alpha, "Evidence.from_result")
        notes = list(notes)
        if not result.design.can_reach_alpha:
            notes.append(result.design.message)
        return cls(
            claim_id=claim_id,
            params=dict(params),
            verdict=verdict_from(result.p_support, result.p_refute, alpha),
            test=result.test,
            statistic=result.statistic,
            p_value=result.p_support,
            p_adjusted=result.p_support,
            p_refute=result.p_refute,
            p_refute_adjusted=result.p_refute,
            effect=result.effect,
            effect_name=result.effect_name,
            ci=tuple(result.ci),
            ci_level=result.ci_level,
            n=dict(result.n),
            paper_value=paper_value,
            ours_value=ours_value,
            figures=[str(f) for f in figures],
            design=dataclasses.replace(result.design),
            notes=notes,
            details={**result.details, **(details or {}), "alpha": alpha},
            asserted=asserted,
        )

    @classmethod
    def from_error(cls, claim_id: str, params: Mapping, message: str, **kwargs: Any) -> Evidence:
        """Evidence for an experiment that could not run (verdict ``"error"``)."""
        notes = [*kwargs.pop("notes", ()), message]
        return cls(claim_id=claim_id, params=dict(params), verdict="error", notes=notes, **kwargs)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"Evidence.to_dict cannot encode a value of type {type(obj).__name__}: {obj!r}")


# --------------------------------------------------------------------------- validation


def _check_alpha(alpha: float, owner: str, *, high: float = 1.0) -> None:
    check_in_range("alpha", owner, alpha, 0.0, high)


def _check_family_size(family_size: int, owner: str) -> None:
    if isinstance(family_size, bool) or not isinstance(family_size, (int, np.integer)) or family_size < 1:
        raise invalid("family_size", owner, "an int >= 1", family_size)


def _values(x: Any, param: str, owner: str, *, positive: bool = False, ndim: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise invalid(param, owner, f"a {ndim}-D array of numbers", x) from None
    if arr.ndim != ndim:
        raise invalid(param, owner, f"a {ndim}-D array of numbers", f"an array of shape {arr.shape}")
    if arr.size == 0:
        raise invalid(param, owner, "a non-empty array (one value per trained model)", "an empty array")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise invalid(param, owner, "an array of finite numbers", f"{bad} NaN/inf value(s)")
    if positive and np.any(arr <= 0):
        raise invalid(
            param, owner, "an array of positive numbers (a log-scale test)", f"minimum {arr.min():g}"
        )
    return arr


def _check_paired(a: np.ndarray, b: np.ndarray, owner: str) -> None:
    if a.shape != b.shape:
        raise invalid("b", owner, f"the same length as 'a' ({a.size}) for a paired test", f"length {b.size}")


def _check_margin(low: float, upp: float, owner: str, *, ratio: bool) -> None:
    for name, v in (("low", low), ("upp", upp)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
            raise invalid(name, owner, "a finite number", v)
        if ratio and v <= 0:
            raise invalid(name, owner, "a positive ratio (log_ratio=True)", v)
    if not low < upp:
        raise invalid("upp", owner, f"greater than 'low' ({low})", upp)


# --------------------------------------------------------------------------- t-based tests

_T_NAMES = {"t1": "one-sample t-test", "t_paired": "paired t-test", "t_welch": "Welch two-sample t-test"}


def _t_kind(b: np.ndarray | None, paired: bool, owner: str) -> str:
    if b is None:
        if paired:
            raise invalid("paired", owner, "False when 'b' is None (a one-sample test)", paired)
        return "t1"
    return "t_paired" if paired else "t_welch"


def _t_run(kind: str, xa: np.ndarray, xb: np.ndarray | None, alternative: str):
    if kind == "t1":
        return stats.ttest_1samp(xa, 0.0, alternative=alternative)
    if kind == "t_paired":
        return stats.ttest_rel(xa, xb, alternative=alternative)
    return stats.ttest_ind(xa, xb, equal_var=False, alternative=alternative)


def _standardized(kind: str, xa: np.ndarray, xb: np.ndarray | None) -> tuple[float, str]:
    """Cohen's d_z (one-sample/paired) or d with the average of the two variances (Welch)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind in ("t1", "t_paired"):
            x = xa if kind == "t1" else xa - xb
            sd = x.std(ddof=1) if x.size > 1 else np.nan
            return float(np.mean(x) / sd), "Cohen's d_z"
        if xa.size < 2 or xb.size < 2:
            return float("nan"), "Cohen's d"
        sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
        return float((xa.mean() - xb.mean()) / sd), "Cohen's d"


def _sizes(kind: str, a: np.ndarray, b: np.ndarray | None) -> dict[str, int]:
    if kind in ("t1", "tost1"):
        return {"a": int(a.size)}
    if kind in ("t_paired", "tost_paired"):
        return {"pairs": int(a.size)}
    return {"a": int(a.size), "b": int(b.size)}


def _design_n(kind: str, a: np.ndarray, b: np.ndarray | None) -> int | tuple[int, int]:
    return (int(a.size), int(b.size)) if kind.endswith("welch") else int(a.size)


def _point_difference(kind: str, xa: np.ndarray, xb: np.ndarray | None) -> float:
    if kind.endswith("1"):
        return float(np.mean(xa))
    if kind.endswith("paired"):
        return float(np.mean(xa - xb))
    return float(np.mean(xa) - np.mean(xb))


def _effect_name(kind: str, log: bool) -> str:
    one = kind.endswith("1")
    if log:
        return "geometric mean of a" if one else "ratio of geometric means (a / b)"
    return "mean of a" if one else "mean difference (a − b)"


def directional_test(
    a: Any,
    b: Any = None,
    *,
    paired: bool = False,
    alternative: str = "greater",
    log: bool = False,
    alpha: float = 0.05,
    family_size: int = 1,
) -> TestResult:
    """One-sided t-test of the claim "a > b" (or "a < b"), one value per trained model.

    Parameters
    ----------
    a, b : array_like, 1-D
        Per-model values. ``b=None`` tests the mean of ``a`` against 0 (against 1
        on the ratio scale when ``log=True``).
    paired : bool
        Paired t-test (``scipy.stats.ttest_rel``); otherwise Welch's test
        (``ttest_ind(equal_var=False)``). Ignored (must be False) when ``b`` is None.
    alternative : {"greater", "less"}
        The claimed direction: "greater" claims a > b.
    log : bool
        Test ``log(a)`` against ``log(b)``; the effect is then a ratio of geometric
        means and its CI is on the ratio scale. Values must be positive.
    alpha : float
        Level; the CI is the two-sided (1 − α) t interval.
    family_size : int
        Number of tests in the Holm family; the design check uses α / family_size.

    Returns
    -------
    TestResult
        ``p_support`` is the one-sided p in the claimed direction, ``p_refute`` the
        one-sided p in the opposite direction (they sum to 1). The effect is the
        mean difference a − b (or ratio a / b) whatever the direction; the
        standardized effect is in ``details``. With fewer than 2 values (per group)
        the p-values are NaN and ``design.can_reach_alpha`` is False.
    """
    owner = "directional_test"
    check_choice("alternative", owner, alternative, ("greater", "less"))
    _check_alpha(alpha, owner)
    _check_family_size(family_size, owner)
    a = _values(a, "a", owner, positive=log)
    b = None if b is None else _values(b, "b", owner, positive=log)
    kind = _t_kind(b, paired, owner)
    if kind == "t_paired":
        _check_paired(a, b, owner)
    xa, xb = (np.log(a), None if b is None else np.log(b)) if log else (a, b)
    design = design_check(kind, _design_n(kind, a, b), alpha=alpha, family_size=family_size)
    opposite = "less" if alternative == "greater" else "greater"
    point = _point_difference(kind, xa, xb)
    d, d_name = _standardized(kind, xa, xb)
    details: dict[str, Any] = {
        "alternative": alternative,
        "log": log,
        "standardized_effect": d,
        "standardized_effect_name": d_name,
        "mean_a": float(np.mean(a)),
    }
    if b is not None:
        details["mean_b"] = float(np.mean(b))
    if design.can_reach_alpha:
        res = _t_run(kind, xa, xb, alternative)
        statistic, p_support = float(res.statistic), float(res.pvalue)
        p_refute = float(_t_run(kind, xa, xb, opposite).pvalue)
        ci_res = _t_run(kind, xa, xb, "two-sided").confidence_interval(1 - alpha)
        ci = (float(ci_res.low), float(ci_res.high))
        details["df"] = float(res.df)
    else:
        statistic = p_support = p_refute = float("nan")
        ci = (float("nan"), float("nan"))
        details["reason"] = design.message
    if log:
        point, ci = math.exp(point), (math.exp(ci[0]), math.exp(ci[1]))
    sign = ">" if alternative == "greater" else "<"
    claim = f"a {sign} b" if b is not None else f"mean {sign} {1 if log else 0}"
    return TestResult(
        test=f"one-sided {_T_NAMES[kind]}{' on log values' if log else ''} (claim: {claim})",
        statistic=statistic,
        p_support=p_support,
        p_refute=p_refute,
        effect=point,
        effect_name=_effect_name(kind, log),
        ci=ci,
        ci_level=1 - alpha,
        n=_sizes(kind, a, b),
        design=design,
        details=details,
    )


def equivalence_test(
    a: Any,
    b: Any = None,
    *,
    paired: bool = False,
    low: float,
    upp: float,
    log_ratio: bool = False,
    alpha: float = 0.05,
    family_size: int = 1,
) -> TestResult:
    """TOST equivalence test: is the difference (or ratio) of a and b inside [low, upp]?

    Parameters
    ----------
    a, b : array_like, 1-D
        Per-model values; ``b=None`` tests the mean of ``a`` itself (the geometric
        mean with ``log_ratio``).
    paired : bool
        Paired TOST (``statsmodels ttost_paired``); otherwise Welch TOST
        (``ttost_ind(usevar="unequal")``).
    low, upp : float
        Equivalence margin, declared before the run. Differences a − b, or ratios
        a / b when ``log_ratio`` (the usual 0.80 and 1.25); the test then runs on
        log values against ``log(low)``, ``log(upp)``.
    log_ratio : bool
        Test on the log scale; values must be positive.
    alpha : float in (0, 0.5)
        Level of each one-sided test; the CI is the (1 − 2α) interval.
    family_size : int
        Holm family size for the design check.

    Returns
    -------
    TestResult
        ``p_support`` is the TOST p (the larger of the two one-sided p's), so it is
        below α iff the (1 − 2α) CI lies inside the margin. ``p_refute`` is the
        smaller of the one-sided p's for "difference < low" and "difference > upp",
        so it is below α iff the CI lies entirely outside the margin.
    """
    owner = "equivalence_test"
    _check_alpha(alpha, owner, high=0.5)
    _check_family_size(family_size, owner)
    _check_margin(low, upp, owner, ratio=log_ratio)
    a = _values(a, "a", owner, positive=log_ratio)
    b = None if b is None else _values(b, "b", owner, positive=log_ratio)
    t_kind = _t_kind(b, paired, owner)
    kind = {"t1": "tost1", "t_paired": "tost_paired", "t_welch": "tost_welch"}[t_kind]
    if kind == "tost_paired":
        _check_paired(a, b, owner)
    xa, xb = (np.log(a), None if b is None else np.log(b)) if log_ratio else (a, b)
    lo, hi = (math.log(low), math.log(upp)) if log_ratio else (float(low), float(upp))
    design = design_check(kind, _design_n(kind, a, b), alpha=alpha, family_size=family_size)
    point = _point_difference(kind, xa, xb)
    d, d_name = _standardized(t_kind, xa, xb)
    details: dict[str, Any] = {
        "margin": (float(low), float(upp)),
        "margin_scale": "ratio a / b" if log_ratio else "difference a − b",
        "log_ratio": log_ratio,
        "standardized_effect": d,
        "standardized_effect_name": d_name,
    }
    if design.can_reach_alpha:
        # Zero variance (e.g. every fp16 model has exactly the base's accuracy) is a legitimate
        # degenerate case: t = ±inf and p ∈ {0, 1}; silence numpy's divide warning for it.
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "tost_welch":
                p_tost, (t_lo, p_lo, df_lo), (t_hi, p_hi, df_hi) = ttost_ind(xa, xb, lo, hi, usevar="unequal")
            else:
                x2 = np.zeros_like(xa) if xb is None else xb
                p_tost, (t_lo, p_lo, df_lo), (t_hi, p_hi, df_hi) = ttost_paired(xa, x2, lo, hi)
        # p of "difference < low" and "difference > upp": the complements of the two
        # TOST components, computed from the t distribution to keep tail precision.
        p_below = float(stats.t.cdf(t_lo, df_lo))
        p_above = float(stats.t.sf(t_hi, df_hi))
        p_support, p_refute = float(p_tost), min(p_below, p_above)
        statistic = float(t_lo if p_lo >= p_hi else t_hi)
        ci_res = _t_run(t_kind, xa, xb, "two-sided").confidence_interval(1 - 2 * alpha)
        ci = (float(ci_res.low), float(ci_res.high))
        details.update(
            t_lower=float(t_lo), p_lower=float(p_lo), t_upper=float(t_hi), p_upper=float(p_hi),
            p_below_margin=p_below, p_above_margin=p_above, df=float(df_lo),
        )
    else:
        statistic = p_support = p_refute = float("nan")
        ci = (float("nan"), float("nan"))
        details["reason"] = design.message
    if log_ratio:
        point, ci = math.exp(point), (math.exp(ci[0]), math.exp(ci[1]))
    scale = "log ratio" if log_ratio else "difference"
    return TestResult(
        test=f"TOST equivalence, {_T_NAMES[t_kind]} on the {scale}, margin [{low:g}, {upp:g}]",
        statistic=statistic,
        p_support=p_support,
        p_refute=p_refute,
        effect=point,
        effect_name=_effect_name(t_kind, log_ratio),
        ci=ci,
        ci_level=1 - 2 * alpha,
        n=_sizes(kind, a, b),
        design=design,
        details=details,
    )


def difference_test(
    a: Any,
    b: Any,
    *,
    low: float,
    upp: float,
    alpha: float = 0.05,
    family_size: int = 1,
) -> TestResult:
    """Two-sided Welch test of the claim "a and b differ", refuted by equivalence.

    Parameters
    ----------
    a, b : array_like, 1-D
        Per-model values of the two groups.
    low, upp : float
        Equivalence margin on the difference a − b; equivalence (TOST) refutes
        the claim.
    alpha : float in (0, 0.5)
    family_size : int

    Returns
    -------
    TestResult
        ``p_support`` is the two-sided Welch p; ``p_refute`` the Welch TOST p.
        Effect = mean difference with its (1 − α) CI.
    """
    owner = "difference_test"
    _check_alpha(alpha, owner, high=0.5)
    _check_family_size(family_size, owner)
    _check_margin(low, upp, owner, ratio=False)
    a = _values(a, "a", owner)
    b = _values(b, "b", owner)
    design = design_check("t_welch", (a.size, b.size), alpha=alpha, family_size=family_size)
    d, d_name = _standardized("t_welch", a, b)
    details: dict[str, Any] = {
        "margin": (float(low), float(upp)),
        "standardized_effect": d,
        "standardized_effect_name": d_name,
    }
    if design.can_reach_alpha:
        res = stats.ttest_ind(a, b, equal_var=False, alternative="two-sided")
        statistic, p_support = float(res.statistic), float(res.pvalue)
        p_refute = float(ttost_ind(a, b, float(low), float(upp), usevar="unequal")[0])
        ci_res = res.confidence_interval(1 - alpha)
        ci = (float(ci_res.low), float(ci_res.high))
        details["df"] = float(res.df)
    else:
        statistic = p_support = p_refute = float("nan")
        ci = (float("nan"), float("nan"))
        details["reason"] = design.message
    return TestResult(
        test=f"two-sided Welch t-test (refuted by TOST, margin [{low:g}, {upp:g}])",
        statistic=statistic,
        p_support=p_support,
        p_refute=p_refute,
        effect=float(a.mean() - b.mean()),
        effect_name="mean difference (a − b)",
        ci=ci,
        ci_level=1 - alpha,
        n={"a": int(a.size), "b": int(b.size)},
        design=design,
        details=details,
    )


# --------------------------------------------------------------------------- trend


@functools.lru_cache(maxsize=None)
def _page_null_one_block(n_levels: int) -> dict[int, float]:
    """Null distribution of one block's L = Σ j·rank_j over uniform rank permutations."""
    weights = np.arange(1, n_levels + 1)
    counts: dict[int, int] = {}
    for perm in itertools.permutations(range(1, n_levels + 1)):
        value = int(np.dot(weights, perm))
        counts[value] = counts.get(value, 0) + 1
    total = math.factorial(n_levels)
    return {v: c / total for v, c in counts.items()}


def _page(data: np.ndarray) -> tuple[float, float, str]:
    """Page's L and its one-sided p for an increasing trend along the columns.

    scipy's ``page_trend_test`` refuses one block or two levels although the test
    is well defined there; those shapes get an exact enumeration of the null
    distribution instead (normal approximation for one block beyond 8 levels).
    Ties within a block get average ranks; like scipy's exact method, the null
    distribution assumes untied ranks.
    """
    m, k = data.shape
    if m >= 2 and k >= 3:
        res = stats.page_trend_test(data, method="auto")
        return float(res.statistic), float(res.pvalue), str(res.method)
    ranks = stats.rankdata(data, axis=1)
    big_l = float(np.sum(ranks * np.arange(1, k + 1)))
    if k > _PAGE_ENUMERATE_MAX_LEVELS:
        mean = m * k * (k + 1) ** 2 / 4
        var = m * k**2 * (k + 1) * (k**2 - 1) / 144
        return big_l, float(stats.norm.sf((big_l - mean) / math.sqrt(var))), "asymptotic"
    one = _page_null_one_block(k)
    lo = min(one)
    probs = np.zeros(max(one) - lo + 1)
    for v, p in one.items():
        probs[v - lo] = p
    total = np.array([1.0])
    for _ in range(m):
        total = np.convolve(total, probs)
    values = m * lo + np.arange(total.size)
    p = float(np.clip(total[values >= big_l - 1e-9].sum(), 0.0, 1.0))
    return big_l, p, "exact"


def trend_test(
    values: Any,
    levels: Any = None,
    *,
    alternative: str = "increasing",
    alpha: float = 0.05,
    family_size: int = 1,
    rng: np.random.Generator | int | None = None,
) -> TestResult:
    """Page's L test for a monotone trend over levels, seeds as blocks.

    Parameters
    ----------
    values : array_like, shape (n_seeds, n_levels)
        One row per seed (block: models sharing a seed), one column per level.
    levels : array_like, shape (n_levels,), optional
        Distinct level values (e.g. retained fraction); default 0, 1, ….
        Columns are ordered by level before testing.
    alternative : {"increasing", "decreasing"}
        The claimed trend of values with level.
    alpha : float
        Level; the effect CI is the (1 − α) percentile bootstrap over seeds.
    family_size : int
        Holm family size for the design check.
    rng : numpy.random.Generator or int, optional
        Bootstrap randomness; None means seed 0 (results are deterministic).

    Returns
    -------
    TestResult
        ``p_support``: Page's test with columns in the claimed order; ``p_refute``:
        the same test on the reversed order. Effect = mean over seeds of Kendall's
        tau between level and value (a constant row counts as tau 0), CI by
        bootstrap over seeds (NaN with one seed). ``details`` has the per-seed
        taus and OLS slopes and their means.
    """
    owner = "trend_test"
    check_choice("alternative", owner, alternative, ("increasing", "decreasing"))
    _check_alpha(alpha, owner)
    _check_family_size(family_size, owner)
    values = _values(values, "values", owner, ndim=2)
    m, k = values.shape
    if k < 2:
        raise invalid("values", owner, "an array with at least 2 levels (columns)", f"shape {values.shape}")
    if levels is None:
        levels = np.arange(k, dtype=float)
    else:
        levels = _values(levels, "levels", owner)
        if levels.size != k:
            raise invalid("levels", owner, f"one level per column of 'values' ({k})", f"{levels.size} levels")
        if np.unique(levels).size != k:
            raise invalid("levels", owner, "distinct level values", levels.tolist())
    order = np.argsort(levels)
    levels, values = levels[order], values[:, order]
    claimed = values if alternative == "increasing" else values[:, ::-1]
    statistic, p_support, method = _page(claimed)
    _, p_refute, _ = _page(claimed[:, ::-1])
    design = design_check("page", m, n_levels=k, alpha=alpha, family_size=family_size)

    taus = np.array([stats.kendalltau(levels, row).statistic for row in values], dtype=float)
    constant_rows = int(np.sum(np.isnan(taus)))
    taus = np.nan_to_num(taus, nan=0.0)  # a constant row has no trend
    slopes = np.array([np.polyfit(levels, row, 1)[0] for row in values], dtype=float)
    generator = np.random.default_rng(0 if rng is None else rng)
    if m >= 2:
        ci = bootstrap_ci(taus, np.mean, level=1 - alpha, rng=generator)
    else:
        ci = (float("nan"), float("nan"))
    return TestResult(
        test=f"Page's L trend test, seeds as blocks (claim: {alternative})",
        statistic=statistic,
        p_support=p_support,
        p_refute=p_refute,
        effect=float(taus.mean()),
        effect_name="mean Kendall's tau (level vs value) over seeds",
        ci=ci,
        ci_level=1 - alpha,
        n={"seeds": int(m), "levels": int(k)},
        design=design,
        details={
            "alternative": alternative,
            "page_method": method,
            "levels": levels.tolist(),
            "kendall_tau_per_seed": taus.tolist(),
            "constant_rows": constant_rows,
            "ols_slope_per_seed": slopes.tolist(),
            "mean_ols_slope": float(slopes.mean()),
        },
    )


# --------------------------------------------------------------------------- families


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (as statsmodels ``multipletests(method="holm")``).

    None and NaN entries pass through unchanged and do not count toward the
    family size m.
    """
    p_list = list(p_values)
    keep = [i for i, p in enumerate(p_list) if p is not None and not math.isnan(p)]
    out: list[float | None] = list(p_list)
    if not keep:
        return out
    raw = np.array([p_list[i] for i in keep], dtype=float)
    if np.any((raw < 0) | (raw > 1)):
        raise invalid("p_values", "holm", "a sequence of numbers in [0, 1] or None", p_list)
    # Same step-down as statsmodels' multipletests(method="holm"), which calls
    # gc.collect() on every Holm call (~0.2 s with torch loaded); the test
    # suite checks this against multipletests.
    order = np.argsort(raw, kind="stable")
    stepped = np.maximum.accumulate(raw[order] * np.arange(raw.size, 0, -1))
    adjusted = np.empty_like(raw)
    adjusted[order] = np.minimum(stepped, 1.0)
    for i, p in zip(keep, adjusted):
        out[i] = float(p)
    return out


def _significant(p: float | None, alpha: float) -> bool:
    return p is not None and not math.isnan(p) and p < alpha


def verdict_from(p_support: float | None, p_refute: float | None, alpha: float) -> str:
    """``"supported"`` if p_support < α, else ``"refuted"`` if p_refute < α, else ``"inconclusive"``.

    None or NaN p-values count as not significant.
    """
    _check_alpha(alpha, "verdict_from")
    if _significant(p_support, alpha):
        return "supported"
    if _significant(p_refute, alpha):
        return "refuted"
    return "inconclusive"


def adjust_family(evidence: Sequence[Evidence], alpha: float = 0.05) -> list[Evidence]:
    """Holm-adjust a family of parametrized cases and set their verdicts.

    ``p_value`` and ``p_refute`` are adjusted separately across the family;
    ``p_adjusted``, ``p_refute_adjusted`` and ``verdict`` are set from the adjusted
    values. Evidence with verdict ``"error"`` is left alone and is not part of the
    family; evidence without any p-value (e.g. a number claim) keeps its verdict.

    Returns
    -------
    list of Evidence
        New objects in the input order; the inputs are not modified.
    """
    _check_alpha(alpha, "adjust_family")
    out = [dataclasses.replace(e, details=dict(e.details), notes=list(e.notes)) for e in evidence]
    members = [e for e in out if e.verdict != "error"]
    adj_s = holm([e.p_value for e in members])
    adj_r = holm([e.p_refute for e in members])
    m_s = sum(p is not None and not math.isnan(p) for p in (e.p_value for e in members))
    m_r = sum(p is not None and not math.isnan(p) for p in (e.p_refute for e in members))
    for e, ps, pr in zip(members, adj_s, adj_r):
        e.p_adjusted, e.p_refute_adjusted = ps, pr
        if e.p_value is None and e.p_refute is None:
            continue
        e.verdict = verdict_from(ps, pr, alpha)
        e.details["family"] = {"method": "holm", "alpha": alpha, "m_support": m_s, "m_refute": m_r}
    return out


# --------------------------------------------------------------------------- design


_DESIGN_NAMES = {
    "t1": "One-sample t-test",
    "t_paired": "Paired t-test",
    "t_welch": "Welch t-test",
    "tost1": "One-sample TOST",
    "tost_paired": "Paired TOST",
    "tost_welch": "Welch TOST",
}


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def design_check(
    kind: str,
    n: int | Sequence[int],
    *,
    n_levels: int | None = None,
    alpha: float = 0.05,
    family_size: int = 1,
    paired: bool = False,
) -> DesignCheck:
    """Can this design (seeds, levels) reach p < α / family_size at all?

    Parameters
    ----------
    kind : {"t1", "t_paired", "t_welch", "tost1", "tost_paired", "tost_welch", "page"}
    n : int or (int, int)
        Seeds (models) per group; blocks for "page"; a pair (n_a, n_b) or one
        int for both groups for the Welch kinds.
    n_levels : int
        Levels (columns) for "page"; required there, ignored otherwise.
    alpha, family_size
        The first Holm step needs p < α / family_size.
    paired : bool
        Whether the test pairs its groups; True with a Welch kind is an error.

    Returns
    -------
    DesignCheck
        t-based kinds: reachable iff df ≥ 1 (n ≥ 2, per group for Welch), with
        power at Cohen's d = 1 for a one-sided test at α / m (statsmodels
        ``TTestPower``/``TTestIndPower``; the latter assumes equal variances, an
        approximation for Welch; for TOST it is the power of each one-sided
        component when the true difference is d = 1 inside the margin).
        "page": the smallest p the implemented test gives (perfectly ordered data:
        exact ``(1/k!)^m`` where the exact distribution is used).
    """
    owner = "design_check"
    check_choice("kind", owner, kind, DESIGN_KINDS)
    _check_alpha(alpha, owner)
    _check_family_size(family_size, owner)
    if paired and kind.endswith("welch"):
        raise invalid("paired", owner, f"False for the unpaired kind {kind!r}", paired)
    level = alpha / family_size
    level_txt = f"α/m = {level:.3g}"

    if kind == "page":
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise invalid("n", owner, "an int >= 1 (seeds, the blocks of Page's test)", n)
        if isinstance(n_levels, bool) or not isinstance(n_levels, (int, np.integer)) or n_levels < 2:
            raise invalid("n_levels", owner, "an int >= 2 for kind 'page'", n_levels)
        perfect = np.tile(np.arange(n_levels, dtype=float), (int(n), 1))
        min_p = _page(perfect)[1]
        shape = f"{_seeds(int(n))} × {n_levels} levels"
        if min_p < level:
            msg = f"Page's trend test with {shape} can give p as low as {min_p:.2g} ({level_txt})."
        else:
            msg = (
                f"Page's trend test with {shape} cannot give p below {min_p:.2g} "
                f"({level_txt}): the design cannot reach significance."
            )
        return DesignCheck(can_reach_alpha=bool(min_p < level), min_p=float(min_p), power=None, message=msg)

    if kind.endswith("welch"):
        sizes = (n, n) if isinstance(n, (int, np.integer)) and not isinstance(n, bool) else tuple(n)
        if len(sizes) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise invalid("n", owner, "an int >= 1 or a pair of them (seeds per group)", n)
        n_a, n_b = int(sizes[0]), int(sizes[1])
        reach = min(n_a, n_b) >= 2
        who = f"{n_a} and {n_b} seeds"
        power = (
            float(TTestIndPower().power(effect_size=_REFERENCE_D, nobs1=n_a, ratio=n_b / n_a, alpha=level, alternative="larger"))
            if reach
            else None
        )
        short = "needs at least 2 seeds in each group"
    else:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise invalid("n", owner, "an int >= 1 (seeds)", n)
        reach = n >= 2
        who = _seeds(int(n)) if kind != "t_paired" and kind != "tost_paired" else f"{int(n)} pairs"
        power = (
            float(TTestPower().power(effect_size=_REFERENCE_D, nobs=int(n), alpha=level, alternative="larger"))
            if reach
            else None
        )
        short = "needs at least 2 seeds"
    name = _DESIGN_NAMES[kind]
    if not reach:
        msg = f"{name} with {who} has no degrees of freedom ({short}): the design cannot reach significance."
    elif kind.startswith("tost"):
        msg = (
            f"{name} with {who}: power {power:.2f} per one-sided component at d = 1 "
            f"inside the margin ({level_txt})."
        )
    else:
        msg = f"{name} with {who}: power {power:.2f} at d = 1, one-sided ({level_txt})."
    return DesignCheck(can_reach_alpha=bool(reach), min_p=None, power=power, message=msg)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    values: Any,
    statistic: Callable[..., Any] = np.mean,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | int,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over per-model values.

    Parameters
    ----------
    values : array_like, 1-D
        One value per trained model (seed).
    statistic : callable
        Reduces a 1-D array to a number; may take an ``axis`` keyword (vectorized).
    level : float in (0, 1)
    n_resamples : int
    rng : numpy.random.Generator or int
        Explicit randomness; the same rng state gives the same interval.

    Returns
    -------
    (low, high)
        ``scipy.stats.bootstrap(method="percentile")``; (NaN, NaN) for one value.
    """
    owner = "bootstrap_ci"
    check_in_range("level", owner, level, 0.0, 1.0)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise invalid("n_resamples", owner, "an int >= 1", n_resamples)
    if not isinstance(rng, (np.random.Generator, int, np.integer)) or isinstance(rng, bool):
        raise invalid("rng", owner, "a numpy.random.Generator or an int seed", rng)
    values = _values(values, "values", owner)
    if values.size < 2:
        return (float("nan"), float("nan"))
    generator = np.random.default_rng(rng)
    res = stats.bootstrap(
        (values,),
        statistic,
        n_resamples=int(n_resamples),
        confidence_level=level,
        method="percentile",
        **{_BOOTSTRAP_RNG_KW: generator},
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))
