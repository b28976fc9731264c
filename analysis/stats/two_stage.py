"""A claim's family over two looks: decide what stage 1 decides, spend stage 2 only where the answer is open.

The statistics of one look are :class:`analysis.stats.sequential.TwoStage`'s; this module runs a family
(CLAIMS.md, Multiplicity: Holm over the asserted instances of a claim) through them:

1. :func:`first_look` — every instance on its stage-1 units. Asserted instances: their repeated p-values,
   Holm-adjusted over the family; supported or refuted at α stop at look 1. Each open one gets its
   **conditional power** at its effect of interest, at α/m (Holm's first step, the level the fixed design's
   power uses), with the maximum's units: at least ``continue_at`` → it **continues**; below → it stops
   *inconclusive*, with the units a fixed design would need for 80 % power (``units_needed``). Instances
   that are reported but not asserted are decided on their own p and never ask for units. With power
   simulations switched off (``power_simulations = 0``) every open instance continues.
2. :func:`second_look` — every continuing instance on its stage-2 units alone, combined with look 1; the
   stopped keep their look-1 p-values; Holm over the family again. Repeated p-values only fall with a look,
   so no decision of look 1 is undone.

The caller (the claim layer) grows the units of a pool when one of its instances continues: every instance
that shares those units and continues reads the same new units.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from analysis._validation import invalid
from analysis.stats.family import FamilySettings, Measurement, holm, verdict_from
from analysis.stats.power import PowerModel
from analysis.stats.rules import Rule
from analysis.stats.sequential import TwoStage
from analysis.stats.units import UnitTable

__all__ = ["Look", "first_look", "second_look"]


@dataclass(frozen=True)
class Look:
    """Where one instance stands after a look."""

    instance_id: str
    asserted: bool
    stage: int  # the look it stopped at (or was last decided at): 1 or 2
    units: int  # units read over the looks seen
    p_support: float  # repeated p-values over the looks seen
    p_refute: float
    p_support_adjusted: float  # Holm over the asserted family (the raw ones for an instance not asserted)
    p_refute_adjusted: float
    verdict: str
    continues: bool  # after look 1: gets stage-2 units
    conditional_power: float | None = None  # at look 1, for an open asserted instance (None: not computed)
    units_needed: int | None = None  # a fixed design's units for 80 % power, for one stopped inconclusive
    reason: str = ""
    table: UnitTable = field(default=None, repr=False, compare=False)  # stage-1 units
    rule: Rule = field(default=None, repr=False, compare=False)


def _adjust(looks: dict[str, dict], alpha: float) -> None:
    """Holm over the asserted instances' repeated p-values; verdicts in place."""
    members = [k for k, v in looks.items() if v["asserted"]]
    adj_s = holm(np.array([looks[k]["p_support"] for k in members], dtype=float))
    adj_r = holm(np.array([looks[k]["p_refute"] for k in members], dtype=float))
    for k, s, r in zip(members, adj_s, adj_r):
        looks[k].update(p_support_adjusted=float(s), p_refute_adjusted=float(r))
    for v in looks.values():
        if not v["asserted"]:
            v.update(p_support_adjusted=v["p_support"], p_refute_adjusted=v["p_refute"])
        v["verdict"] = str(verdict_from(v["p_support_adjusted"], v["p_refute_adjusted"], alpha))


def _family_size(looks: Mapping[str, dict]) -> int:
    return max(1, sum(1 for v in looks.values() if v["asserted"] and not math.isnan(v["p_support"])))


def first_look(measurements: Sequence[Measurement], design: TwoStage,
               settings: FamilySettings = FamilySettings()) -> dict[str, Look]:
    """Look 1 on every tested instance's units (its stage-1 table); ``{instance_id: Look}``."""
    if not math.isclose(design.alpha, settings.alpha):
        raise invalid("design", "first_look", f"a design at the family's α = {settings.alpha:g}", design.alpha)
    looks: dict[str, dict] = {}
    for m in measurements:
        if not isinstance(m, Measurement) or m.rule is None:  # errors and number claims: nothing to look at
            continue
        p_s, p_r = design.pvalues(m.rule, m.table.data())
        looks[m.instance_id] = dict(instance_id=m.instance_id, asserted=m.asserted, stage=1, units=len(m.table),
                                    p_support=float(p_s), p_refute=float(p_r), table=m.table, rule=m.rule)
    _adjust(looks, settings.alpha)
    level = settings.alpha / _family_size(looks)
    for iid, v in looks.items():
        v.update(continues=False, conditional_power=None, units_needed=None)
        if v["verdict"] != "inconclusive":
            v["reason"] = f"decided at look 1 ({v['verdict']})"
            continue
        if not v["asserted"]:
            v["reason"] = "not asserted: decided on its own units, asks for none"
            continue
        if math.isnan(v["p_support"]):
            v["reason"] = "look 1 has no p (too few units)"
            continue
        if not settings.power_simulations:
            v.update(continues=True, reason="open; power analysis off: continues without a futility look")
            continue
        model = PowerModel(v["table"], v["rule"], simulations=settings.power_simulations,
                           seed=settings.seed_for("two-stage:" + iid))
        cp = design.conditional_power(v["rule"], v["table"].data(), model.simulated_components(design.added), level)
        v["conditional_power"] = cp
        if cp >= design.continue_at:
            v.update(continues=True, reason=f"open; conditional power {cp:.2f} ≥ {design.continue_at:g} with "
                                            f"{design.maximum} units: continues")
        else:
            needed = model.units_needed(level) if len(v["table"]) >= 2 else None
            v.update(units_needed=needed, reason=(
                f"open; conditional power {cp:.2f} < {design.continue_at:g} with {design.maximum} units: stops "
                f"inconclusive — would need " + (f"{needed} units" if needed else "more than any design searched")
                + " (fixed design, power 0.8)"))
    return {k: Look(**v) for k, v in looks.items()}


def second_look(first: Mapping[str, Look], second: Mapping[str, UnitTable], design: TwoStage,
                settings: FamilySettings = FamilySettings()) -> dict[str, Look]:
    """Look 2: ``second`` holds each continuing instance's stage-2 units alone (new units, not those of look 1)."""
    missing = sorted(k for k, look in first.items() if look.continues and k not in second)
    if missing:
        raise invalid("second", "second_look", "a stage-2 table for every continuing instance", missing)
    looks = {k: dict(vars(look)) for k, look in first.items()}
    for k, look in first.items():
        if not look.continues:
            continue
        overlap = set(look.table.ids) & set(second[k].ids)
        if overlap:
            raise invalid("second", "second_look", f"new units only for {k} (look 1 read {sorted(overlap)})",
                          sorted(second[k].ids))
        p_s, p_r = design.pvalues(look.rule, look.table.data(), second[k].data())
        looks[k].update(stage=2, units=len(look.table) + len(second[k]), p_support=float(p_s), p_refute=float(p_r))
    _adjust(looks, settings.alpha)
    for k, v in looks.items():
        if first[k].continues:
            v["reason"] = f"continued; look 2 with {v['units']} units: {v['verdict']}"
    return {k: replace(first[k], **{f: v[f] for f in ("stage", "units", "p_support", "p_refute",
                                                          "p_support_adjusted", "p_refute_adjusted", "verdict",
                                                          "reason")})
            for k, v in looks.items()}
