"""The record of one claim instance: verdict, the tests behind it, power, stability, provenance.

One :class:`Evidence` per claim instance (a claim in one profile
configuration, e.g. ``MW-3[digits-lenet5,text]``). It is built by
:func:`analysis.stats.family.decide_family` from a claim's measurement (per-unit
values and a decision rule); the report and the findings baseline read its
JSON form (:meth:`Evidence.to_dict`).

JSON fields (every key always present; numbers that are not finite become
``null``):

========================  ==================================================================
``claim_id``              ``"MW-3"``
``instance_id``           ``"MW-3[digits-lenet5,text]"`` (stable; the baseline's key)
``params``                the case: ``{"exp": "digits-lenet5", "variant": "text"}``
``sentence``              the claim in one sentence
``verdict``               ``supported`` / ``refuted`` / ``inconclusive`` / ``error``
``asserted``              False: reported only (number claims off their setup, extensions, …)
``not_asserted_reason``   why not asserted (``""`` when asserted)
``form``                  ``directional``, ``non-inferiority``, ``equivalence``, ``trend``,
                          ``universal``, ``existential``, ``exact``, ``number`` (CLAIMS.md)
``test``                  the deciding test in words
``unit``                  what one replicate is (``"base model B_i with its own independent I_i"``)
``conditional_on``        a model shared by every unit (the instance is conditional on it), or null
``statistic``             the deciding part's test statistic
``p_value``               p of the test for support (raw); for compound rules, combined
``p_adjusted``            the same, Holm-adjusted over the claim's instances
``p_refute``              p of the test for refutation (raw; combined for compound rules)
``p_refute_adjusted``     the same, Holm-adjusted
``decided_by``            ``"support"`` / ``"refute"`` / null (inconclusive): which adjusted p < α
``alpha``                 the significance level of the profile
``effect``                the deciding part's effect on its analysis scale (``scale``)
``effect_name``           what ``effect`` is (``"mean log distance ratio Q/I"``)
``scale``                 ``"log ratio"``, ``"points"``, ``"relative %"``, ``"Kendall tau"``, …
``ci``                    ``[low, high]``: the interval at the level the decision used
``ci_level``              e.g. 0.90 for a one-sided test at α = 0.05 (its (1 − α) bound)
``reference``             the value the effect is tested against (0, a bound L, a margin centre)
``margin``                ``[low, high]`` for equivalence, ``[L, null]`` for non-inferiority, else null
``effect_of_interest``    the smallest effect of interest (δ, or the margin), declared in the profile
``n``                     ``{"units": 8}`` (``{"units": 16, "a": 8, "b": 8}`` for two groups)
``power``                 power of the design as run at the effect of interest (by simulation)
``mde``                   minimum detectable effect at 80 % power (same scale as
                          ``effect_of_interest``; for compound rules, relative to it: see
                          ``power_detail``)
``power_detail``          method, level, simulations, SDs, per-part effects of interest
``design_status``         what the design says about the verdict: ``decided`` (supported or
                          refuted, whatever the power), ``inconclusive-powered`` (power ≥ 0.8
                          at the effect of interest: the effect is smaller than it),
                          ``inconclusive-underpowered``; null without a power analysis
``units_needed``          total units that would give power 0.8 at the effect of interest,
                          simulated from the variance this run measured (every group scaled
                          in proportion); null when more than the search's limit would be
                          needed (``power_detail["units_needed_search"]``) or nothing varies
``underpowered``          ``design_status == "inconclusive-underpowered"`` (a decided verdict
                          is never labelled underpowered; its power is a property of the design)
``cannot_decide``         no data could reach p < α with this design (e.g. one unit)
``stability``             share of unit resamples that give the same verdict (null: not computed)
``fragile``               stability < 0.8
``deviations``            departures from the paper that this instance depends on
``parts``                 every component test (compound rules): name, form, test, p_support,
                          p_refute, effect, ci, ci_level, scale, reference, margin,
                          effect_of_interest, n, decided (bool), values (per unit)
``replicates``            ``{"units": [...unit ids], "values": {part name: [per-unit values]}}``
``paper_value``           the paper's number(s), in the paper's units
``ours_value``            ours, in the same units
``figures``               report-relative paths of figures for this instance
``notes``                 human sentences (training health, exact-zero variance, …)
``environment``           torch version, numerics mode, CPU capability, threads, device
``details``               anything else the claim recorded (per-unit tables, definitions)
========================  ==================================================================
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from analysis._validation import check_choice, invalid

__all__ = ["VERDICTS", "FORMS", "DESIGN_STATUSES", "Evidence", "jsonable", "instance_id"]

VERDICTS = ("supported", "refuted", "inconclusive", "error")
FORMS = ("directional", "non-inferiority", "equivalence", "trend", "universal", "existential", "exact", "number")

#: Stability below this labels a verdict fragile; power below it labels a design underpowered (CLAIMS.md).
FRAGILE_BELOW = 0.8
UNDERPOWERED_BELOW = 0.8
#: What the design says about a verdict (``Evidence.design_status``; :func:`analysis.stats.family.design_status`).
DESIGN_STATUSES = ("decided", "inconclusive-powered", "inconclusive-underpowered")


def instance_id(claim_id: str, params: Mapping) -> str:
    """``claim_id[v1,key=v2,...]``: strings bare, other values as ``key=value``; no params gives ``claim_id``."""
    if not params:
        return claim_id
    parts = [v if isinstance(v, str) else f"{k}={v}" for k, v in params.items()]
    return f"{claim_id}[{','.join(parts)}]"


@dataclass
class Evidence:
    """The record of one claim instance (see the module docstring for every field)."""

    claim_id: str
    params: dict = field(default_factory=dict)
    sentence: str = ""
    verdict: str = "inconclusive"
    asserted: bool = True
    not_asserted_reason: str = ""
    form: str = ""
    test: str = ""
    unit: str = ""
    conditional_on: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    p_refute: float | None = None
    p_refute_adjusted: float | None = None
    decided_by: str | None = None
    alpha: float = 0.05
    effect: float | None = None
    effect_name: str = ""
    scale: str = ""
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    reference: float | None = None
    margin: tuple[float | None, float | None] | None = None
    effect_of_interest: float | None = None
    n: dict = field(default_factory=dict)
    power: float | None = None
    mde: float | None = None
    power_detail: dict = field(default_factory=dict)
    design_status: str | None = None
    units_needed: int | None = None
    underpowered: bool = False
    cannot_decide: bool = False
    stability: float | None = None
    fragile: bool = False
    deviations: list[str] = field(default_factory=list)
    parts: list[dict] = field(default_factory=list)
    replicates: dict = field(default_factory=dict)
    paper_value: Any = None
    ours_value: Any = None
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("verdict", "Evidence", self.verdict, VERDICTS)
        if self.form:
            check_choice("form", "Evidence", self.form, FORMS)
        if self.design_status is not None:
            check_choice("design_status", "Evidence", self.design_status, DESIGN_STATUSES)

    @property
    def instance_id(self) -> str:
        return instance_id(self.claim_id, self.params)

    def to_dict(self) -> dict:
        """JSON-able dict with ``instance_id`` added: NaN/inf become None, numpy values become Python."""
        return jsonable({"instance_id": self.instance_id, **dataclasses.asdict(self)})

    @classmethod
    def from_dict(cls, d: Mapping) -> Evidence:
        """Inverse of :meth:`to_dict` (``instance_id`` is derived, so it is ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"instance_id"})
        if unknown:
            raise invalid("d", "Evidence.from_dict", f"a dict with keys among {sorted(names)}", unknown)
        kw = {k: v for k, v in d.items() if k in names}
        for name in ("ci", "margin"):
            if kw.get(name) is not None:
                kw[name] = tuple(kw[name])
        return cls(**kw)

    @classmethod
    def from_error(cls, claim_id: str, params: Mapping, message: str, **kwargs: Any) -> Evidence:
        """Evidence for an experiment that could not run (verdict ``"error"``)."""
        notes = [*kwargs.pop("notes", ()), message]
        return cls(claim_id=claim_id, params=dict(params), verdict="error", notes=notes, **kwargs)


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf → None, numpy scalars/arrays → Python, tuples → lists, paths → str."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"cannot encode a value of type {type(obj).__name__} as JSON: {obj!r}")

