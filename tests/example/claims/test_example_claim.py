"""A test-only claim: what adding a claim takes, shown by adding one (README, "Adding a claim").

This module, its findings baseline beside it (``findings/smoke.json``) and,
optionally, a value for its effect of interest in a profile are everything a
new claim needs; no file of the suite changes. ``tests/test_adding_a_claim.py``
runs it on the smoke profile as a user would::

    pytest tests/example/claims --profile smoke

It is an extension (``MW-x…``), not a claim of the paper: reported as such.
"""
from __future__ import annotations

from analysis.stats.family import Measurement
from analysis.stats.rules import NonInferiority
from analysis.stats.units import UnitTable
from fixtures.claims import claim


def _cases(profile):
    section = profile.section("mw")
    if section is None or not any(q in section.quant_schemes for q in ("fp16", "bf16")):
        return []
    return [{"exp": e.id} for e in section.experiments if e.role == "full"]


@claim("MW-xSixteenBitAccuracy", "16-bit post-training quantization costs at most a small margin of test accuracy.",
       world="mw_world", needs=("base", "quantized"), effects={"sixteen_bit_accuracy_margin": 1.0},
       cases=_cases)
def sixteen_bit_quantization_keeps_accuracy(case, world):
    """Non-inferiority: per base B_i, acc(Q16(B_i)) − acc(B_i) in points ≥ −margin (one-sided t across bases;
    margin: ``[mw.effects] sixteen_bit_accuracy_margin``, default 1 point)."""
    experiment = world.experiment(case["exp"])
    scheme = next(q for q in ("fp16", "bf16") if q in world.settings.quant_schemes)
    table = UnitTable("base model B_i with its own 16-bit copy")
    for unit in experiment.units:
        quantized = unit.quantized[scheme]
        table.add(unit.id, models=[unit.base, quantized],
                  **{"accuracy change": world.acc(quantized) - world.acc(unit.base)})
    margin = world.effect("sixteen_bit_accuracy_margin")
    rule = NonInferiority("16-bit keeps accuracy", "accuracy change", reference=0.0, margin=margin,
                          alternative="greater", scale="points",
                          effect_name=f"mean accuracy change of the {scheme} copy (points)")
    return Measurement(table=table, rule=rule)
