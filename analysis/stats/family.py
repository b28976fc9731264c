"""From a claim's measurements to verdicts: Holm over the family, power, MDE and stability.

A claim's *family* is its instances in one profile (CLAIMS.md, Multiplicity).
Each instance arrives as a :class:`Measurement` — per-unit values and the
decision rule — and leaves as an :class:`~analysis.stats.evidence.Evidence`:

1. every rule is evaluated on its units: ``p_support`` and ``p_refute``
   (settings inside an instance are already combined by the rule);
2. both are Holm-adjusted over the asserted instances that produced a p;
   supported if the adjusted support p < α, refuted if the adjusted refute
   p < α, otherwise inconclusive;
3. power at the effect of interest and the MDE (:mod:`analysis.stats.power`), at
   α/m;
4. **stability**: the units are resampled with replacement (within each
   group; instances measured on the same units get the same resample), the
   whole family decision — rules and Holm — is rerun, and the share of
   resamples giving the original verdict is recorded. Below 0.8 the verdict
   is labelled fragile (CLAIMS.md, Robustness).

Instances that are reported but not asserted (extensions, number claims off
their setup) are decided on their own raw p and do not enter the family.
Claims decided without a test (number and exact claims) come with their
verdict.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis._validation import check_in_range, invalid
from analysis.stats.evidence import FRAGILE_BELOW, FORMS, UNDERPOWERED_BELOW, Evidence, instance_id
from analysis.stats.power import MAX_UNITS, PowerModel
from analysis.stats.rules import Outcome, Rule
from analysis.stats.units import UnitTable, column_key

__all__ = ["Measurement", "decide_family", "design_status", "holm", "verdict_from", "FamilySettings"]


@dataclass
class Measurement:
    """What a claim's measurement returns for one instance.

    Either ``table`` + ``rule`` (decided by a test), or ``verdict`` + ``form``
    (a number or exact claim decided without a p-value).
    """

    claim_id: str = ""  # set by the claim layer (fixtures/claims.py) when a claim function returns
    params: dict = field(default_factory=dict)
    table: UnitTable | None = None
    rule: Rule | None = None
    sentence: str = ""
    paper_value: Any = None
    ours_value: Any = None
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    deviations: list[str] = field(default_factory=list)
    asserted: bool = True
    not_asserted_reason: str = ""
    verdict: str | None = None
    form: str = ""
    test: str = ""
    effect: float | None = None
    effect_name: str = ""

    def __post_init__(self) -> None:
        if (self.rule is None) != (self.table is None):
            raise invalid("rule", "Measurement", "given together with 'table'", self.rule)
        if self.rule is None and self.verdict is None:
            raise invalid("verdict", "Measurement", "a verdict when there is no rule (number or exact claim)", None)
        if self.form and self.form not in FORMS:
            raise invalid("form", "Measurement", f"one of {FORMS}", self.form)
        if not self.asserted and not self.not_asserted_reason:
            raise invalid("not_asserted_reason", "Measurement", "a reason when the instance is not asserted", "")

    @property
    def instance_id(self) -> str:
        return instance_id(self.claim_id, self.params)


@dataclass(frozen=True)
class FamilySettings:
    """Fixed before the run (profile): α, power simulations, stability resamples, seed."""

    alpha: float = 0.05
    power_simulations: int = 2000
    stability_resamples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        check_in_range("alpha", "FamilySettings", self.alpha, 0.0, 0.5)
        if self.power_simulations != 0 and self.power_simulations < 10:
            raise invalid("power_simulations", "FamilySettings", "0 (no power analysis) or an int >= 10",
                          self.power_simulations)

    def seed_for(self, text: str) -> int:
        """A seed for one named simulation (``"power:<instance id>"``): fixed by the profile's seed and the name."""
        return (self.seed * 1_000_003 + zlib.crc32(text.encode())) % 2**32


# --------------------------------------------------------------------------- Holm


def holm(p: Any) -> np.ndarray:
    """Holm-adjusted p-values along the last axis; NaN entries pass through and do not count in m.

    Same step-down as ``statsmodels.stats.multitest.multipletests(method="holm")``
    (checked in the tests), vectorised over leading axes for resampling.
    """
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p.copy()
    if np.any((p < 0) | (p > 1)):
        raise invalid("p", "holm", "p-values in [0, 1] or NaN", p)
    finite = ~np.isnan(p)
    m = finite.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1, kind="stable")
    sorted_p = np.take_along_axis(np.where(finite, p, np.inf), order, axis=-1)
    rank = np.arange(p.shape[-1])
    stepped = np.minimum(np.maximum.accumulate(sorted_p * np.maximum(m - rank, 1), axis=-1), 1.0)
    out = np.empty_like(stepped)
    np.put_along_axis(out, order, stepped, axis=-1)
    return np.where(finite, out, np.nan)


def verdict_from(p_support: Any, p_refute: Any, alpha: float) -> np.ndarray | str:
    """``supported`` if p_support < α, else ``refuted`` if p_refute < α, else ``inconclusive`` (vectorised)."""
    ps, pr = np.asarray(p_support, dtype=float), np.asarray(p_refute, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(ps < alpha, "supported", np.where(pr < alpha, "refuted", "inconclusive"))
    return str(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- the family


def _resampled_pvalues(measurements: Sequence[Measurement], settings: FamilySettings) -> tuple[np.ndarray, np.ndarray]:
    """(B, m) support and refute p-values with the units of every measurement resampled.

    Measurements on the same units (same ids and groups) share each resample,
    so the family's dependence between its instances is kept.
    """
    b = settings.stability_resamples
    rng = np.random.default_rng(settings.seed_for("stability:" + measurements[0].claim_id if measurements else ""))
    draws: dict[tuple, dict] = {}
    ps, pr = [], []
    for meas in measurements:
        table = meas.table
        key = (tuple(table.ids), tuple(table.group_of()))
        if key not in draws:
            draws[key] = {g: rng.integers(0, table.matrix(g)[1].shape[0], size=(b, table.matrix(g)[1].shape[0]))
                          for g in table.groups}
        data = {}
        for g in table.groups:
            cols, mat = table.matrix(g)
            sample = mat[draws[key][g]]  # (B, n_g, k)
            for j, c in enumerate(cols):
                data[column_key(c, g)] = sample[..., j]
        s, r = meas.rule.pvalues(data)
        ps.append(np.broadcast_to(s, (b,)))
        pr.append(np.broadcast_to(r, (b,)))
    return np.stack(ps, axis=-1), np.stack(pr, axis=-1)


def _leaf_row(leaf: Outcome, name: str, decider: Outcome) -> dict:
    return {
        "name": name, "form": leaf.form, "test": leaf.test, "p_support": leaf.p_support,
        "p_refute": leaf.p_refute, "effect": leaf.effect, "effect_name": leaf.effect_name, "scale": leaf.scale,
        "ci": list(leaf.ci), "ci_level": leaf.ci_level, "reference": leaf.reference,
        "margin": None if leaf.margin is None else list(leaf.margin), "effect_of_interest": leaf.effect_of_interest,
        "statistic": leaf.statistic, "estimate": leaf.estimate, "se": leaf.se, "df": leaf.df, "n": dict(leaf.n),
        "decided": leaf is decider, "values": leaf.values,
    }


def _parts(outcome: Outcome, decider: Outcome) -> list[dict]:
    """Every leaf test, named by its path through the combinators below the top level."""
    rows: list[dict] = []

    def walk(node: Outcome, path: list[str]) -> None:
        if not node.parts:
            rows.append(_leaf_row(node, " / ".join([*path, node.name]), decider))
            return
        for child in node.parts:
            walk(child, path + ([child.name] if child.parts else []))

    walk(outcome, [])
    return rows


def _form(rule: Rule | None, measurement: Measurement) -> str:
    return rule.form if rule is not None else measurement.form


def decide_family(
    measurements: Sequence[Measurement | Evidence],
    settings: FamilySettings = FamilySettings(),
    *,
    environment: Mapping | None = None,
) -> list[Evidence]:
    """Decide every instance of one claim (see the module docstring); errors pass through unchanged."""
    alpha = settings.alpha
    tested = [m for m in measurements if isinstance(m, Measurement) and m.rule is not None]
    outcomes = {id(m): m.rule.evaluate(m.table.data(), alpha) for m in tested}
    members = [m for m in tested if m.asserted]
    raw_s = np.array([outcomes[id(m)].p_support for m in members], dtype=float)
    raw_r = np.array([outcomes[id(m)].p_refute for m in members], dtype=float)
    adj_s, adj_r = holm(raw_s), holm(raw_r)
    m_support = int(np.sum(~np.isnan(raw_s)))
    adjusted = {id(m): (float(s), float(r)) for m, s, r in zip(members, adj_s, adj_r)}
    verdicts = {id(m): str(verdict_from(*adjusted[id(m)], alpha)) for m in members}
    for m in tested:
        if not m.asserted:  # decided on its own, outside the family
            o = outcomes[id(m)]
            adjusted[id(m)] = (o.p_support, o.p_refute)
            verdicts[id(m)] = str(verdict_from(o.p_support, o.p_refute, alpha))

    stability: dict[int, float] = {}
    if settings.stability_resamples > 0 and tested:
        if members:
            ps, pr = _resampled_pvalues(members, settings)
            v = verdict_from(holm(ps), holm(pr), alpha)
            for j, m in enumerate(members):
                stability[id(m)] = float(np.mean(v[:, j] == verdicts[id(m)]))
        for m in tested:
            if not m.asserted:
                ps, pr = _resampled_pvalues([m], settings)
                stability[id(m)] = float(np.mean(verdict_from(ps[:, 0], pr[:, 0], alpha) == verdicts[id(m)]))

    out: list[Evidence] = []
    for m in measurements:
        if isinstance(m, Evidence):
            out.append(m)
            continue
        if m.rule is None:
            out.append(_untested(m, alpha, environment))
            continue
        o = outcomes[id(m)]
        verdict = verdicts[id(m)]
        decider = o.deciding(verdict)
        level = alpha / max(m_support, 1) if m.asserted else alpha
        needed, curve = None, []
        if settings.power_simulations:
            model = PowerModel(m.table, m.rule, simulations=settings.power_simulations,
                               seed=settings.seed_for("power:" + m.instance_id))
            can_decide = model.can_decide(level)
            power = model.power(level) if can_decide else 0.0
            factor = model.mde_factor(level) if can_decide else float("nan")
            sds = model.sd()
            if model.units >= 2:  # nothing to scale below two units (no spread was measured)
                needed = model.units_needed(level)
                # Far enough to read a profile with several times the units, or twice the units needed.
                curve = model.power_curve(level, up_to=max(4 * model.units, 2 * (needed or MAX_UNITS // 2), 20))
        else:  # power analysis switched off (fast simulations of the construction)
            can_decide, power, factor, sds = not math.isnan(o.p_support), None, float("nan"), {}
        eoi = decider.effect_of_interest
        mde = _mde(factor, eoi, decider.effect_bound)
        p_adj_s, p_adj_r = adjusted[id(m)]
        decided_by = {"supported": "support", "refuted": "refute"}.get(verdict)
        st = stability.get(id(m))
        notes = list(m.notes)
        zero = [k for k, sd in sds.items() if sd == 0.0]
        if zero:
            notes.append(f"Exact, no variance: every unit has the same value of {', '.join(zero)} "
                         "(the test's p is 0 or 1 by construction).")
        if m.table.left_out:
            notes.append(f"Left out: {len(m.table.left_out)} unit(s) with a value that is not finite (undefined for "
                         "a degenerate model, or censored): "
                         + "; ".join(f"{u} ({', '.join(c)})" for u, c in m.table.left_out.items()) + ".")
        if not can_decide:
            notes.append("The design cannot decide: no data could reach significance (too few units).")
        status = design_status(verdict, power, can_decide)
        if status == "inconclusive-powered":
            notes.append(_smaller_than_interest(decider, power))
        out.append(Evidence(
            claim_id=m.claim_id, params=dict(m.params), sentence=m.sentence, verdict=verdict,
            asserted=m.asserted, not_asserted_reason=m.not_asserted_reason, form=_form(m.rule, m),
            test=(o.test if not o.parts else f"{o.test}; deciding part: {decider.name}: {decider.test}"),
            unit=m.table.unit, conditional_on=None if m.table.conditional_on is None else str(m.table.conditional_on),
            statistic=decider.statistic, p_value=o.p_support, p_adjusted=p_adj_s, p_refute=o.p_refute,
            p_refute_adjusted=p_adj_r, decided_by=decided_by, alpha=alpha, effect=decider.effect,
            effect_name=decider.effect_name, scale=decider.scale, ci=decider.ci, ci_level=decider.ci_level,
            reference=decider.reference, margin=decider.margin, effect_of_interest=eoi,
            n={"units": len(m.table), **{k: v for k, v in decider.n.items() if k != "units"}},
            power=power, mde=mde,
            power_detail={"method": "simulation from the measured per-unit covariance", "simulations":
                          settings.power_simulations, "level": level, "family_size": max(m_support, 1) if m.asserted else 1,
                          "mde_factor": factor, "sd": sds,
                          **({"mde": "none: no effect within the scale's range (or 64 × the effect of interest) "
                                     "reaches 80 % power"} if mde == float("inf") else {}),
                          "effects_of_interest": {leaf.name: (leaf.effect_of_interest) for leaf in o.leaves()},
                          **({"units_needed_search": f"simulated with up to {MAX_UNITS} units, every group scaled "
                                                    "in proportion, the measured covariance kept",
                              "power_curve": curve} if settings.power_simulations else {})},
            design_status=status, units_needed=needed,
            underpowered=status == "inconclusive-underpowered",
            cannot_decide=not can_decide,
            stability=st, fragile=bool(st is not None and st < FRAGILE_BELOW), deviations=list(m.deviations),
            parts=_parts(o, decider), replicates=m.table.records(), paper_value=m.paper_value,
            ours_value=m.ours_value, figures=list(m.figures), notes=notes, environment=dict(environment or {}),
            details=dict(m.details),
        ))
    return out


def design_status(verdict: str, power: float | None, can_decide: bool = True) -> str | None:
    """What the design says about a verdict (:data:`~analysis.stats.evidence.DESIGN_STATUSES`).

    A supported or refuted verdict is *decided*, whatever the design's power: power qualifies a result that
    did not reach a decision, and on a decided one "underpowered" would read as "don't trust this" (its
    fragility says how far to trust it). An inconclusive verdict is *powered* when the design had power
    ≥ 0.8 at the effect of interest (the effect is then smaller than the effect of interest), else
    *underpowered*. None: inconclusive with no power analysis run.
    """
    if verdict in ("supported", "refuted"):
        return "decided"
    if verdict != "inconclusive" or power is None:
        return None
    return "inconclusive-powered" if can_decide and power >= UNDERPOWERED_BELOW else "inconclusive-underpowered"


def _smaller_than_interest(decider: Outcome, power: float) -> str:
    """The finding an inconclusive verdict of a powered design states (CLAIMS.md: "an effect shown smaller than δ
    is reported as such")."""
    eoi = decider.effect_of_interest
    what = "margin" if decider.form in ("equivalence", "non-inferiority") else "effect of interest"
    if decider.form in ("equivalence", "non-inferiority"):
        return (f"Inconclusive with power {power:.2f} at no difference and the {what} {eoi:g}: the data sit near "
                f"the margin, neither clearly inside nor clearly outside it.")
    return (f"Inconclusive with power {power:.2f} at the {what} δ = {eoi:g}: the effect is smaller than the "
            "effect of interest (a design this size would likely have shown one of that size).")


def _mde(factor: float, effect_of_interest: float | None, bound: float | None) -> float | None:
    """Minimum detectable effect: factor × effect of interest; inf when none exists within the scale's bound."""
    if effect_of_interest is None or math.isnan(factor):
        return None
    mde = factor * effect_of_interest
    return float("inf") if bound is not None and mde > bound else mde


def _untested(m: Measurement, alpha: float, environment: Mapping | None) -> Evidence:
    return Evidence(
        claim_id=m.claim_id, params=dict(m.params), sentence=m.sentence, verdict=m.verdict, asserted=m.asserted,
        not_asserted_reason=m.not_asserted_reason, form=m.form, test=m.test, alpha=alpha, effect=m.effect,
        design_status=design_status(m.verdict, None),
        effect_name=m.effect_name, deviations=list(m.deviations), paper_value=m.paper_value,
        ours_value=m.ours_value, figures=list(m.figures), notes=list(m.notes),
        environment=dict(environment or {}), details=dict(m.details),
    )
