"""MW — Mason-Williams, *Neural Network Compression: The Functional Perspective*.

Seeds: ``shared/seeds/001_fb7ed6aaac402345.txt`` (long) and ``004_…`` (short).
The paper draws t-SNE "functional landscapes" and gives no distance or test;
the functional distance of two models is the mean Jensen–Shannon divergence
of their test-set softmax outputs (profile key ``mw.distance``). The unit is
a base model B_i with its own independent partner, students, same-init control
and compressed copies (``fixtures/papers/mw.py``); every claim below is one
declaration whose decision rule is the one CLAIMS.md states, Holm-adjusted
over its instances by the suite.

Accuracy deviations are *relative* % of the base's accuracy, as the paper's
Tables 3–5 ("Percentage deviation in accuracy from the base model").
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from analysis.stats.family import Measurement
from analysis.stats.rules import (AllOf, AnyOf, Directional, Equivalence, GroupDifference, GroupsDiffer,
                                  NonInferiority, Trend)
from analysis.stats.units import UnitTable
from fixtures.claims import claim
from fixtures.papers.mw import mw_units_for

# The paper's Tables 3–5: relative % deviation in accuracy from the base model.
PAPER_DEVIATION = {
    ("mnist", "lenet5"): {"kd": {0.1: -0.178, 0.5: -0.124, 0.9: -0.215}, "fp16": -0.07, "int8": -0.05,
                          "prune": {0.1: -0.07, 0.3: -0.08, 0.5: -0.01, 0.7: -1.04, 0.9: -22.55}},
    ("cifar10", "lenet5"): {"kd": {0.1: 8.74, 0.5: 8.93, 0.9: 8.57}, "fp16": -0.62, "int8": -0.33,
                            "prune": {0.1: -0.25, 0.3: -0.60, 0.5: -2.95, 0.7: -14.56, 0.9: -78.466}},
    ("cifar10", "resnet50"): {"kd": {0.1: -0.74, 0.5: -3.41, 0.9: 0.09}, "fp16": 0.00, "int8": -0.56,
                              "prune": {0.1: -0.08, 0.3: 0.48, 0.5: -0.03, 0.7: -0.04, 0.9: -85.30}},
    ("cifar10", "mobilenet_v1"): {"kd": {0.1: -18.25, 0.5: -20.08, 0.9: -21.15}, "fp16": 0.02, "int8": 0.07,
                                  "prune": {0.1: -16.84, 0.3: -83.70, 0.5: -85.43, 0.7: -83.84, 0.9: -85.40}},
    ("cifar100", "lenet5"): {"kd": {0.1: 15.64, 0.5: 15.71, 0.9: 15.63}, "fp16": 0.00, "int8": -0.16,
                             "prune": {0.1: -0.13, 0.3: -0.7, 0.5: -4.0, 0.7: -32.31, 0.9: -85.62}},
    ("cifar100", "resnet50"): {"kd": {0.1: -5.20, 0.5: 0.0, 0.9: 1.56}, "fp16": -0.08, "int8": -0.16,
                               "prune": {0.1: 0.05, 0.3: -0.16, 0.5: -1.45, 0.7: -96.97, 0.9: -97.34}},
    ("cifar100", "mobilenet_v1"): {"kd": {0.1: -26.66, 0.5: -25.63, 0.9: -27.35}, "fp16": 0.17, "int8": -0.03,
                                   "prune": {0.1: -36.26, 0.3: -95.74, 0.5: -96.01, 0.7: -96.43, 0.9: -96.57}},
}
TABLE = "MW accuracy deviation from the base model (relative %, as the paper's Tables 3–5), ours vs paper"
UNIT = "base model B_i with its own independent I_i, students, same-init control and compressed copies"
MNIST_LIKE = ("mnist", "digits", "fake")  # the datasets where MW-9's MNIST statement applies
# MW-8: ratios at which the paper has ResNet-50 holding its accuracy (CIFAR-10: to 70 %, CIFAR-100: to 50 %).
RESNET50_HOLDS = {"cifar10": 0.7, "cifar100": 0.5}


def _paper(exp, *keys):
    node = PAPER_DEVIATION.get((exp.dataset, exp.arch))
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def _relative(acc: float, base_acc: float) -> float:
    """Relative % deviation of an accuracy from the base's (the unit of the paper's Tables 3–5); NaN for a base of
    accuracy 0, where it is undefined (the unit is then left out and named: ``leave_out_nonfinite``)."""
    return 100.0 * (acc - base_acc) / base_acc if base_acc > 0 else math.nan


def _row(exp_id: str, column: str, ours: float, paper) -> dict:
    return {"table": TABLE, "row": exp_id, "column": column, "ours": round(float(ours), 3), "paper": paper,
            "note": "Ours: mean over units of 100·(acc − acc_B)/acc_B. The paper's values exist only for its own "
                    "dataset/architecture pairs; its KD columns are means of three student seeds."}


def _full(profile):
    sec = profile.section("mw")
    return [e for e in sec.experiments if e.role == "full"] if sec else []


def _kd_variants(profile, exp):
    return exp.kd_variants if exp.kd_variants is not None else profile.section("mw").kd_variants


def _weights(world):
    return world.settings.kd_teacher_weights


# ---------------------------------------------------------------- MW-1
@claim("MW-1", "Knowledge-distillation students are not functionally closer to their teacher than independently "
       "trained models are, for every α.", world="mw_world",
       needs=("base", "independent", "students", "controls", "quantized", "pruned"),  # + its landscape figure
       cases=lambda p: [{"exp": e.id, "kd": v, "vs": vs} for e in _full(p) for v in _kd_variants(p, e)
                        for vs in ("independent", "same_init")])
def students_not_closer_than_independents(case, world):
    """MW-1 (§1, §4.1): KD gives "a student model that is as functionally dissimilar to the teacher as
    independently trained models". Paper: landscapes only.

    Non-inferiority, universal over α: per unit, log d(S_i, B_i) − log d(R_i, B_i) with R_i the unit's own
    independent I_i (``vs=independent``) or same-init control C_i (``vs=same_init``); supported when the
    lower one-sided (1−α) bound exceeds log 0.8 for every α (students farther also support it).
    """
    exp = world.experiment(case["exp"])
    variant, margin = case["kd"], -math.log(world.effects.mw1_ratio_bound)
    table = UnitTable("teacher B_i with its own student per α and its own independent I_i / same-init control C_i")
    for u in exp.units:
        ref = u.independent if case["vs"] == "independent" else u.controls[variant]
        students = [u.students[(variant, w)] for w in _weights(world)]
        table.add(u.id, models=[u.base, ref, *students],
                  **{f"w={w}": world.log_distance(s, u.base) - world.log_distance(ref, u.base)
                     for w, s in zip(_weights(world), students)})
    rule = AllOf("every α", *(NonInferiority(
        f"w={w}", f"w={w}", reference=0.0, margin=margin, alternative="greater", scale="log ratio",
        effect_name=f"mean log distance ratio to the teacher, student (w={w}) / {case['vs'].replace('_', '-')}")
        for w in _weights(world)))
    return Measurement(table=table, rule=rule, figures=world.landscape_figures(exp.id),
                       paper_value="landscapes only: students as far from the teacher as independents",
                       ours_value={f"w={w}": float(np.exp(np.mean(table.data()[f"w={w}"]))) for w in _weights(world)},
                       notes=["ours_value: geometric-mean ratio of the student's distance to the teacher over the "
                              "reference's, per teacher weight w (the paper's α)."])


# ---------------------------------------------------------------- MW-2
@claim("MW-2", "The KD weight α does not change how close the student is to its teacher.", world="mw_world",
       needs=("base", "students"),
       cases=lambda p: [{"exp": e.id, "kd": v} for e in _full(p) for v in _kd_variants(p, e)
                        if len(p.section("mw").kd_teacher_weights) >= 2])
def alpha_does_not_change_similarity(case, world):
    """MW-2 (§1, §4.1): "Different α values do not impact the degree of functional similarity between a
    student and a teacher". Paper: landscapes only.

    Equivalence, universal over the α pairs: per unit log d(S_a, B) − log d(S_b, B), TOST within
    [log 0.8, log 1.25]. The per-unit Kendall τ of distance on α is reported.
    """
    exp = world.experiment(case["exp"])
    variant = case["kd"]
    low, upp = (math.log(b) for b in world.effects.mw2_ratio_bounds)
    weights = _weights(world)
    pairs = list(itertools.combinations(weights, 2))
    table = UnitTable("teacher B_i with its own student per α")
    taus = []
    for u in exp.units:
        logd = {w: world.log_distance(u.students[(variant, w)], u.base) for w in weights}
        taus.append(float(np.nan_to_num(stats.kendalltau(weights, [logd[w] for w in weights]).statistic)))
        table.add(u.id, models=[u.base, *(u.students[(variant, w)] for w in weights)],
                  **{f"w={b} vs w={a}": logd[b] - logd[a] for a, b in pairs})
    rule = AllOf("every pair of α", *(Equivalence(
        f"w={b} vs w={a}", f"w={b} vs w={a}", low=low, upp=upp, scale="log ratio",
        effect_name=f"mean log ratio of the distances to the teacher, w={b} / w={a}") for a, b in pairs))
    return Measurement(table=table, rule=rule, paper_value="landscapes only: no change with α",
                       ours_value={"mean Kendall τ of distance on α": float(np.mean(taus))},
                       details={"kendall_tau_per_unit": taus})


# ---------------------------------------------------------------- MW-3
def _sixteen_bit(schemes):
    return next((s for s in schemes if s in ("fp16", "bf16")), None)


_COLUMN = {"fp16": "16-bit", "bf16": "16-bit", "int8": "8-bit", "int4": "4-bit"}


@claim("MW-3", "Post-hoc quantization preserves function best: closer to the base than independent models and than "
       "the lightest pruning, with a tiny accuracy deviation.", world="mw_world",
       needs=("base", "independent", "quantized", "pruned"),
       cases=lambda p: [{"exp": e.id} for e in _full(p)])
def quantization_preserves_function_best(case, world):
    """MW-3 (§1, §5.2): "Post Hoc Quantization is the best method for functional preservation across all
    architectures and datasets". Paper: |deviation| ≤ 0.62 % relative in every 16/8-bit column.

    Universal over three parts × bit widths; unit: base with its own independent. (a) log d(Q, B) − log d(I, B)
    < 0, δ = log 2; (b) relative accuracy deviation within ±1 % (TOST); (c) log d(Q, B) − log d(P_10%, B) < 0,
    δ = log 1.5 (pruning of the paper's text, the profile's lowest ratio).
    """
    exp = world.experiment(case["exp"])
    fx, schemes = world.effects, world.settings.quant_schemes
    lightest = (world.settings.prune_variants[0], world.settings.prune_ratios[0])
    table = UnitTable(UNIT, leave_out_nonfinite=True)  # a base of accuracy 0 has no relative deviation
    for u in exp.units:
        pruned, acc_b = u.pruned[lightest], world.acc(u.base)
        values = {}
        for q in schemes:
            d_q = world.log_distance(u.quantized[q], u.base)
            values[f"{q} closer than independent"] = d_q - world.log_distance(u.independent, u.base)
            values[f"{q} accuracy deviation"] = _relative(world.acc(u.quantized[q]), acc_b)
            values[f"{q} closer than pruning"] = d_q - world.log_distance(pruned, u.base)
        table.add(u.id, models=[u.base, u.independent, pruned, *u.quantized.values()], **values)
    parts = []
    for q in schemes:
        parts += [
            Directional(f"{q} closer than independent", f"{q} closer than independent", alternative="less",
                        delta=math.log(fx.mw3_closer_ratio), scale="log ratio",
                        effect_name=f"mean log distance ratio to the base, {q} / independent"),
            Equivalence(f"{q} accuracy deviation", f"{q} accuracy deviation", low=-fx.mw3_accuracy_margin,
                        upp=fx.mw3_accuracy_margin, scale="relative %",
                        effect_name=f"mean relative accuracy deviation of {q} from the base"),
            Directional(f"{q} closer than pruning", f"{q} closer than pruning", alternative="less",
                        delta=math.log(fx.mw3_vs_pruning_ratio), scale="log ratio",
                        effect_name=f"mean log distance ratio to the base, {q} / L1 {lightest[1]:.0%}"),
        ]
    data = table.data()
    rows = [_row(exp.id, _COLUMN[q], float(np.mean(data[f"{q} accuracy deviation"])),
                 _paper(exp.exp, "fp16" if q in ("fp16", "bf16") else q)) for q in schemes]
    return Measurement(
        table=table, rule=AllOf("every part and bit width", *parts),
        paper_value={_COLUMN[q]: _paper(exp.exp, "fp16" if q in ("fp16", "bf16") else q) for q in schemes},
        ours_value={_COLUMN[q]: float(np.mean(data[f"{q} accuracy deviation"])) for q in schemes},
        notes=["paper_value / ours_value: relative accuracy deviation of the quantized base (%). Quantized: "
               + ("weights and calibrated layer inputs (a declared variant)" if world.settings.quant_activations
                  else "weights only, as the paper's code (float16 weights; per-channel int8 weights, float "
                       "activations)") + "."],
        details={"table_rows": rows})


# ---------------------------------------------------------------- MW-4
def _mw4_cases(p):
    sec = p.section("mw")
    if sec is None or _sixteen_bit(sec.quant_schemes) is None or "int8" not in sec.quant_schemes:
        return []
    return [{"exp": e.id} for e in _full(p)]


@claim("MW-4", "16-bit quantization is functionally closer to the base model than 8-bit.", world="mw_world",
       needs=("base", "quantized"),
       cases=_mw4_cases)
def sixteen_bit_closer_than_eight(case, world):
    """MW-4 (§4.1): "the 16-bit quantization being the closest representation and the 8-bit quantization being
    slightly more dissimilar" (MNIST LeNet, Fig. 2; other experiments are extensions).

    Directional: per base log d(Q8, B) − log d(Q16, B) > 0, one-sided t across bases, δ = log 1.5.
    """
    exp = world.experiment(case["exp"])
    s16 = _sixteen_bit(world.settings.quant_schemes)
    table = UnitTable("base model B_i with its own quantized copies")
    for u in exp.units:
        table.add(u.id, models=[u.base, u.quantized[s16], u.quantized["int8"]],
                  **{"8-bit vs 16-bit": world.log_distance(u.quantized["int8"], u.base)
                     - world.log_distance(u.quantized[s16], u.base)})
    rule = Directional("8-bit farther than 16-bit", "8-bit vs 16-bit", alternative="greater",
                       delta=math.log(world.effects.mw4_ratio), scale="log ratio",
                       effect_name=f"mean log distance ratio to the base, int8 / {s16}")
    extension = [] if (exp.exp.dataset, exp.exp.arch) == ("mnist", "lenet5") else [
        "Extension: the paper states MW-4 for MNIST LeNet only (Fig. 2)."]
    return Measurement(table=table, rule=rule, paper_value="landscape (Fig. 2): 16-bit closest",
                       ours_value=float(np.exp(np.mean(table.data()["8-bit vs 16-bit"]))), deviations=extension,
                       notes=["ours_value: geometric-mean ratio d(int8, B) / d(16-bit, B)."])


# ---------------------------------------------------------------- MW-5
def _threshold(ratios, gaps) -> float:
    """r*: the largest pruned fraction still closer to the base than the unit's independent model.

    ``gaps`` = log d(P_r, B) − log d(I, B) per ratio (negative = closer). 0 if not closer at the lowest ratio,
    the top ratio if closer at every ratio, else linear interpolation at the first crossing.
    """
    if gaps[0] >= 0:
        return 0.0
    for j in range(1, len(ratios)):
        if gaps[j] >= 0:
            lo, hi = ratios[j - 1], ratios[j]
            return float(lo + (hi - lo) * (-gaps[j - 1]) / (gaps[j] - gaps[j - 1]))
    return float(ratios[-1])


def _by_dataset(p):
    out: dict[str, list] = {}
    for e in _full(p):
        out.setdefault(e.dataset, []).append(e)
    return out


@claim("MW-5", "L1 pruning preserves function up to a pruned fraction that depends on the architecture.",
       world="mw_world",
       needs=("base", "independent", "pruned"), cases=lambda p: [{"dataset": ds, "pruning": v} for ds in _by_dataset(p)
                                         for v in p.section("mw").prune_variants])
def pruning_preserves_function_up_to_a_threshold(case, world):
    """MW-5 (§1, abstract): "the optimal percentage pruned is architecture and dataset-dependent".

    Both parts; unit: base with its own independent. (a) per architecture, closer than the independent at the
    lowest ratio (log d(P, B) − log d(I, B) < 0, δ = log 2); (b) the threshold r* (largest fraction still closer,
    interpolated) differs between architectures: Kruskal–Wallis (two-sided), δ = 0.2; refuted by TOST.
    """
    ratios = list(world.settings.prune_ratios)
    exps = [world.experiment(e.id) for e in _by_dataset(world.profile)[case["dataset"]]]
    table = UnitTable("base model B_i with its own independent I_i and pruned copies")
    rows, rstar = [], {}
    for exp in exps:
        arch = exp.exp.arch
        for u in exp.units:
            gaps = [world.log_distance(u.pruned[(case["pruning"], r)], u.base) - world.log_distance(u.independent, u.base)
                    for r in ratios]
            table.add(f"{arch}/{u.id}", group=arch, models=[u.base, u.independent, *(u.pruned[(case["pruning"], r)] for r in ratios)],
                      **{"closer at the lowest ratio": gaps[0], "threshold r*": _threshold(ratios, gaps)})
        rstar[arch] = float(np.mean(table.data()[f"threshold r*|{arch}"]))
        if case["pruning"] == "text":
            for r in ratios:
                dev = np.mean([_relative(world.acc(u.pruned[("text", r)]), world.acc(u.base)) for u in exp.units])
                rows.append(_row(exp.id, f"L1 {r:.0%}", dev, _paper(exp.exp, "prune", r)))
    archs = tuple(e.exp.arch for e in exps)
    parts = [Directional(f"closer at {ratios[0]:.0%} ({a})", "closer at the lowest ratio", group=a, alternative="less",
                         delta=math.log(world.effects.mw5_closer_ratio), scale="log ratio",
                         effect_name=f"mean log distance ratio to the base, pruned {ratios[0]:.0%} / independent ({a})")
             for a in archs]
    asserted, reason = True, ""
    if len(archs) >= 2:
        parts.append(GroupsDiffer("r* differs across architectures", "threshold r*", groups=archs,
                                  delta=world.effects.mw5_threshold_delta, scale="pruned fraction",
                                  effect_name="threshold r*"))
    else:
        asserted, reason = False, (f"part (b) needs two architectures on {case['dataset']}; part (a) alone "
                                   "is almost unfalsifiable (CLAIMS.md)")
    return Measurement(table=table, rule=AllOf("both parts", *parts), asserted=asserted, not_asserted_reason=reason,
                       paper_value="architecture- and dataset-dependent optimal pruning (Tables 3–5, pruning columns)",
                       ours_value={f"mean r* ({a})": v for a, v in rstar.items()},
                       details={"table_rows": rows, "ratios": ratios})


# ---------------------------------------------------------------- MW-6
@claim("MW-6", "Functional distance from the base grows with the pruned fraction.", world="mw_world",
       needs=("base", "pruned"),
       cases=lambda p: [{"exp": e.id, "pruning": v} for e in _full(p) for v in p.section("mw").prune_variants])
def distance_grows_with_pruning(case, world):
    """MW-6 (§4.1): "As the global pruning factor increases ... the resulting pruned models move away in
    functional similarity from the base model".

    Trend: per base, Kendall τ between pruned fraction and d(P_r(B), B); one-sided t across bases, τ > 0,
    δ = 0.5. Global masks are nested, so a rise is nearly certain by construction; the slope is reported.
    """
    exp = world.experiment(case["exp"])
    ratios = list(world.settings.prune_ratios)
    table = UnitTable("base model B_i with its own pruned copies")
    curves, slopes = [], []
    for u in exp.units:
        d = [world.distance(u.pruned[(case["pruning"], r)], u.base) for r in ratios]
        curves.append(d)
        slopes.append(float(np.polyfit(ratios, d, 1)[0]))
        tau = float(np.nan_to_num(stats.kendalltau(ratios, d).statistic))
        table.add(u.id, models=[u.base, *(u.pruned[(case["pruning"], r)] for r in ratios)], **{"Kendall tau": tau})
    rule = Trend("distance rises with the pruned fraction", "Kendall tau", alternative="greater",
                 delta=world.effects.mw6_tau, scale="Kendall tau", effect_name="mean per-unit Kendall τ")
    return Measurement(table=table, rule=rule, paper_value="landscape (Fig. 2): distance grows with the pruned fraction",
                       ours_value={f"{r:.0%}": float(v) for r, v in zip(ratios, np.mean(curves, axis=0))},
                       figures=world.trend_figure(exp.id, case["pruning"], ratios, curves),
                       details={"distances": curves, "mean_slope": float(np.mean(slopes)), "slopes": slopes},
                       notes=["Nested global masks make a rise nearly certain; the mean slope "
                              f"({np.mean(slopes):.3g} {world.metric} per unit fraction) is the informative number."])


# ---------------------------------------------------------------- MW-7
@claim("MW-7", "Accuracy is a false proxy for function: independent models match the base's accuracy, while a "
       "pruned model can lose much accuracy and stay functionally closer.", world="mw_world",
       needs=("base", "independent", "pruned"),
       cases=lambda p: [{"exp": e.id, "pruning": v} for e in _full(p) for v in p.section("mw").prune_variants])
def accuracy_is_a_false_proxy(case, world):
    """MW-7 (short §1; §4.2): "accuracy is a false similarity proxy"; at 70 % pruning LeNet/CIFAR-10 lost
    −14.56 % (relative) "the functional similarity remains very close".

    Both parts; unit: base with its own independent. (a) TOST on acc(I) − acc(B) within ±2 points.
    (b) existential over the ratios (Holm): at some r, the pruned base lost more than 5 points (one-sided,
    H0: loss ≤ 5) and is closer to B than I is (δ = log 2), both at that r.
    """
    exp = world.experiment(case["exp"])
    fx, ratios = world.effects, list(world.settings.prune_ratios)
    table = UnitTable("base model B_i with its own independent I_i and pruned copies")
    for u in exp.units:
        acc_b, d_i = world.acc(u.base), world.log_distance(u.independent, u.base)
        values = {"independent − base accuracy": world.acc(u.independent) - acc_b}
        for r in ratios:
            p = u.pruned[(case["pruning"], r)]
            values[f"loss at {r:.0%}"] = acc_b - world.acc(p)
            values[f"closer at {r:.0%}"] = world.log_distance(p, u.base) - d_i
        table.add(u.id, models=[u.base, u.independent, *(u.pruned[(case["pruning"], r)] for r in ratios)], **values)
    settings = [AllOf(f"at {r:.0%}", Directional(
        f"lost > {fx.mw7_loss_points:g} points at {r:.0%}", f"loss at {r:.0%}", alternative="greater",
        null=fx.mw7_loss_points, delta=fx.mw7_loss_delta, scale="points", effect_name=f"mean accuracy loss at {r:.0%}"),
        Directional(f"closer than independent at {r:.0%}", f"closer at {r:.0%}", alternative="less",
                    delta=math.log(fx.mw7_closer_ratio), scale="log ratio",
                    effect_name=f"mean log distance ratio to the base, pruned {r:.0%} / independent"))
        for r in ratios]
    rule = AllOf("both parts", Equivalence("independents match the base's accuracy", "independent − base accuracy",
                                           low=-fx.mw7_accuracy_margin, upp=fx.mw7_accuracy_margin, scale="points",
                                           effect_name="mean accuracy difference, independent − base"),
                 AnyOf("some pruned fraction loses accuracy yet stays closer", *settings))
    data = table.data()
    return Measurement(table=table, rule=rule,
                       paper_value={"LeNet/CIFAR-10 at 70 %": "−14.56 % relative (≈ −9.2 points), still very close"},
                       ours_value={f"loss at {r:.0%} (points)": float(np.mean(data[f"loss at {r:.0%}"])) for r in ratios})


# ---------------------------------------------------------------- MW-8
def _mw8_cases(p):
    sec = p.section("mw")
    if sec is None:
        return []
    datasets = sorted({e.dataset for e in sec.experiments})
    return [{"dataset": ds, "pruning": v} for ds in datasets for v in sec.prune_variants
            if len([e for e in sec.experiments if e.dataset == ds]) >= 2]


@claim("MW-8", "Sensitivity to pruning depends on the architecture in the stated direction: MobileNet loses more "
       "accuracy than ResNet-50 where ResNet-50 holds.", world="mw_world", needs=("base", "pruned"), cases=_mw8_cases,
       units=lambda p, case: mw_units_for(p, case, archs=("mobilenet_v1", "resnet50")))
def pruning_sensitivity_by_architecture(case, world):
    """MW-8 (§4.2, §5.2): "MobileNet is not resilient to pruning and functionally breaks down at 10% of
    pruning"; "a ResNet-50 can be pruned to 70% with an insignificant impact on accuracy" (CIFAR-10).
    Paper: MobileNet −16.84 % at 10 %, −83.70 % at 30 %; ResNet-50 within ±0.5 % to 70 % (relative).

    Directional, universal over the ratios where ResNet-50 holds (CIFAR-10 10–70 %, CIFAR-100 10–50 %; other
    datasets: CIFAR-10's range, declared): relative accuracy loss MobileNet-V1 > ResNet-50, one-sided Welch
    across bases, δ = 10 %. Without both architectures on the dataset the direction found is reported only.
    """
    exps = [world.experiment(e.id) for e in world.settings.experiments if e.dataset == case["dataset"]]
    top = RESNET50_HOLDS.get(case["dataset"], 0.7)
    ratios = [r for r in world.settings.prune_ratios if r <= top + 1e-9]

    def losses(u):
        acc_b = world.acc(u.base)
        return {f"loss at {r:.0%}": -_relative(world.acc(u.pruned[(case["pruning"], r)]), acc_b) for r in ratios}

    archs = [e.exp.arch for e in exps]
    found = {a: {f"{r:.0%}": float(np.mean([losses(u)[f"loss at {r:.0%}"] for u in e.units])) for r in ratios}
             for a, e in zip(archs, exps)}
    # The test's units are the two architectures it compares; the others' direction is reported (ours_value).
    compared = [e for e in exps if e.exp.arch in ("mobilenet_v1", "resnet50")] or exps
    table = UnitTable("base model B_i of one architecture with its own pruned copies", leave_out_nonfinite=True)
    for exp in compared:
        for u in exp.units:
            table.add(f"{exp.exp.arch}/{u.id}", group=exp.exp.arch,
                      models=[u.base, *(u.pruned[(case["pruning"], r)] for r in ratios)], **losses(u))
    deviations = [] if case["dataset"] in RESNET50_HOLDS else [
        f"Ratios: the paper's CIFAR-10 range (≤ {top:.0%}) is used on {case['dataset']}, which the paper does not have."]
    if not {"mobilenet_v1", "resnet50"} <= set(archs):
        return Measurement(verdict="inconclusive", form="directional", asserted=False,
                           not_asserted_reason="the profile has no MobileNet-V1 and ResNet-50 pair on this dataset; "
                                               "the direction found is reported without a verdict (CLAIMS.md)",
                           test="reported: mean relative accuracy loss per architecture",
                           paper_value={"MobileNet CIFAR-10": {"10 %": -16.84, "30 %": -83.70},
                                        "ResNet-50 CIFAR-10": {"70 %": -0.04}},
                           ours_value=found, deviations=deviations, details={"replicates": table.records()})
    rule = AllOf("every ratio where ResNet-50 holds", *(GroupDifference(
        f"at {r:.0%}", f"loss at {r:.0%}", group_a="mobilenet_v1", group_b="resnet50", alternative="greater",
        delta=world.effects.mw8_loss_delta, scale="relative %",
        effect_name=f"relative accuracy loss at {r:.0%}, MobileNet-V1 − ResNet-50") for r in ratios))
    return Measurement(table=table, rule=rule, deviations=deviations,
                       paper_value={"MobileNet CIFAR-10": {"10 %": -16.84, "30 %": -83.70},
                                    "ResNet-50 CIFAR-10": {"70 %": -0.04}}, ours_value=found,
                       notes=["ours_value: mean relative accuracy loss (%) per architecture and ratio."])


# ---------------------------------------------------------------- MW-9
def _mw9_rule(exp) -> str:
    if exp.dataset in MNIST_LIKE:
        return "equivalence"
    return {"lenet5": "gain", "resnet50": "no gain"}.get(exp.arch, "reported")


@claim("MW-9", "Self-distillation changes accuracy little on MNIST; on CIFAR the LeNet gains and ResNet-50 does not.",
       world="mw_world",
       needs=("base", "students", "controls"),
       cases=lambda p: [{"exp": e.id, "kd": v} for e in _full(p) for v in _kd_variants(p, e)])
def self_distillation_accuracy(case, world):
    """MW-9 (§4.1–4.2; Tables 3–5): MNIST students are "less than 1% away from the base model across all α
    values"; "the LeNet benefits from the self-distillation"; ResNet-50 "has no benefit from using a teacher".

    Unit: teacher B_i with one student per α; universal over α, on the relative accuracy deviation of the
    student from its teacher. MNIST-like data: equivalence within ±1 %; CIFAR LeNet: gain > 0 (δ = 2 %);
    CIFAR ResNet-50: non-superiority (gain < 2 %); other architectures: reported. Students vs the same-init
    control (same optimizer) are reported beside.
    """
    exp = world.experiment(case["exp"])
    variant, fx, weights = case["kd"], world.effects, _weights(world)
    kind = _mw9_rule(exp.exp)
    table = UnitTable("teacher B_i with its own student per α", leave_out_nonfinite=True)
    vs_control = []
    for u in exp.units:
        acc_b = world.acc(u.base)
        table.add(u.id, models=[u.base, *(u.students[(variant, w)] for w in weights)],
                  **{f"w={w}": _relative(world.acc(u.students[(variant, w)]), acc_b) for w in weights})
        acc_c = world.acc(u.controls[variant])
        vs_control.append({f"w={w}": _relative(world.acc(u.students[(variant, w)]), acc_c) for w in weights})
    data = table.data()
    ours = {f"w={w}": float(np.mean(data[f"w={w}"])) for w in weights}
    rows = [_row(exp.id, f"KD α={w}" + ("" if variant == "text" else " (code)"), ours[f"w={w}"], _paper(exp.exp, "kd", w))
            for w in weights]
    details = {"table_rows": rows, "students_vs_same_init_control": vs_control, "rule": kind}
    paper = {f"w={w}": _paper(exp.exp, "kd", w) for w in weights}
    name = lambda w: f"relative accuracy deviation, student (w={w}) − teacher"  # noqa: E731
    if kind == "reported":
        return Measurement(verdict="inconclusive", form="equivalence", asserted=False,
                           not_asserted_reason=f"the paper states no rule for {exp.exp.arch} on {exp.exp.dataset}",
                           test="reported: mean relative accuracy deviation", paper_value=paper, ours_value=ours,
                           details={**details, "replicates": table.records()})
    if kind == "equivalence":
        parts = [Equivalence(f"w={w}", f"w={w}", low=-fx.mw9_equivalence, upp=fx.mw9_equivalence,
                             scale="relative %", effect_name=name(w)) for w in weights]
    elif kind == "gain":
        parts = [Directional(f"w={w}", f"w={w}", alternative="greater", delta=fx.mw9_gain, scale="relative %",
                             effect_name=name(w)) for w in weights]
    else:
        parts = [NonInferiority(f"w={w}", f"w={w}", reference=0.0, margin=fx.mw9_gain, alternative="less",
                                scale="relative %", effect_name=name(w)) for w in weights]
    deviations = [] if (exp.exp.dataset, exp.exp.arch) in {("mnist", "lenet5"), ("cifar10", "lenet5"), ("cifar100", "lenet5"),
                                                          ("cifar10", "resnet50"), ("cifar100", "resnet50")} else [
        f"Extension: the paper has no {exp.exp.arch} on {exp.exp.dataset}; the {kind} rule of its "
        f"{'MNIST' if kind == 'equivalence' else 'CIFAR'} statement is applied."]
    return Measurement(table=table, rule=AllOf("every α", *parts), paper_value=paper, ours_value=ours,
                       deviations=deviations, details=details)
