"""GC — Garcia Caño, *Investigating the orthogonality of model compression by pruning and knowledge
distillation* (thesis, 2025). Seed: ``shared/seeds/000_53a94a9e0ac28083.txt``.

Models (``fixtures/papers/gc.py``): per teacher seed, iterative structured pruning with fine-tuning (pruned),
the pruned architecture rewound to the teacher's initial weights and distilled (distilled), and from each
distilled checkpoint further pruning to every lower level (mixed). Similarity: linear CKA on a fixed set
of test inputs, every conv/BN/linear layer. The unit is the teacher seed with its whole pipeline; levels
and layers are reduced to one number per seed before any test (CLAIMS.md rule 3).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.stats.family import Measurement
from analysis.stats.rules import AllOf, Directional, Equivalence, NonInferiority, Trend
from analysis.stats.units import UnitTable
from fixtures.claims import claim
from fixtures.papers.gc import COMPARISONS

# Thesis Table 1: mean CKA between pruned and distilled models by retained fraction.
PAPER_TABLE1 = {0.1: 0.700, 0.2: 0.788, 0.3: 0.810, 0.4: 0.806, 0.5: 0.836, 0.6: 0.837, 0.7: 0.840, 0.8: 0.858, 0.9: 0.859}
# Thesis §6.1 averages per comparison type.
PAPER_AVERAGES = {"pd": 0.815, "mp": 0.837, "md": 0.814, "mm": 0.829}
# GC-2 regimes: retained fractions (inclusive) and the two published sets of ranges.
REGIMES = {"extreme": (0.1, 0.3), "moderate": (0.4, 0.6), "mild": (0.7, 0.9)}
RANGES = {"section 6.4": {"extreme": (0.65, 0.82), "moderate": (0.81, 0.88), "mild": (0.85, 1.0)},
          "Table 1": {"extreme": (0.700, 0.810), "moderate": (0.806, 0.837), "mild": (0.840, 0.859)}}
TABLE = "GC mean CKA (pruned vs distilled) by retained fraction, ours vs thesis Table 1"
UNIT = "teacher seed with its own pruned, distilled and mixed models"


def _setting(p):
    sec = p.section("gc")
    return sec.experiments[0].id if sec else None


def _one(p, **more):
    return [{"setting": _setting(p), **more}] if p.section("gc") else []


def _table(world, values_of) -> UnitTable:
    """One row per seed: ``values_of(unit) -> {column: value}``; every unit's models are its own."""
    table = UnitTable(UNIT)
    for u in world.units:
        table.add(u.id, models=u.models(), **values_of(u))
    return table


def _pd_curve(world, unit) -> list[float]:
    return [world.mean_cka(unit, lv, "pd") for lv in world.levels]


def _numbers_not_asserted(world) -> tuple[bool, str]:
    if world.settings.assert_numbers:
        return True, ""
    return False, "number claim: this profile does not reproduce the thesis's setup (ResNet-18, CIFAR-10)"


# ---------------------------------------------------------------- GC-1
@claim("GC-1", "Mean CKA between pruned and distilled models rises with the retained capacity.", world="gc_world",
       needs=("models", "cka"),
       cases=lambda p: _one(p, check="trend") + _one(p, check="Table 1"))
def similarity_rises_with_capacity(case, world):
    """GC-1 (§6.1, Table 1): "the average CKA similarity between pruned and distilled models increases from
    0.7004 at 10% capacity to 0.8592 at 90% capacity".

    Trend: per seed, Kendall τ between retained fraction and layer-averaged CKA(P, D); one-sided t across
    seeds, τ > 0, δ = 0.5. Table 1 is a number claim (±0.03), asserted only where the profile reproduces it.
    """
    levels = world.levels
    curves = {u.id: _pd_curve(world, u) for u in world.units}
    means = np.mean(list(curves.values()), axis=0)
    ours = {f"{lv:.0%}": float(m) for lv, m in zip(levels, means)}
    paper = {f"{lv:.0%}": PAPER_TABLE1.get(round(lv, 2)) for lv in levels}
    if case["check"] == "Table 1":
        tol = world.effects.gc1_table_tolerance
        off = {k: round(ours[k] - v, 4) for k, v in paper.items() if v is not None and abs(ours[k] - v) > tol}
        asserted, reason = _numbers_not_asserted(world)
        return Measurement(verdict="refuted" if off else "supported", form="number", asserted=asserted,
                           not_asserted_reason=reason, test=f"number claim: every level within ±{tol:g} of Table 1",
                           effect=float(max((abs(v) for v in off.values()), default=0.0)),
                           effect_name="largest |ours − Table 1| outside the tolerance", paper_value=paper,
                           ours_value=ours, details={"outside_tolerance": off})
    table = _table(world, lambda u: {"Kendall tau": float(np.nan_to_num(stats.kendalltau(levels, curves[u.id]).statistic))})
    rows = [{"table": TABLE, "row": world.experiment_id, "column": f"{lv:.0%}", "ours": float(m),
             "paper": PAPER_TABLE1.get(round(lv, 2)), "format": ".3f",
             "note": "Ours: mean over teacher seeds of the layer-averaged CKA."} for lv, m in zip(levels, means)]
    rule = Trend("CKA rises with the retained fraction", "Kendall tau", alternative="greater",
                 delta=world.effects.gc1_tau, scale="Kendall tau", effect_name="mean per-seed Kendall τ")
    return Measurement(table=table, rule=rule, paper_value=paper, ours_value=ours,
                       figures=world.heatmap_figures(PAPER_TABLE1), details={"per_seed": curves, "table_rows": rows})


# ---------------------------------------------------------------- GC-2
def _regime_levels(levels, regime):
    lo, hi = REGIMES[regime]
    return [lv for lv in levels if lo - 1e-9 <= lv <= hi + 1e-9]


def _regimes_present(p):
    sec = p.section("gc")
    return [r for r in REGIMES if sec and _regime_levels(sec.retained_fractions, r)]


@claim("GC-2", "Similarity falls into three regimes: extreme (10–30 %) < moderate (40–60 %) < mild (70–90 %).",
       world="gc_world", needs=("models", "cka"),
       cases=lambda p: (_one(p, check="ordered") if len(_regimes_present(p)) >= 2 else [])
       + [c for name in RANGES for c in _one(p, check=name)])
def three_regimes(case, world):
    """GC-2 (§6.4): extreme 0.65–0.82, moderate 0.81–0.88, mild > 0.85 (Table 1 gives 0.700–0.810 /
    0.806–0.837 / 0.840–0.859, breaking §6.4 at 40 % and 70 %).

    Per seed, mean CKA(P, D) per regime; paired one-sided t across seeds for moderate > extreme and
    mild > moderate, universal, δ = 0.02. Both sets of ranges are number claims (asserted only where the
    profile reproduces the thesis).
    """
    present = _regimes_present(world.profile)
    per_seed = {u.id: {r: float(np.mean([world.mean_cka(u, lv, "pd") for lv in _regime_levels(world.levels, r)]))
                       for r in present} for u in world.units}
    ours = {r: float(np.mean([v[r] for v in per_seed.values()])) for r in present}
    if case["check"] != "ordered":
        ranges, tol = RANGES[case["check"]], world.effects.gc2_range_tolerance
        outside = {r: ours[r] for r in present if not ranges[r][0] - tol <= ours[r] <= ranges[r][1] + tol}
        asserted, reason = _numbers_not_asserted(world)
        return Measurement(verdict="refuted" if outside else "supported", form="number", asserted=asserted,
                           not_asserted_reason=reason,
                           test=f"number claim: each regime's mean CKA inside the {case['check']} range (± {tol:g})",
                           paper_value={r: list(ranges[r]) for r in present}, ours_value=ours,
                           details={"outside": outside, "per_seed": per_seed})
    pairs = [(a, b) for a, b in zip(present, present[1:])]  # extreme < moderate < mild, as far as present
    table = _table(world, lambda u: {f"{b} − {a}": per_seed[u.id][b] - per_seed[u.id][a] for a, b in pairs})
    rule = AllOf("every step", *(Directional(f"{b} above {a}", f"{b} − {a}", alternative="greater",
                                             delta=world.effects.gc2_delta, scale="CKA",
                                             effect_name=f"mean CKA difference, {b} − {a}") for a, b in pairs))
    return Measurement(table=table, rule=rule, paper_value={k: list(v) for k, v in RANGES["section 6.4"].items()},
                       ours_value=ours, details={"per_seed": per_seed},
                       notes=["Distinct steps vs a smooth rise is not tested (the thesis gives no criterion); "
                              "largely implied by GC-1."])


# ---------------------------------------------------------------- GC-3
@claim("GC-3", "Early layers stay highly similar across methods and levels; similarity falls with depth.",
       world="gc_world", needs=("models", "cka"), cases=lambda p: _one(p))
def similarity_falls_with_depth(case, world):
    """GC-3 (§6.2): "early layers (e.g., conv1, bn1) exhibit high similarity (CKA ≈ 0.97–0.99) across all
    methods and compression levels"; deeper layers "show greater differentiation".

    Both parts, per seed. (a) The minimum over levels and comparison types of CKA at the early layers:
    non-inferiority to 0.97 with margin 0.02 (L = 0.95). (b) Kendall τ between layer index and CKA(P, D) per
    level, averaged over levels: one-sided t across seeds, τ < 0, δ = 0.3. Second-conv and high-compression
    contrasts are reported per seed.
    """
    names = world.layers()
    early = [names.index(n) for n in world.settings.early_layers]
    second = [i for i, n in enumerate(names) if n.endswith("conv2")]
    fx = world.effects
    contrasts = {}

    def values(u):
        lowest = []
        taus = []
        for lv in world.levels:
            c = world.cka(u, lv)
            for key in COMPARISONS:
                rows = c[key] if c[key].ndim == 2 else c[key][None, :]
                if rows.size:
                    lowest.append(float(rows.mean(axis=0)[early].min()))
            taus.append(float(np.nan_to_num(stats.kendalltau(np.arange(len(names)), c["pd"]).statistic)))
        pd_layers = np.mean([world.cka(u, lv)["pd"] for lv in world.levels], axis=0)
        contrasts[u.id] = {
            "second convs − other layers": float(pd_layers[second].mean() - np.delete(pd_layers, second).mean()) if second else None,
            "lowest − highest level": world.mean_cka(u, world.levels[0], "pd") - world.mean_cka(u, world.levels[-1], "pd"),
        }
        return {"early-layer minimum": min(lowest), "Kendall tau over depth": float(np.mean(taus))}

    table = _table(world, values)
    rule = AllOf("both parts",
                 NonInferiority("early layers stay similar", "early-layer minimum", reference=fx.gc3_reference,
                                margin=fx.gc3_margin, alternative="greater", scale="CKA",
                                effect_name="mean per-seed minimum CKA at " + ", ".join(world.settings.early_layers)),
                 Trend("CKA falls with depth", "Kendall tau over depth", alternative="less", delta=fx.gc3_tau,
                       scale="Kendall tau", effect_name="mean per-seed Kendall τ of CKA on layer index"))
    pd_mean = np.mean([[world.cka(u, lv)["pd"] for lv in world.levels] for u in world.units], axis=(0, 1))
    return Measurement(table=table, rule=rule, figures=world.layerwise_figures(),
                       paper_value={"conv1/bn1": "0.97–0.99", "second convs": "0.30–0.65", "skips": "0.75–0.85"},
                       ours_value={"early layers": float(pd_mean[early].mean()),
                                   "second convs": float(pd_mean[second].mean()) if second else None,
                                   "all layers": float(pd_mean.mean())},
                       details={"layers": names, "per_layer_mean": pd_mean.tolist(), "contrasts_per_seed": contrasts})


# ---------------------------------------------------------------- GC-4
@claim("GC-4", "Mixed models are not more diverse: CKA(mixed, pruned) and CKA(mixed, distilled) are not below "
       "CKA(pruned, distilled).", world="gc_world", needs=("models", "cka"), cases=lambda p: _one(p))
def mixed_models_not_more_diverse(case, world):
    """GC-4 (§6.1, §7): mixed models have CKA "comparable to, or even higher than" pruned vs distilled.
    Thesis averages: P–D 0.815, M–P 0.837, M–D 0.814, M–M 0.829.

    Non-inferiority, universal over two contrasts: per seed, level-averaged CKA(M, P) − CKA(P, D) and
    CKA(M, D) − CKA(P, D) over the levels where mixed models exist (branches averaged within a seed);
    L = −0.02. M–M is reported.
    """
    levels = [lv for lv in world.levels if world.units[0].mixed_at(lv)]

    def values(u):
        pd_ = np.mean([world.mean_cka(u, lv, "pd") for lv in levels])
        return {f"{k} − pd": float(np.mean([world.mean_cka(u, lv, k) for lv in levels]) - pd_) for k in ("mp", "md")}

    table = _table(world, values)
    rule = AllOf("both contrasts", *(NonInferiority(
        f"{COMPARISONS[k]} not below pruned vs distilled", f"{k} − pd", reference=0.0, margin=world.effects.gc4_margin,
        alternative="greater", scale="CKA", effect_name=f"mean CKA difference, {COMPARISONS[k]} − pruned vs distilled")
        for k in ("mp", "md")))
    ours = {}
    for k in COMPARISONS:  # mixed vs mixed needs two mixed models at a level: absent from short schedules
        values = [v for u in world.units for lv in levels if np.isfinite(v := world.mean_cka(u, lv, k))]
        ours[COMPARISONS[k]] = float(np.mean(values)) if values else None
    return Measurement(table=table, rule=rule, figures=world.accuracy_figures()[1:],
                       paper_value={COMPARISONS[k]: v for k, v in PAPER_AVERAGES.items()}, ours_value=ours,
                       details={"levels": levels})


# ---------------------------------------------------------------- GC-5
@claim("GC-5", "Distilled models match the accuracy of the pruned (or distilled-then-pruned) models at every level.",
       world="gc_world", needs=("models",), cases=lambda p: _one(p, vs="pruned") + _one(p, vs="mixed"))
def distilled_and_pruned_accuracy_match(case, world):
    """GC-5 (§6.3; Fig. 8): the curves "closely follow each other", "comparable predictive performance across
    the entire compression spectrum". Fig. 8 may show distillation followed by pruning: two instances,
    (A) distilled vs pruned at the same level, (B) distilled vs mixed (distilled, then pruned to that level).

    Per seed and level, the accuracy difference; equivalence within ±1 point (TOST), universal over levels.
    Reported: |difference| at the lowest level minus at the highest.
    """
    levels = world.levels if case["vs"] == "pruned" else [lv for lv in world.levels if world.units[0].mixed_at(lv)]

    def other(u, lv):
        if case["vs"] == "pruned":
            return world.acc(u.pruned[lv])
        return float(np.mean([world.acc(m) for m in u.mixed_at(lv)]))

    table = _table(world, lambda u: {f"at {lv:.0%}": world.acc(u.distilled[lv]) - other(u, lv) for lv in levels})
    margin = world.effects.gc5_margin
    rule = AllOf("every level", *(Equivalence(
        f"at {lv:.0%}", f"at {lv:.0%}", low=-margin, upp=margin, scale="points",
        effect_name=f"mean accuracy difference at {lv:.0%}, distilled − {case['vs']}") for lv in levels))
    data = table.data()
    diff = {f"{lv:.0%}": float(np.mean(data[f"at {lv:.0%}"])) for lv in levels}
    spread = abs(diff[f"{levels[0]:.0%}"]) - abs(diff[f"{levels[-1]:.0%}"])
    return Measurement(table=table, rule=rule, figures=world.accuracy_figures()[:1],
                       paper_value="Fig. 8: closely matching", ours_value=diff,
                       notes=[f"|difference| at {levels[0]:.0%} minus at {levels[-1]:.0%}: {spread:+.2f} points "
                              "(§8 expects larger differences under extreme compression)."])


# ---------------------------------------------------------------- GC-6
@claim("GC-6", "Pruning and distillation diverge most under extreme compression.", world="gc_world",
       needs=("models", "cka"),
       cases=lambda p: _one(p))
def most_divergent_under_extreme_compression(case, world):
    """GC-6 (§8, §6.1): at high compression they "discover distinct, technique-specific subnetworks"; 10 %
    gives "the most distinct internal representations". Thesis: 0.700 at 10 %, on its own 0.70 line.

    Per seed, CKA(P, D) at every other level minus at the most extreme level; one-sided paired t each,
    universal, δ = 0.02. Reported per level: mean CKA(P, D) and whether it is above the 0.70 line.
    """
    levels = world.levels
    curves = {u.id: _pd_curve(world, u) for u in world.units}
    table = _table(world, lambda u: {f"{lv:.0%} − {levels[0]:.0%}": curves[u.id][j] - curves[u.id][0]
                                     for j, lv in enumerate(levels) if j > 0})
    rule = AllOf("every other level", *(Directional(
        f"above the extreme at {lv:.0%}", f"{lv:.0%} − {levels[0]:.0%}", alternative="greater",
        delta=world.effects.gc6_delta, scale="CKA", effect_name=f"mean CKA difference, {lv:.0%} − {levels[0]:.0%}")
        for lv in levels[1:]))
    line = world.effects.orthogonality_line
    above = {}
    for j, lv in enumerate(levels):
        x = np.array([c[j] for c in curves.values()])
        above[f"{lv:.0%}"] = {"mean": float(x.mean()),
                              "p_above_line": float(stats.ttest_1samp(x, line, alternative="greater").pvalue)
                              if len(x) > 1 and x.std() > 0 else None}
    return Measurement(table=table, rule=rule, paper_value={"10 %": 0.700, "Fig. 5 line": line},
                       ours_value={k: v["mean"] for k, v in above.items()},
                       details={"above_orthogonality_line": above, "per_seed": curves},
                       notes=["Largely follows from GC-1: a rising trend puts the minimum at the most extreme level."])
