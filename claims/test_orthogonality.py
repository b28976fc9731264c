"""GC — Garcia Caño, *Investigating the orthogonality of model compression by pruning and
knowledge distillation* (thesis, 2025). Seed: ``shared/seeds/000_53a94a9e0ac28083.txt``.

Models (``fixtures/gc.py``): per teacher seed, iterative structured pruning down the schedule
of retained fractions with fine-tuning (pruned), the pruned architecture rewound to the
teacher's initial weights and distilled (distilled), and from each distilled checkpoint
further pruning to every lower level (mixed). Similarity: linear CKA on a fixed set of test
inputs, every conv/BN/linear layer. The teacher seed is the unit of analysis.
"""
from __future__ import annotations

import numpy as np
import pytest

from analysis.compound import all_of
from analysis.stats import Evidence, directional_test, equivalence_test, trend_test
from fixtures.claims import claim
from fixtures.gc import COMPARISONS, nanmean

# Thesis Table 1: mean CKA between pruned and distilled models by retained fraction.
PAPER_TABLE1 = {0.1: 0.700, 0.2: 0.788, 0.3: 0.810, 0.4: 0.806, 0.5: 0.836, 0.6: 0.837, 0.7: 0.840, 0.8: 0.858, 0.9: 0.859}
# Thesis §6.1 averages per comparison type.
PAPER_AVERAGES = {"pruned–distilled": 0.815, "mixed–pruned": 0.837, "mixed–distilled": 0.814, "mixed–mixed": 0.829}
# GC-2 regimes: retained fractions (inclusive) -> the thesis's CKA range.
REGIMES = {"extreme": ((0.1, 0.3), (0.65, 0.82)), "moderate": ((0.4, 0.6), (0.81, 0.88)), "mild": ((0.7, 0.9), (0.85, 1.0))}
TABLE = "GC mean CKA (pruned vs distilled) by retained fraction, ours vs thesis Table 1"


def _exp(p) -> str:
    return p.experiments("gc")[0].id if p.section("gc") else ""


def _cases(p, **more):
    if not p.section("gc"):
        return []
    return [{"setting": _exp(p), **more}]


def _regime_levels(levels, regime):
    lo, hi = REGIMES[regime][0]
    return [lv for lv in levels if lo - 1e-9 <= lv <= hi + 1e-9]


# ---------------------------------------------------------------- GC-1
GC1 = claim("GC-1", "Mean CKA between pruned and distilled models at the same level rises with retained capacity.",
            world="gc_world", paper="GC", cases=lambda p: _cases(p))


@GC1.measure
def measure_gc1(case, w, family_size):
    values = w.mean_cka("pruned–distilled")
    r = trend_test(values, w.levels, alternative="increasing", alpha=w.profile.alpha, family_size=family_size, rng=0)
    means = values.mean(0)
    rows = [{"table": TABLE, "row": case["setting"], "column": f"{lv:.0%}", "ours": float(m),
             "paper": PAPER_TABLE1.get(round(lv, 2)), "format": ".3f",
             "note": "Ours: mean over teacher seeds of the mean CKA over layers."} for lv, m in zip(w.levels, means)]
    return Evidence.from_result(
        "GC-1", case, r, paper_value={f"{k:.0%}": v for k, v in PAPER_TABLE1.items()},
        ours_value={f"{lv:.0%}": float(m) for lv, m in zip(w.levels, means)},
        figures=w.heatmap_figures(PAPER_TABLE1), details={"per_seed": values.tolist(), "table_rows": rows},
    )


@pytest.mark.claim("GC-1")
def test_gc1_similarity_rises_with_capacity(claim_evidence, check_verdict):
    """GC-1 (thesis §6.1, Table 1): "the average CKA similarity between pruned and distilled models
    increases from 0.7004 at 10% capacity to 0.8592 at 90% capacity".

    Test: Page's L trend test over retained fractions with teacher seeds as blocks (per-seed mean
    CKA over layers); effect = mean Kendall τ with a bootstrap CI over seeds.
    """
    check_verdict(claim_evidence)


# ---------------------------------------------------------------- GC-2
def _gc2_cases(p):
    if not p.section("gc"):
        return []
    levels = p.section("gc")["retained_fractions"]
    return [{"setting": _exp(p), "regime": r} for r in REGIMES if _regime_levels(levels, r)]


GC2 = claim("GC-2", "Three regimes: extreme (10–30 %) CKA 0.65–0.82, moderate (40–60 %) 0.81–0.88, mild (70–90 %) > 0.85.",
            world="gc_world", paper="GC", cases=_gc2_cases)


@GC2.measure
def measure_gc2(case, w, family_size):
    values = w.mean_cka("pruned–distilled")
    cols = [w.levels.index(lv) for lv in _regime_levels(w.levels, case["regime"])]
    ours = float(values[:, cols].mean())
    (lo, hi), tol = REGIMES[case["regime"]][1], w.section.get("regime_tolerance", 0.05)
    asserted = bool(w.section.get("assert_numbers", False))
    inside = lo - tol <= ours <= hi + tol
    verdict = ("supported" if inside else "refuted") if asserted else "inconclusive"
    return Evidence(
        claim_id="GC-2", params=dict(case), verdict=verdict, test=f"range check: thesis range [{lo}, {hi}] ± {tol}",
        effect=ours, effect_name="mean CKA (pruned vs distilled) over the regime's levels and seeds",
        n={"seeds": values.shape[0], "levels": len(cols)}, paper_value=[lo, hi], ours_value=ours, asserted=asserted,
        notes=[] if asserted else ["Number claim: reported, not asserted — this profile does not reproduce the "
                                   "thesis's setup (ResNet-18, CIFAR-10)."],
        details={"levels": [w.levels[c] for c in cols], "per_seed": values[:, cols].tolist(), "tolerance": tol},
    )


@pytest.mark.claim("GC-2")
def test_gc2_three_regimes(claim_evidence, check_verdict):
    """GC-2 (thesis §6.1): extreme (10–30 %) CKA 0.65–0.82, moderate (40–60 %) 0.81–0.88, mild
    (70–90 %) > 0.85.

    Number claim: ours beside the thesis's range; asserted (within ``regime_tolerance``) only in
    profiles that reproduce the thesis (``gc.assert_numbers``), reported otherwise.
    """
    check_verdict(claim_evidence)


# ---------------------------------------------------------------- GC-3
GC3 = claim("GC-3", "Early layers stay highly similar across methods and levels; similarity falls with depth, most in "
            "the second conv of each block and at high compression.", world="gc_world", paper="GC", cases=lambda p: _cases(p))


@GC3.measure
def measure_gc3(case, w, family_size):
    names = w.cka(w.families[0], w.levels[0])["layers"]
    per_layer = np.array([[w.cka(f, lv)["pruned–distilled"] for lv in w.levels] for f in w.families]).mean(1)  # (seeds, L)
    a = w.profile.alpha
    falls = trend_test(per_layer, list(range(len(names))), alternative="decreasing", alpha=a,
                       family_size=family_size, rng=0)
    early_idx = [names.index(n) for n in w.section["early_layers"] if n in names]
    threshold = w.section["early_layer_threshold"]
    early = per_layer[:, early_idx].mean(1)
    high = directional_test(early - threshold, None, alternative="greater", alpha=a, family_size=family_size)
    r = all_of({"CKA falls with depth": falls, f"early layers above {threshold}": high})
    second = [i for i, n in enumerate(names) if n.endswith("conv2")]
    return Evidence.from_result(
        "GC-3", case, r, paper_value={"conv1/bn1": "0.97–0.99", "second convs": "0.30–0.65", "skips": "0.75–0.85"},
        ours_value={"early layers": float(early.mean()),
                    "second convs": float(per_layer[:, second].mean()) if second else None,
                    "all layers": float(per_layer.mean())},
        figures=w.layerwise_figures(),
        details={"layers": names, "per_layer_mean": per_layer.mean(0).tolist(), "early_layers": w.section["early_layers"]},
    )


@pytest.mark.claim("GC-3")
def test_gc3_similarity_falls_with_depth(claim_evidence, check_verdict):
    """GC-3 (thesis §6.2): conv1/bn1 ≈ 0.97–0.99; second convs ≈ 0.30–0.65; skips ≈ 0.75–0.85.

    Test (both must hold): Page's trend test that per-layer pruned-vs-distilled CKA (mean over
    levels) decreases with layer depth, seeds as blocks; and a one-sided one-sample t-test over
    seeds that the early layers' CKA exceeds ``early_layer_threshold``.
    """
    check_verdict(claim_evidence)


# ---------------------------------------------------------------- GC-4
GC4 = claim("GC-4", "Mixed models are not more diverse: CKA(mixed, pruned) and CKA(mixed, distilled) are no lower than "
            "CKA(pruned, distilled).", world="gc_world", paper="GC",
            cases=lambda p: [c | {"vs": v} for c in _cases(p) for v in ("mixed–pruned", "mixed–distilled")])


@GC4.measure
def measure_gc4(case, w, family_size):
    mixed = w.mean_cka(case["vs"])
    pd_ = w.mean_cka("pruned–distilled")
    cols = ~np.isnan(mixed).any(0)  # levels that have mixed models (not the highest)
    m, p = mixed[:, cols].mean(1), pd_[:, cols].mean(1)
    margin = w.section["mixed_margin"]
    # Non-inferiority: H0 mean(mixed − P–D) ≤ −margin, one-sided paired t-test on (mixed + margin) vs P–D.
    r = directional_test(m + margin, p, paired=True, alternative="greater", alpha=w.profile.alpha, family_size=family_size)
    return Evidence.from_result(
        "GC-4", case, r, paper_value={k: PAPER_AVERAGES[k] for k in ("pruned–distilled", case["vs"])},
        ours_value={case["vs"]: float(m.mean()), "pruned–distilled": float(p.mean())},
        figures=w.accuracy_figures()[1:],
        notes=[f"Non-inferiority margin {margin} CKA; effect = mean({case['vs']} + margin − pruned–distilled)."],
        details={"per_seed_mixed": m.tolist(), "per_seed_pd": p.tolist(), "margin": margin,
                 "all_types_mean": {c: float(nanmean(w.mean_cka(c))) for c in COMPARISONS}},
    )


@pytest.mark.claim("GC-4")
def test_gc4_mixed_models_not_more_diverse(claim_evidence, check_verdict):
    """GC-4 (thesis §6.3): averages P–D 0.815, M–P 0.837, M–D 0.814, M–M 0.829 — "mixed models do not
    provide more diverse or complementary representations".

    Test: non-inferiority, one-sided paired t-test over seeds (mean over levels with mixed models)
    that CKA(mixed, X) > CKA(pruned, distilled) − ``mixed_margin``.
    """
    check_verdict(claim_evidence)


# ---------------------------------------------------------------- GC-5
GC5 = claim("GC-5", "Distilled and pruned models at the same level have closely matching accuracy across the spectrum.",
            world="gc_world", paper="GC",
            cases=lambda p: [c | {"retained": lv} for c in _cases(p) for lv in sorted(p.section("gc")["retained_fractions"])])


@GC5.measure
def measure_gc5(case, w, family_size):
    j = w.levels.index(case["retained"])
    acc_d, acc_p = w.accuracies("distilled")[:, j], w.accuracies("pruned")[:, j]
    margin = w.section["accuracy_margin"]
    r = equivalence_test(acc_d, acc_p, paired=True, low=-margin, upp=margin, alpha=w.profile.alpha, family_size=family_size)
    return Evidence.from_result(
        "GC-5", case, r, paper_value="Fig. 8: closely matching", figures=w.accuracy_figures()[:1],
        ours_value={"distilled": float(acc_d.mean()), "pruned": float(acc_p.mean())},
        details={"acc_distilled": acc_d.tolist(), "acc_pruned": acc_p.tolist(), "margin_points": margin},
    )


@pytest.mark.claim("GC-5")
def test_gc5_distilled_and_pruned_accuracy_match(claim_evidence, check_verdict):
    """GC-5 (thesis Fig. 8): distilled and pruned models have closely matching accuracy at every level.

    Test: paired TOST over seeds on the accuracy difference (distilled − pruned) with the profile's
    ``accuracy_margin`` in points; one case per level, Holm over levels.
    """
    check_verdict(claim_evidence)


# ---------------------------------------------------------------- GC-6
GC6 = claim("GC-6", "Pruning and distillation are not orthogonal; they diverge most under extreme compression.",
            world="gc_world", paper="GC", cases=lambda p: _cases(p))


@GC6.measure
def measure_gc6(case, w, family_size):
    values = w.mean_cka("pruned–distilled")  # ascending retained fraction: column 0 is the most extreme
    a = w.profile.alpha
    parts = {f"CKA at {lv:.0%} > at {w.levels[0]:.0%}": directional_test(values[:, j], values[:, 0], paired=True,
                                                                        alternative="greater", alpha=a, family_size=family_size)
             for j, lv in enumerate(w.levels) if j > 0}
    r = all_of(parts)
    return Evidence.from_result(
        "GC-6", case, r, paper_value="conclusion: most divergent at 10 %",
        ours_value={f"{lv:.0%}": float(v) for lv, v in zip(w.levels, values.mean(0))},
        details={"per_seed": values.tolist()},
    )


@pytest.mark.claim("GC-6")
def test_gc6_divergence_largest_at_extreme_compression(claim_evidence, check_verdict):
    """GC-6 (thesis, conclusion): pruning and distillation "diverge most under extreme compression".

    Test (intersection–union): for every other level, a one-sided paired t-test over seeds that
    pruned-vs-distilled CKA is higher there than at the most extreme level.
    """
    check_verdict(claim_evidence)
