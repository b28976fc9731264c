"""Every claim's construction, simulated where its answer is known (STYLE.md §14).

* **Null simulations**: a fake world exactly at a claim's null boundary (by
  exchangeability or scaling, see ``fakeworlds.py``); the real claim function
  measures it and the suite decides it. The false-support rate (and, where the
  claim can be refuted, the false-refutation rate) must stay at α, within
  Monte-Carlo error: ≤ α + 3·√(α(1−α)/N). N = 200 by default, 2,000 with
  ``HYPOTHESIS_PROFILE=thorough``.
* **Known answers**: a large effect in the claimed direction is supported, in
  the opposite direction refuted; n, units, parts and per-unit values are what
  the world implies.
* **A negative control**: a construction that shares models between replicates
  (the old "nearest independent model") breaks its error rate in the same
  setting where ours holds it.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis.family import FamilySettings, decide_family
from fakeworlds import FakeGC, FakeMW, gc_settings, mw_settings
from fixtures.claims import REGISTRY
from fixtures.profile import Experiment

ROOT = Path(__file__).resolve().parent.parent
ALPHA = 0.05
N = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 200
BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / N)
FAST = FamilySettings(alpha=ALPHA, power_simulations=0, stability_resamples=0)

for module in ("test_functional_perspective", "test_orthogonality"):  # register the claims
    spec = importlib.util.spec_from_file_location(f"_claims_{module}", ROOT / "claims" / f"{module}.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

LENET = Experiment("lenet5", "digits")
RESNET = Experiment("resnet18", "digits")
MOBILE = Experiment("mobilenet_v1", "digits", role="pruning")
RESNET50 = Experiment("resnet50", "digits", role="pruning")
RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)


def decide(claim_id, case, world):
    (ev,) = decide_family([REGISTRY[claim_id].measure(dict(case), world)], FAST)
    return ev


def rates(claim_id, case, make_world, n=N, seed=0):
    rng = np.random.default_rng(seed)
    verdicts = [decide(claim_id, case, make_world(rng)).verdict for _ in range(n)]
    return verdicts.count("supported") / n, verdicts.count("refuted") / n


def mw(rng, **kw):
    exps = kw.pop("experiments", (LENET,))
    return FakeMW(mw_settings(exps, n=kw.pop("n", 10)), rng, **kw)


SQ = math.sqrt

# Per claim: (claim, case, world at the null boundary, also check false refutation there?)
NULLS = {
    "MW-1 students at the 0.8 bound, vs independent": (
        "MW-1", {"exp": LENET.id, "kd": "text", "vs": "independent"},
        lambda r: mw(r, c={"student": SQ(0.8)}), True),
    "MW-1 students at the 0.8 bound, vs same-init control": (
        "MW-1", {"exp": LENET.id, "kd": "text", "vs": "same_init"},
        lambda r: mw(r, c={"student": SQ(0.8), "control": 1.0}), True),
    "MW-2 one teacher weight at the 1.25 margin": (
        "MW-2", {"exp": LENET.id, "kd": "text"},
        lambda r: mw(r, c={"student": 1.0, "student:text:0.9": SQ(1.25)}), True),
    "MW-3a quantized as far as the independent": (
        "MW-3", {"exp": LENET.id},
        lambda r: mw(r, c={"quant": 1.0, "prune": 8.0}, acc_noise=0.05), False),
    "MW-3b accuracy deviation at +1 %": (
        "MW-3", {"exp": LENET.id},
        lambda r: mw(r, c={"quant": 0.01, "prune": 1.0}, acc_shift={"quant": 1.0}, acc_noise=0.3), False),
    "MW-3c quantized as far as the lightest pruning": (
        "MW-3", {"exp": LENET.id},
        lambda r: mw(r, c={"quant": 0.1, "prune": 0.1}, acc_noise=0.05), False),
    "MW-3 every part at its boundary": (
        "MW-3", {"exp": LENET.id},
        lambda r: mw(r, c={"quant": 1.0, "prune": 1.0}, acc_shift={"quant": 1.0}, acc_noise=0.3), True),
    "MW-4 8-bit as close as 16-bit": (
        "MW-4", {"exp": LENET.id}, lambda r: mw(r, c={"quant": 0.1}), True),
    "MW-5 thresholds alike across architectures": (
        "MW-5", {"dataset": "digits", "pruning": "text"},
        lambda r: mw(r, experiments=(LENET, RESNET), c={f"prune:text:{x}": c for x, c in zip(RATIOS, (0.3, 0.6, 0.9, 1.3, 2.0))}),
        False),
    "MW-5a pruned as far as the independent at the lowest ratio": (
        "MW-5", {"dataset": "digits", "pruning": "text"},
        lambda r: mw(r, experiments=(LENET, RESNET), c={
            "prune:text:0.1": 1.0, **{f"prune:text:{x}": (lambda e, x=x: 0.2 if e.endswith("resnet18") else 2.0)
                                      for x in RATIOS[1:]}}), False),
    "MW-6 no trend over the ratios": (
        "MW-6", {"exp": LENET.id, "pruning": "text"}, lambda r: mw(r, c={"prune": 0.5}), True),
    "MW-7a independents 2 points off the base": (
        "MW-7", {"exp": LENET.id, "pruning": "text"},
        lambda r: mw(r, acc_in_points=True, c={"prune": 0.1}, acc_noise=0.4,
                     acc_shift={"independent": 2.0, **{f"prune:text:{x}": -15.0 for x in RATIOS}}), False),
    "MW-7b every ratio loses exactly 5 points": (
        "MW-7", {"exp": LENET.id, "pruning": "text"},
        lambda r: mw(r, acc_in_points=True, c={"prune": 0.1}, acc_noise=0.4, acc_shift={"prune": -5.0}), False),
    "MW-8 MobileNet loses as much as ResNet-50": (
        "MW-8", {"dataset": "digits", "pruning": "text"},
        lambda r: mw(r, experiments=(MOBILE, RESNET50), n=6, acc_shift={"prune": -10.0}, acc_noise=1.0), True),
    "MW-9 students 1 % above the teacher": (
        "MW-9", {"exp": LENET.id, "kd": "text"},
        lambda r: mw(r, acc_shift={"student": 1.0}, acc_noise=0.4), False),
}


def gc(rng, **kw):
    return FakeGC(gc_settings(seeds=kw.pop("seeds", 10)), rng, **kw)


def _falling(kind, level, layer):
    return 0.99 if layer < 2 else 0.95 - 0.04 * layer


GC_NULLS = {
    "GC-1 flat CKA over the levels": ("GC-1", {"check": "trend"}, lambda r: gc(r), True),
    "GC-2 no step between regimes": ("GC-2", {"check": "ordered"}, lambda r: gc(r), True),
    "GC-3a early layers at the 0.95 bound": (
        "GC-3", {}, lambda r: gc(r, quiet_layers=(0, 1),
                                  cka_mean=lambda k, lv, j: 0.95 if j < 2 else 0.9 - 0.05 * j), False),
    "GC-3b no fall with depth": (  # flat at 0.975 (no clipping at 1), early layers well above the 0.95 bound
        "GC-3", {}, lambda r: gc(r, quiet_layers=(0, 1), seed_sd=0.005, noise_sd=0.005,
                                  cka_mean=lambda k, lv, j: 0.975), False),
    "GC-4 mixed exactly 0.02 below": (
        "GC-4", {}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.8 if k == "pd" else 0.78), False),
    "GC-5 one level 1 point apart": (
        "GC-5", {"vs": "pruned"},
        lambda r: gc(r, acc_mean=lambda k, lv: 90.0 + (1.0 if k == "distilled" and lv == 0.5 else 0.0), acc_noise=0.3),
        False),
    "GC-6 one level as low as the extreme": (
        "GC-6", {}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.6 if lv in (0.1, 0.5) else 0.9), False),
}


@pytest.mark.parametrize("name", list(NULLS) + list(GC_NULLS))
def test_the_construction_holds_its_error_rate_at_the_null(name):
    claim_id, case, make, check_refute = {**NULLS, **GC_NULLS}[name]
    if claim_id.startswith("GC"):
        case = {"setting": "digits-resnet18", **case}
    support, refute = rates(claim_id, case, make)
    assert support <= BOUND, f"{name}: false support {support:.3f} > {BOUND:.3f} (N = {N})"
    if check_refute:
        assert refute <= BOUND, f"{name}: false refutation {refute:.3f} > {BOUND:.3f} (N = {N})"


# ---------------------------------------------------------------- known answers
@pytest.mark.parametrize(("claim_id", "case", "make", "expected"), [
    ("MW-1", {"exp": LENET.id, "kd": "text", "vs": "independent"}, lambda r: mw(r, c={"student": 3.0}), "supported"),
    ("MW-1", {"exp": LENET.id, "kd": "text", "vs": "independent"}, lambda r: mw(r, c={"student": 0.2}), "refuted"),
    ("MW-2", {"exp": LENET.id, "kd": "text"}, lambda r: mw(r, n=20, c={"student": 1.0}, unit_sd=0.0), "supported"),
    ("MW-2", {"exp": LENET.id, "kd": "text"}, lambda r: mw(r, c={"student": 1.0, "student:text:0.9": 4.0}), "refuted"),
    ("MW-3", {"exp": LENET.id}, lambda r: mw(r, c={"quant": 0.01, "prune": 1.0}, acc_noise=0.05), "supported"),
    ("MW-3", {"exp": LENET.id}, lambda r: mw(r, c={"quant": 5.0, "prune": 1.0}, acc_noise=0.05), "refuted"),
    ("MW-4", {"exp": LENET.id}, lambda r: mw(r, c={"quant:fp16": 0.01, "quant:int8": 0.1}), "supported"),
    ("MW-4", {"exp": LENET.id}, lambda r: mw(r, c={"quant:fp16": 0.1, "quant:int8": 0.01}), "refuted"),
    ("MW-6", {"exp": LENET.id, "pruning": "text"},
     lambda r: mw(r, c={f"prune:text:{x}": 10 * x for x in RATIOS}), "supported"),
    ("MW-6", {"exp": LENET.id, "pruning": "text"},
     lambda r: mw(r, c={f"prune:text:{x}": 10 * (1 - x) for x in RATIOS}), "refuted"),
    ("MW-8", {"dataset": "digits", "pruning": "text"},
     lambda r: mw(r, experiments=(MOBILE, RESNET50), n=6, acc_noise=1.0,
                  acc_shift={"prune": lambda e: -60.0 if "mobilenet" in e else -1.0}), "supported"),
    ("MW-9", {"exp": LENET.id, "kd": "text"}, lambda r: mw(r, acc_shift={"student": 0.0}, acc_noise=0.2), "supported"),
    ("MW-9", {"exp": LENET.id, "kd": "text"}, lambda r: mw(r, acc_shift={"student": -8.0}, acc_noise=0.2), "refuted"),
    ("GC-1", {"check": "trend"}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.5 + 0.4 * lv), "supported"),
    ("GC-1", {"check": "trend"}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.9 - 0.4 * lv), "refuted"),
    ("GC-3", {}, lambda r: gc(r, quiet_layers=(0, 1), seed_sd=0.002, cka_mean=_falling), "supported"),
    ("GC-4", {}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.8), "supported"),
    ("GC-4", {}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.8 if k == "pd" else 0.6), "refuted"),
    ("GC-5", {"vs": "mixed"}, lambda r: gc(r, acc_noise=0.2), "supported"),
    ("GC-5", {"vs": "pruned"}, lambda r: gc(r, acc_mean=lambda k, lv: 95.0 if k == "distilled" else 85.0), "refuted"),
    ("GC-6", {}, lambda r: gc(r, cka_mean=lambda k, lv, j: 0.5 + 0.4 * lv), "supported"),
])
def test_a_clear_effect_gives_the_known_verdict(claim_id, case, make, expected):
    if claim_id.startswith("GC"):
        case = {"setting": "digits-resnet18", **case}
    ev = decide(claim_id, case, make(np.random.default_rng(1)))
    assert ev.verdict == expected, (ev.verdict, ev.p_adjusted, ev.p_refute_adjusted, ev.effect)


def test_the_evidence_describes_the_units_and_parts_the_world_implies():
    world = mw(np.random.default_rng(2), n=12, c={"quant": 0.05, "prune": 1.0}, acc_noise=0.05)
    ev = decide("MW-3", {"exp": LENET.id}, world)
    assert ev.n["units"] == 12 and "own independent" in ev.unit
    assert len(ev.parts) == 3 * 2  # three parts per quantization scheme
    assert ev.replicates["units"] == [f"unit{i}" for i in range(12)]
    exp = world.experiment(LENET.id)
    expected = [world.log_distance(u.quantized["int8"], u.base) - world.log_distance(u.independent, u.base)
                for u in exp.units]
    assert np.allclose(ev.replicates["values"]["int8 closer than independent"], expected)


def test_every_claim_has_a_null_simulation():
    simulated = {v[0] for v in NULLS.values()} | {v[0] for v in GC_NULLS.values()}
    assert simulated == {f"MW-{i}" for i in range(1, 10)} | {f"GC-{i}" for i in range(1, 7)}


# ---------------------------------------------------------------- a negative control
def test_sharing_models_between_replicates_breaks_the_error_rate_our_construction_keeps():
    """The old MW-3 construction: every independent model serves as a base, compared with the *nearest*
    other independent. With the quantized model exactly as far as a typical independent (the null of
    "closer than independents"), the shared, minimum-selected reference makes "farther" look significant;
    each base with its own partner (ours) keeps the rate at α."""
    rng = np.random.default_rng(7)
    k, n_sims, old_refuted, ours_refuted = 8, N, 0, 0
    for _ in range(n_sims):
        models = rng.standard_normal((2 * k, 64))
        quant = models[:k] + math.sqrt(2.0) * rng.standard_normal((k, 64))  # d(Q_i, B_i) ≈ d(I, B) on average
        d = lambda a, b: float(np.mean((a - b) ** 2))  # noqa: E731
        old = [math.log(d(quant[i], models[i])) - math.log(min(d(models[j], models[i]) for j in range(k) if j != i))
               for i in range(k)]
        ours = [math.log(d(quant[i], models[i])) - math.log(d(models[k + i], models[i])) for i in range(k)]
        old_refuted += stats.ttest_1samp(old, 0.0, alternative="greater").pvalue < ALPHA
        ours_refuted += stats.ttest_1samp(ours, 0.0, alternative="greater").pvalue < ALPHA
    assert ours_refuted / n_sims <= BOUND
    assert old_refuted / n_sims > 3 * ALPHA
