"""Every MH claim's construction holds its error rates in fake worlds with known answers (STYLE.md §14).

The harness of ``tests/test_claims_null.py`` on the MH world (``tests/fakeworlds.py``, :func:`mh_world`):
each scenario designs the per-seed value a claim computes — through the real breakpoint, PE and
iso-accuracy code — as a pair random effect plus seed noise, bounded and symmetric about the null
boundary. Directional and non-inferiority rules have one boundary for both errors (false support, false
refutation). Each scenario runs at 6 pairs x 3 seeds and at the ci profile's pairs x seeds. MH-6 is exact (no
statistics): known answers on real masks of tiny models.
"""
from __future__ import annotations

import math
import zlib
from collections import Counter

import numpy as np
import pytest
import torch

import claims.test_pruning_after_distillation  # noqa: F401  (registers the MH claims)
from analysis.stats.family import FamilySettings, decide_family
from compress.models.registry import create_model
from compress.prune.structured import channel_masks
from compress.prune.unstructured import l1_unstructured
from fixtures.claims import REGISTRY
from tests.fakeworlds import MH_LEVELS, Curve, FakeMHWorld, ci_design, flat, mh_world
from tests.nullrates import ALPHA, error_rates

DECIDE = FamilySettings(alpha=ALPHA, power_simulations=0, stability_resamples=0)
TENTH = math.log(0.1)  # a curve ending at 10 % of the parameters
BOTH = ("supported", "refuted")


def decide(claim_id: str, case: dict, world):
    [evidence] = decide_family([REGISTRY[claim_id].measure(dict(case), world)], DECIDE)
    return evidence


# --------------------------------------------------------------------------- designs: value x per seed


def pe_gap(x: float) -> dict:
    """MH-1 and MH-2: flat accuracies, the channel curve keeps e^x times the weight curve's parameters at its
    end, so log PE(weight) − log PE(channel) at the breakpoints and the iso-accuracy log ratio both equal x."""
    return {"weight": flat(90.0, TENTH), "channel": flat(90.0, TENTH + x), "teacher": flat(92.0, TENTH)}


def student_vs_teacher(x: float) -> dict:
    """MH-3: the weight-pruned student's accuracy is the teacher's + x − 1 (at the non-inferiority bound)."""
    return {"weight": flat(89.0 + x, TENTH), "channel": flat(89.0 + x, TENTH), "teacher": flat(90.0, TENTH)}


def teacher_vs_channel(x: float) -> dict:
    """MH-4: the channel-pruned student's accuracy is the teacher's − x (within 1 point: breakpoint at the end)."""
    return {"weight": flat(90.0, TENTH), "channel": flat(90.0 - x, TENTH), "teacher": flat(90.0, TENTH)}


def channel_gain(x: float, *, removed: float = 0.0) -> dict:
    """MH-5: the channel curve's breakpoint is its first pruned level (a steep drop after it); there it keeps
    e^−removed of the parameters at e^(x − removed) of the accuracy, so its log PE gain over level 0 is x."""
    weight = flat(90.0, TENTH)
    acc = [90.0, 90.0 * math.exp(x - removed)] + [80.0] * (len(MH_LEVELS) - 2)
    params = [weight.parameters[0], weight.parameters[0] * math.exp(-removed)] + list(weight.parameters[2:])
    return {"weight": weight, "channel": Curve(tuple(acc), tuple(params)), "teacher": flat(92.0, TENTH)}


# The null worlds: (claim, case, design, pair and seed half-widths).
NULLS = [
    ("MH-1", {"dataset": "digits", "counting": "coupled"}, pe_gap, 0.2, 0.1),
    ("MH-2", {"dataset": "digits", "counting": "nonzero"}, pe_gap, 0.2, 0.1),
    ("MH-3", {"dataset": "digits", "teacher": "unpruned"}, student_vs_teacher, 0.3, 0.2),
    ("MH-3", {"dataset": "digits", "teacher": "breakpoint"}, student_vs_teacher, 0.3, 0.2),
    ("MH-4", {"dataset": "digits", "teacher": "breakpoint"}, teacher_vs_channel, 0.3, 0.2),
    # MH-5 is near-tautological: under a 'drop' rule a breakpoint's gain cannot fall much below 0, so its
    # null world must prune almost nothing at the breakpoint: small effects and noise.
    ("MH-5", {"dataset": "digits", "counting": "coupled"}, channel_gain, 0.005, 0.003),
]


def simulate(claim_id: str, case: dict, design, pair_halfwidth: float, seed_halfwidth: float, n: int, *,
             size: str = "small") -> Counter:
    """Verdict counts over ``n`` null worlds; ``size``: 6 pairs x 3 seeds, or the ci profile's pairs x seeds."""
    ci = ci_design()
    pairs, seeds = (6, 3) if size == "small" else (ci.mh_pairs, ci.mh_seeds)
    rng = np.random.default_rng(zlib.crc32(f"{claim_id}{case}{'' if size == 'small' else size}".encode()))
    counts: Counter = Counter()
    for i in range(n):
        world = mh_world(rng, design, pair_halfwidth=pair_halfwidth, seed_halfwidth=seed_halfwidth, pairs=pairs,
                         seeds=seeds)
        if i == 0:
            assert case in REGISTRY[claim_id].cases(world.profile)
        counts[decide(claim_id, case, world).verdict] += 1
    return counts


def test_every_statistical_mh_claim_has_a_null_scenario():
    claims = {c for c in REGISTRY if c.startswith("MH-") and not REGISTRY[c].extension}
    assert claims == {f"MH-{i}" for i in range(1, 7)}
    assert {c for c, *_ in NULLS} == claims - {"MH-6"}  # MH-6 is exact: known answers below


@pytest.mark.parametrize("size", ["small", "ci"])
@pytest.mark.parametrize("claim_id,case,design,pair_hw,seed_hw", NULLS, ids=lambda v: v if isinstance(v, str) else None)
def test_construction_holds_its_error_rate_at_the_null_boundary(claim_id, case, design, pair_hw, seed_hw, size,
                                                                record_property):
    rates, n, bound = error_rates(lambda k: simulate(claim_id, case, design, pair_hw, seed_hw, k, size=size),
                                  (*BOTH, "error"))
    for verdict in BOTH:
        record_property(f"{claim_id}:{verdict} ({size} design, {n} worlds)", rates[verdict])
        assert rates[verdict] <= bound, (f"{claim_id} {case} ({size} design): {verdict} in {rates[verdict]:.3f} "
                                         f"of {n} null worlds (limit {bound:.3f})")
    assert rates["error"] == 0


# --------------------------------------------------------------------------- known answers


def one(claim_id: str, case: dict, design, seed: int = 0, **world) -> object:
    return decide(claim_id, case, mh_world(np.random.default_rng(seed), design, **world))


@pytest.mark.parametrize("x,verdict", [(math.log(2.0), "supported"), (-math.log(2.0), "refuted")])
def test_mh1_and_mh2_known_answers(x, verdict):
    for claim_id in ("MH-1", "MH-2"):
        for counting in ("coupled", "nonzero"):
            e = one(claim_id, {"dataset": "digits", "counting": counting}, lambda v: pe_gap(x + v))
            assert e.verdict == verdict, (claim_id, counting, e.verdict)
            assert e.n["units"] == 6 and e.unit.startswith("teacher → student pair")
            assert e.effect == pytest.approx(x, abs=0.25)


def test_mh1_reports_the_papers_raw_pe_t_beside_ours():
    e = one("MH-1", {"dataset": "digits", "counting": "coupled"}, lambda v: pe_gap(math.log(2.0) + v))
    assert e.paper_value == {"t": -7.06, "p": 5.90e-5}  # digits is not a paper dataset: CIFAR-100's stands in
    assert e.ours_value["t"] < 0 and e.ours_value["df"] == 5  # channel − weight: weight is more efficient


@pytest.mark.parametrize("offset,verdict", [(2.0, "supported"), (-3.0, "refuted")])
def test_mh3_known_answer(offset, verdict):
    for ref in ("unpruned", "breakpoint"):
        e = one("MH-3", {"dataset": "digits", "teacher": ref}, lambda v: student_vs_teacher(1.0 + offset + v))
        assert e.verdict == verdict
        assert e.effect == pytest.approx(offset, abs=0.3)


def test_mh4_known_answer_and_the_resnet50_exception_reported_apart():
    students = ["resnet50", "s1", "s2", "s3", "s4", "s5"]
    design = lambda v: {**teacher_vs_channel(v), "teacher": flat(93.0, TENTH)}  # noqa: E731
    e = one("MH-4", {"dataset": "digits", "teacher": "unpruned"}, design, students=students)
    assert e.verdict == "supported" and e.n["units"] == 5
    assert list(e.details["resnet50_students_apart"]) == ["digits-t-resnet50"]
    e = one("MH-4", {"dataset": "digits", "teacher": "unpruned"},
            lambda v: {**teacher_vs_channel(v), "teacher": flat(87.0, TENTH)})
    assert e.verdict == "refuted"


def test_mh5_known_answer():
    e = one("MH-5", {"dataset": "digits", "counting": "coupled"}, lambda v: channel_gain(0.3 + v, removed=0.3),
            pair_halfwidth=0.005, seed_halfwidth=0.003)
    assert e.verdict == "supported" and e.effect == pytest.approx(0.3, abs=0.02)


def test_mh2_censors_a_channel_curve_that_never_falls_to_the_target():
    def design(v):
        out = pe_gap(v)  # the weight curve breaks at its first pruned level; the channel curve never falls
        acc = [90.0, 89.5] + [85.0] * (len(MH_LEVELS) - 2)
        out["weight"] = Curve(tuple(acc), out["weight"].parameters)
        return out

    e = one("MH-2", {"dataset": "digits", "counting": "coupled"}, design)
    assert e.details["censored"]["channel"] == 18 and e.verdict == "inconclusive"  # no pair left
    assert "not testable" in e.test


# --------------------------------------------------------------------------- MH-6, exact


class _MaskedWorld(FakeMHWorld):
    """Known models and masks behind the fake ids (MH-6 reads real masks)."""

    def model_and_masks(self, spec):
        return self.models[spec]


def _structure_world(make_masks):
    world = mh_world(np.random.default_rng(0), pe_gap, pairs=2, seeds=1)
    world = _MaskedWorld(**{f: getattr(world, f) for f in ("profile", "store", "units", "points")})
    world.models = {}
    x = torch.zeros(1, 1, 8, 8)
    for u in world.units:
        for method in ("weight", "channel"):
            for lv in MH_LEVELS[1:]:
                torch.manual_seed(0)
                model = create_model("lenet5", 10, (1, 8, 8))
                world.models[u.curve(method)[lv]] = (model, make_masks(model, method, lv, x), (1, 8, 8))
    return world


def _honest(model, method, lv, x):
    if method == "weight":
        return l1_unstructured(model, lv)
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return channel_masks(model, 1 - lv, example_inputs=x, ignore=linear)


def test_mh6_holds_on_honest_masks_and_a_dense_layer_or_masked_fc_unit_refutes():
    for method in ("weight", "channel"):
        e = decide("MH-6", {"dataset": "digits", "method": method}, _structure_world(_honest))
        assert e.verdict == "supported" and e.form == "exact", method
        assert e.ours_value["models checked"] == 2 * (len(MH_LEVELS) - 1)

    def dense_first_conv(model, method, lv, x):
        masks = _honest(model, method, lv, x)
        first = next(n for n in masks if n.endswith("weight"))
        return {**masks, first: torch.ones_like(masks[first])}

    e = decide("MH-6", {"dataset": "digits", "method": "weight"}, _structure_world(dense_first_conv))
    assert e.verdict == "refuted" and e.effect >= 1

    def masked_fc_unit(model, method, lv, x):
        masks = _honest(model, method, lv, x)
        name = next(n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)) + ".weight"
        mask = masks.get(name, torch.ones_like(dict(model.named_parameters())[name])).clone()
        mask[0] = 0
        return {**masks, name: mask}

    e = decide("MH-6", {"dataset": "digits", "method": "channel"}, _structure_world(masked_fc_unit))
    assert e.verdict == "refuted"
