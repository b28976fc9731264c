"""Every SH claim's construction holds its error rates in fake worlds with known answers (STYLE.md §14).

The harness of ``tests/test_claims_null.py`` on the SH world (``tests/fakesh.py``): each scenario designs
the per-seed value a claim computes — through the real claim code (paired differences, Kendall τ, the
piecewise-linear slope change, log ratios) — as a bounded symmetric seed effect about the null boundary.
SH-3's unit is the timed round: its scenarios design the per-round log time ratios. Each scenario runs at 5
seeds and at the ci profile's seeds.
"""
from __future__ import annotations

import math
import zlib
from collections import Counter

import numpy as np
import pytest

import claims.test_vgg11_compression  # noqa: F401  (registers the SH claims)
from analysis.stats.family import FamilySettings, decide_family
from fixtures.claims import REGISTRY
from tests.fakesh import SH_LAYERS, SWEEP, latency_record, sh_world
from tests.fakeworlds import ci_design
from tests.nullrates import ALPHA, LIMIT, N, error_rates

DECIDE = FamilySettings(alpha=ALPHA, power_simulations=0, stability_resamples=0)
BOTH = ("supported", "refuted")
CASE = {"dataset": "colour_digits"}


def decide(claim_id: str, case: dict, world):
    [evidence] = decide_family([REGISTRY[claim_id].measure(dict(case), world)], DECIDE)
    return evidence


# --------------------------------------------------------------------------- designs: value x per seed


def sh1(x, w, u):
    """unstructured − structured = x (both variants)."""
    w.accs[u.pruned[("unstructured", "all")]] = 80.0 + x
    w.accs[u.pruned[("structured", "all")]] = 80.0
    w.accs[u.pruned[("structured", "conv")]] = 80.0


def sh2_fc(x, w, u):
    """Mean FC drop − mean conv drop = x (unstructured)."""
    acc = {n: [85.0, 85.0] if conv else [85.0 - x, 85.0 - x] for n, conv in SH_LAYERS}
    w.sens[u.id] = {"unstructured": acc, "structured": acc}


# The within-seed noise of the exchangeable designs (one stream each, module-level: fresh draws per world).
_NOISE = {name: np.random.default_rng(i) for i, name in enumerate(("sh2_tau", "sh4_falls", "sh4_sharper"))}


def sh2_tau(x, w, u, rng=_NOISE["sh2_tau"]):
    """Conv drops exchangeable over depth (τ symmetric about 0); x shifts them all (no trend)."""
    acc = {n: [80.0 + x + rng.normal(), 80.0] if conv else [80.0, 80.0] for n, conv in SH_LAYERS}
    w.sens[u.id] = {"unstructured": acc, "structured": {**acc, "classifier.6": None}}


def sh4_falls(x, w, u, rng=_NOISE["sh4_falls"]):
    """Accuracy exchangeable over the levels: τ symmetric about 0."""
    for lv in SWEEP:
        w.accs[u.sweep[lv]] = 80.0 + x + rng.normal()


def sh4_sharper(x, w, u, rng=_NOISE["sh4_sharper"]):
    """Linear in sparsity (no change of slope at 50 %) plus a per-seed slope change x·10 and noise."""
    for lv in SWEEP:
        w.accs[u.sweep[lv]] = 90.0 - 20 * lv + 10 * x * max(lv - 0.5, 0.0) + 0.1 * rng.normal()


def sh5_ptq(x, w, u):
    """Every PTQ scheme at the equivalence bound: Δacc = 0.5 + x (all three parts at their boundary)."""
    w.accs[u.base] = 80.0
    for q in ("fp16", "bf16", "int8"):
        w.accs[u.ptq[q]] = 80.5 + x


def sh5_int4(x, w, u):
    w.accs[u.base] = 80.0
    w.accs[u.ptq["int4"]] = 80.0 + x


def sh5_qat(x, w, u):
    for b in (8, 4):
        w.accs[u.qat[("linear", b)]] = 80.0 + x
        w.accs[u.control_ptq[("linear", b)]] = 80.0


def sh6_hint(x, w, u):
    for m in ("logit", "crd"):
        w.accs[u.students[("vgg16", m)]] = 80.0
    w.accs[u.students[("vgg16", "hint")]] = 80.0 + x


def sh6_crd(x, w, u):
    for m in ("logit", "hint", "crd"):
        w.accs[u.students[("vgg16", m)]] = 80.0
        w.accs[u.students[("vgg19", m)]] = 80.0
    w.accs[u.students[("vgg19", "crd")]] = 80.0 + x


def sh7(x, w, u):
    """Both KL log ratios and both SSIM differences = x (all four parts at the boundary)."""
    for t in ("vgg16", "vgg19"):
        w.kls[(u.id, t, "hint")] = 0.5
        w.ssims[(u.id, f"teacher {t}", f"{t} hint")] = 0.5 + x
        for m in ("logit", "crd"):
            w.kls[(u.id, t, m)] = 0.5 * math.exp(x)
            w.ssims[(u.id, f"teacher {t}", f"{t} {m}")] = 0.5


def sh8(x, w, u):
    for t in ("vgg16", "vgg19"):
        w.jitters[(u.id, f"{t} hint")] = -0.1 + x
        for m in ("logit", "crd"):
            w.jitters[(u.id, f"{t} {m}")] = -0.1


def sh9(x, w, u):
    w.ssims[(u.id, "unstructured", "base")] = 0.8
    w.ssims[(u.id, "structured", "base")] = 0.8 - x


# (claim, case, design, seed half-width): every one at its null boundary.
NULLS = [
    ("SH-1", {**CASE, "variant": "equal"}, sh1, 2.0),
    ("SH-1", {**CASE, "variant": "paper"}, sh1, 2.0),
    ("SH-2", {**CASE, "method": "unstructured"}, sh2_fc, 2.0),
    ("SH-2", {**CASE, "method": "structured"}, sh2_tau, 2.0),
    ("SH-4", {**CASE, "part": "falls"}, sh4_falls, 1.0),
    ("SH-4", {**CASE, "part": "sharper"}, sh4_sharper, 2.0),
    ("SH-5", {**CASE, "part": "ptq_equivalent"}, sh5_ptq, 0.3),
    ("SH-5", {**CASE, "part": "int4_loses"}, sh5_int4, 0.3),
    ("SH-5", {**CASE, "part": "qat_beats_ptq", "scope": "linear"}, sh5_qat, 0.5),
    ("SH-6", {**CASE, "part": "hint_best"}, sh6_hint, 2.0),
    ("SH-6", {**CASE, "part": "crd_gains"}, sh6_crd, 2.0),
    ("SH-7", {**CASE, "teacher": "vgg16"}, sh7, 0.05),
    ("SH-8", {**CASE, "teacher": "vgg19"}, sh8, 0.05),
    ("SH-9", CASE, sh9, 0.1),
]


def simulate(claim_id, case, design, halfwidth, n=N, *, size: str = "small") -> Counter:
    """Verdict counts over ``n`` null worlds; ``size``: 5 seeds, or the ci profile's seeds."""
    seeds = 5 if size == "small" else ci_design().sh_seeds
    rng = np.random.default_rng(zlib.crc32(f"{claim_id}{case}{'' if size == 'small' else size}".encode()))
    counts: Counter = Counter()
    for i in range(n):
        world = sh_world(rng, design, halfwidth=halfwidth, seeds=seeds)
        if i == 0:
            assert case in REGISTRY[claim_id].cases(world.profile)
        counts[decide(claim_id, case, world).verdict] += 1
    return counts


def test_every_statistical_sh_claim_has_a_null_scenario():
    claims = {c for c in REGISTRY if c.startswith("SH-") and not REGISTRY[c].extension}
    assert claims == {f"SH-{i}" for i in range(1, 10)}
    assert {c for c, *_ in NULLS} == claims - {"SH-3"}  # SH-3 (rounds as units): its own scenarios below


@pytest.mark.parametrize("size", ["small", "ci"])
@pytest.mark.parametrize("claim_id,case,design,halfwidth", NULLS, ids=lambda v: v if isinstance(v, str) else None)
def test_construction_holds_its_error_rate_at_the_null_boundary(claim_id, case, design, halfwidth, size,
                                                                record_property):
    rates, n, bound = error_rates(lambda k: simulate(claim_id, case, design, halfwidth, k, size=size),
                                  (*BOTH, "error"))
    for verdict in BOTH:
        record_property(f"{claim_id}:{verdict} ({size} design, {n} worlds)", rates[verdict])
        assert rates[verdict] <= bound, (f"{claim_id} {case} ({size} design): {verdict} in {rates[verdict]:.3f} "
                                         f"of {n} null worlds (limit {bound:.3f})")
    assert rates["error"] == 0


# --------------------------------------------------------------------------- known answers


def one(claim_id, case, design, seed=0, **kw):
    return decide(claim_id, case, sh_world(np.random.default_rng(seed), design, **kw))


@pytest.mark.parametrize("offset,verdict", [(5.0, "supported"), (-5.0, "refuted")])
def test_sh1_known_answer(offset, verdict):
    e = one("SH-1", {**CASE, "variant": "equal"}, lambda x, w, u: sh1(x + offset, w, u))
    assert e.verdict == verdict and e.effect == pytest.approx(offset, abs=1.0)
    assert e.n["units"] == 5 and e.unit.startswith("seed")


def test_sh2_structured_known_answer_early_layers_most_sensitive():
    def design(x, w, u):
        acc = {n: [80.0 - 10 * (4 - i) + x, 80.0] if conv else [80.0, 80.0]
               for i, (n, conv) in enumerate(SH_LAYERS)}
        w.sens[u.id] = {"unstructured": acc, "structured": {**acc, "classifier.6": None}}

    e = one("SH-2", {**CASE, "method": "structured"}, design, halfwidth=0.5)
    assert e.verdict == "supported" and e.effect == pytest.approx(-1.0)


def test_sh4_known_answers():
    e = one("SH-4", {**CASE, "part": "sharper"}, lambda x, w, u: sh4_sharper(x - 10.0, w, u))
    assert e.verdict == "supported" and e.effect == pytest.approx(-100.0, abs=25.0)
    e = one("SH-4", {**CASE, "part": "falls"}, lambda x, w, u: [w.accs.__setitem__(u.sweep[lv], 90 - 50 * lv + x)
                                                               for lv in SWEEP])
    assert e.verdict == "supported" and e.effect == pytest.approx(-1.0)


def test_sh5_qat_is_compared_with_the_control_not_the_base():
    def design(x, w, u):
        sh5_qat(x + 3.0, w, u)
        for b in (4, 8):
            w.accs[u.ptq[f"int{b}"]] = 70.0  # the base's PTQ is much worse: raw QAT − PTQ would be +13
    e = one("SH-5", {**CASE, "part": "qat_beats_ptq", "scope": "linear"}, design, halfwidth=0.3)
    assert e.verdict == "supported" and e.parts[0]["effect"] == pytest.approx(3.0, abs=0.3)
    assert "int8 +12." in " ".join(e.notes)  # raw QAT − base PTQ: 83 + mean x − 70


def test_sh7_refuted_when_logit_has_the_lowest_kl_as_the_papers_table():
    def design(x, w, u):
        sh7(0.3 + x, w, u)
        for t in ("vgg16", "vgg19"):
            w.kls[(u.id, t, "logit")] = 0.2  # lower than hint's 0.5
    e = one("SH-7", {**CASE, "teacher": "vgg16"}, design, halfwidth=0.05)
    assert e.verdict == "refuted"


# --------------------------------------------------------------------------- SH-3: rounds are the units


def _sh3_world(rng, removed: float, masked: float, rounds: int = 30):
    world = sh_world(rng, lambda x, w, u: None)
    base = np.exp(rng.normal(-5, 0.1, rounds))
    noise = lambda: np.exp(0.02 * (2 * rng.beta(2, 2, rounds) - 1))  # noqa: E731
    world.records[1] = latency_record({"base": base, "unstructured (masked)": base * math.exp(masked) * noise(),
                                       "structured (masked)": base * math.exp(masked) * noise(),
                                       "structured (removed)": base * math.exp(removed) * noise()})
    return world


@pytest.mark.parametrize("part,removed,masked", [("removed", 0.0, 0.0), ("masked", 0.0, math.log(1.05))])
def test_sh3_holds_its_error_rate_at_the_null_boundary(part, removed, masked):
    rng = np.random.default_rng(zlib.crc32(part.encode()))
    counts = Counter(decide("SH-3", {**CASE, "batch": 1, "part": part}, _sh3_world(rng, removed, masked)).verdict
                     for _ in range(N))
    for verdict in BOTH:
        assert counts[verdict] / N <= LIMIT, (part, verdict, counts)


def test_sh3_known_answers_and_hardware_reported():
    e = decide("SH-3", {**CASE, "batch": 1, "part": "removed"}, _sh3_world(np.random.default_rng(0), -0.3, 0.0))
    assert e.verdict == "supported" and e.n["units"] == 30 and e.unit.startswith("timed batch")
    assert e.details["hardware"] == "fake"
    assert not e.asserted and "not asserted" in e.not_asserted_reason and "fake" in e.not_asserted_reason
    e = decide("SH-3", {**CASE, "batch": 1, "part": "masked"}, _sh3_world(np.random.default_rng(0), -0.3, 0.0))
    assert e.verdict == "supported"
    e = decide("SH-3", {**CASE, "batch": 1, "part": "masked"}, _sh3_world(np.random.default_rng(0), -0.3, 0.3))
    assert e.verdict == "refuted"
