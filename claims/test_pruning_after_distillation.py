"""MH — Malihi & Heidemann, *Matching the Ideal Pruning Method with Knowledge Distillation for Optimal
Compression*. Seed: ``shared/seeds/002_cc18d3e520a0b5dc.txt``.

Models (``fixtures/papers/mh.py``, spec graph :func:`compress.build.designs.mh_units`): per teacher → student pair and
seed, a teacher, its SimKD student (label-free; the teacher's classifier reused and frozen), the student
pruned by weights (global L1 unstructured) and by channels (L1, convolutions) at every level, and the
teacher pruned by weights, each pruned model fine-tuned with its masks held. The unit is the **pair**: its
seeds are averaged within it first (df = pairs − 1). Breakpoints follow the profile's declared rule, the
same for both methods; parameters are counted as what really remains (``coupled``) and as the paper counts
them (``nonzero``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analysis.measure.efficiency import parameters_at_accuracy
from analysis.stats.family import Measurement
from analysis.stats.rules import Directional, NonInferiority
from analysis.stats.units import UnitTable
from fixtures.claims import claim
from fixtures.papers.mh import COUNTINGS, MH_METHODS, mh_units_for

UNIT = "teacher → student pair (its seeds averaged within it)"

# §5, Fig. 6: the paper's paired t over its ten pairs (PE, level not stated).
PAPER_T = {"cifar10": {"t": -5.60, "p": 3.3e-4}, "cifar100": {"t": -7.06, "p": 5.90e-5}}
# Table 1 (CIFAR-100, weight pruning): accuracy %, parameters × 10⁷; bp = at the breakpoint.
TABLE1_COLUMNS = ("ACC(t)", "ACC(s)", "P(t)", "P(s)", "ACC(t) bp", "ACC(s) bp", "P(t) bp", "P(s) bp")
TABLE1 = {
    ("ResNet-101", "ResNet-50"): (54.07, 59.12, 4.45, 2.56, 54.34, 58.92, 0.91, 0.5),
    ("ResNet-152", "ResNet-34"): (52.2, 51.3, 6.02, 2.13, 47.48, 53.47, 1.1, 0.37),
    ("ResNet-101", "ResNet-18"): (54.07, 55.6, 4.45, 1.17, 53.15, 55.25, 0.91, 0.32),
    ("DenseNet-169", "MobileNet"): (57.2, 52.1, 1.42, 0.42, 57.95, 55.1, 0.35, 0.18),
    ("DenseNet-161", "DenseNet-169"): (58.2, 56.45, 2.68, 1.42, 57.71, 57.61, 0.5, 0.29),
    ("DenseNet-161", "DenseNet-201"): (58.2, 54.78, 2.68, 2, 58.94, 55.23, 0.52, 0.41),
    ("EfficientNet-b1", "EfficientNet-b0"): (59.2, 57.1, 0.78, 0.56, 60.17, 58.63, 0.39, 0.27),
    ("EfficientNet-b3", "EfficientNet-b2"): (58.1, 55.87, 1.22, 0.91, 60, 55.91, 0.6, 0.42),
    ("EfficientNet-b3", "MobileNet"): (58.1, 52.07, 1.22, 0.42, 60, 54.8, 0.55, 0.15),
    ("EfficientNet-b5", "EfficientNet-b4"): (59.5, 59.4, 3.04, 1.93, 60.06, 59.8, 1.42, 0.8),
}
# MH-3: student bp − teacher bp per pair, Table 1 order (points).
PAPER_MH3 = [4.58, 5.99, 2.10, -2.85, -0.10, -3.71, -1.54, -4.09, -5.20, -0.26]
# The registry names of the paper's architectures (paper profile), for Table 1 beside ours.
PAPER_NAMES = {"tv_resnet18": "ResNet-18", "tv_resnet34": "ResNet-34", "tv_resnet50": "ResNet-50",
               "tv_resnet101": "ResNet-101", "tv_resnet152": "ResNet-152", "tv_densenet161": "DenseNet-161",
               "tv_densenet169": "DenseNet-169", "tv_densenet201": "DenseNet-201", "mobilenet_v1": "MobileNet",
               **{f"tv_efficientnet_b{i}": f"EfficientNet-b{i}" for i in range(6)}}
# MH-4's stated exception: "with the exception of the ResNet-50 architecture".
EXCEPTION_STUDENTS = ("resnet50", "tv_resnet50")
TEACHER_REFERENCES = ("unpruned", "breakpoint")


def _cases(p, **more) -> list[dict]:
    sec = p.section("mh")
    return [{"dataset": d, **more} for d in sec.datasets] if sec else []


def _per_pair(world, dataset: str, per_unit, *, skip=lambda pair: False):
    """``{pair id: {column: mean over its seeds}}``; ``per_unit(unit) -> {column: value}`` (NaN: left out)."""
    out, models = {}, {}
    for pid, units in world.pairs(dataset).items():
        if skip(units[0].pair):
            continue
        values = [per_unit(u) for u in units]
        row = {}
        for col in values[0]:
            finite = [v[col] for v in values if math.isfinite(v[col])]
            row[col] = float(np.mean(finite)) if finite else math.nan
        out[pid], models[pid] = row, [m for u in units for m in u.models()]
    return out, models


def _table(rows: dict, models: dict) -> tuple[UnitTable, list[str]]:
    """A UnitTable of the pairs; a pair with a non-finite value is left out (the report names it) and listed."""
    table = UnitTable(UNIT, leave_out_nonfinite=True)
    for pid, row in rows.items():
        table.add(pid, models=models[pid], **row)
    return table, list(table.left_out)


def _left_out_note(left_out: list[str], why: str) -> list[str]:
    return [f"Left out ({why}): {', '.join(left_out)}."] if left_out else []


def _teacher_accuracy(world, unit, reference: str) -> float:
    if reference == "unpruned":
        return world.acc(unit.teacher_weight[world.levels[0]])
    return world.breakpoint(unit, "teacher", "coupled")[1]


# ---------------------------------------------------------------- MH-1
@claim("MH-1", "Weight pruning gives higher performance efficiency than channel pruning.", world="mh_world",
       needs=("teachers", "weight_pruned", "channel_pruned"),
       cases=lambda p: [c for counting in COUNTINGS for c in _cases(p, counting=counting)])
def weight_pruning_more_efficient(case, world):
    """MH-1 (§5, §6): weight pruning "consistently outperformed channel pruning when combined with knowledge
    distillation", by a t-test: CIFAR-10 t = −5.60, p = 3.3 × 10⁻⁴; CIFAR-100 t = −7.06, p = 5.90 × 10⁻⁵.

    Per pair, log PE(weight) − log PE(channel), each at its own breakpoint (PE = accuracy / parameters);
    one-sided t across pairs, δ = log 1.25. The paper's raw-PE paired t (channel − weight, two-sided; it is
    dominated by the smallest models) is reported beside.
    """
    dataset, counting = case["dataset"], case["counting"]
    rows, models = _per_pair(world, dataset, lambda u: {
        "log PE weight − channel": world.log_pe_at_breakpoint(u, "weight", counting)
        - world.log_pe_at_breakpoint(u, "channel", counting)})
    table, _ = _table(rows, models)
    raw = {pid: {m: float(np.mean([math.exp(world.log_pe_at_breakpoint(u, m, counting)) for u in units]))
                 for m in MH_METHODS} for pid, units in world.pairs(dataset).items()}
    ours = _raw_t(raw)
    rule = Directional("weight pruning more efficient", "log PE weight − channel", alternative="greater",
                       delta=math.log(world.effects.mh1_ratio), scale="log PE ratio",
                       effect_name="mean per-pair log(PE weight / PE channel) at the breakpoints")
    bars = {pid.split("-", 1)[1]: {f"{m} at breakpoint": float(np.mean(
        [world.log_pe_at_breakpoint(u, m, counting) for u in units])) for m in MH_METHODS}
        for pid, units in world.pairs(dataset).items()}
    return Measurement(table=table, rule=rule, paper_value=PAPER_T.get(dataset, PAPER_T["cifar100"]),
                       ours_value=ours, figures=world.curve_figures(dataset, counting)
                       + world.pe_figure(dataset, counting, bars),
                       details={"raw_pe_per_pair": raw, "counting": counting},
                       notes=[f"Raw-PE paired t (channel − weight, two-sided, the paper's form): t = {ours['t']:.2f}, "
                              f"p = {ours['p']:.3g}, df = {ours['df']}; the paper: t = "
                              f"{PAPER_T.get(dataset, PAPER_T['cifar100'])['t']}. Which level's PE the paper "
                              "compares is not stated; ours is each curve's breakpoint."])


def _raw_t(raw: dict) -> dict:
    c = np.array([v["channel"] for v in raw.values()])
    w = np.array([v["weight"] for v in raw.values()])
    if len(c) < 2 or np.allclose(c - w, (c - w)[0]):
        return {"t": math.nan, "p": math.nan, "df": len(c) - 1}
    res = stats.ttest_rel(c, w)
    return {"t": float(res.statistic), "p": float(res.pvalue), "df": len(c) - 1}


# ---------------------------------------------------------------- MH-2
@claim("MH-2", "Weight pruning keeps far fewer parameters than channel pruning at comparable accuracy.",
       world="mh_world", needs=("teachers", "weight_pruned", "channel_pruned"),
       cases=lambda p: [c for counting in COUNTINGS for c in _cases(p, counting=counting)])
def fewer_parameters_at_iso_accuracy(case, world):
    """MH-2 (§4.1): "the corresponding number of parameters is notably higher in channel pruning", "sometimes
    reaching as high as a factor of four" (ResNet-101→50: 0.5 × 10⁷ vs 2.1 × 10⁷, ×4.2).

    Per seed, the parameters each curve keeps at the lower of the two breakpoint accuracies (log-linear
    interpolation on each curve); per pair, the mean of log(channel / weight) over its seeds; one-sided t
    across pairs, δ = log 1.5. Censoring: where the weight curve never falls to that accuracy within the
    measured levels its sparsest count stands in (the ratio is then understated: conservative); where the
    channel curve never does, the seed is left out (its ratio is unknown in the claimed direction).
    """
    dataset, counting = case["dataset"], case["counting"]
    censored = {"weight": 0, "channel": 0}

    def ratio(u):
        acc, params, at_bp = {}, {}, {}
        for m in MH_METHODS:
            acc[m], params[m] = world.curve(u, m, counting)
            at_bp[m] = world.breakpoint(u, m, counting)[1]
        target = min(at_bp.values())
        if not math.isfinite(target):  # a degenerate curve has no breakpoint (MHWorld.breakpoint)
            return {"log params channel / weight": math.nan}
        kept = {m: parameters_at_accuracy(acc[m], params[m], target) for m in MH_METHODS}
        if math.isnan(kept["weight"]):
            censored["weight"] += 1
            kept["weight"] = float(params["weight"][-1])
        if math.isnan(kept["channel"]):
            censored["channel"] += 1
            return {"log params channel / weight": math.nan}
        return {"log params channel / weight": math.log(kept["channel"] / kept["weight"])}

    rows, models = _per_pair(world, dataset, ratio)
    table, left_out = _table(rows, models)
    if len(table) < 2:
        return Measurement(verdict="inconclusive", form="directional", details={"censored": censored},
                           test=f"not testable: {len(table)} pair(s) with a ratio (a t-test needs 2)",
                           notes=_left_out_note(left_out, "every seed censored on the channel curve"))
    rule = Directional("channel pruning keeps more parameters", "log params channel / weight", alternative="greater",
                       delta=math.log(world.effects.mh2_ratio), scale="log parameter ratio",
                       effect_name="mean per-pair log(parameters channel / weight) at iso-accuracy")
    finite = {pid: math.exp(r["log params channel / weight"]) for pid, r in rows.items()
              if math.isfinite(r["log params channel / weight"])}
    largest = max(finite.items(), key=lambda kv: kv[1]) if finite else (None, math.nan)
    return Measurement(table=table, rule=rule, paper_value={"ResNet-101→50 ratio": 4.2, "largest": "factor of four"},
                       ours_value={"largest ratio": largest[1], "pair": largest[0]},
                       figures=world.curve_figures(dataset, counting), details={"ratios": finite, "censored": censored},
                       notes=[f"Censored seeds: weight curve {censored['weight']} (sparsest count used), channel curve "
                              f"{censored['channel']} (left out)."]
                       + _left_out_note(left_out, "every seed censored on the channel curve")
                       + (["Non-zero counting keeps the coupled weights of masked channels in the channel-pruned "
                           "count, inflating the ratio."] if counting == "nonzero" else []))


# ---------------------------------------------------------------- MH-3
def _table1_values(world, unit) -> tuple[float, ...]:
    """One seed's Table 1 columns (:data:`TABLE1_COLUMNS`): accuracy %, parameters × 10⁷ (coupled count)."""
    teacher, student = world.point(unit.teacher), world.point(unit.student)
    _, t_acc, t_params = world.breakpoint(unit, "teacher", "coupled")
    _, s_acc, s_params = world.breakpoint(unit, "weight", "coupled")
    return (teacher.accuracy, student.accuracy, teacher.coupled / 1e7, student.coupled / 1e7, t_acc, s_acc,
            t_params / 1e7, s_params / 1e7)


def _table1_rows(world, dataset: str) -> list[dict]:
    """Table 1's columns for our pairs (mean over seeds); the paper's value where the pair is one of its own."""
    out = []
    for units in world.pairs(dataset).values():
        pair = units[0].pair
        names = (PAPER_NAMES.get(pair.teacher), PAPER_NAMES.get(pair.student))
        paper = TABLE1.get(names) if dataset == "cifar100" else None
        values = np.mean([_table1_values(world, u) for u in units], axis=0)
        for j, (col, v) in enumerate(zip(TABLE1_COLUMNS, values)):
            out.append({"table": f"MH Table 1 ({dataset}, weight pruning): accuracy %, parameters × 10⁷",
                        "row": f"{pair.teacher} → {pair.student}", "column": col, "ours": float(v),
                        "paper": None if paper is None else paper[j], "format": ".3g",
                        "note": "Ours: mean over seeds, coupled count; ACC/P before pruning: the trained teacher and "
                                "the distilled student; the paper's value only for its own pairs (CIFAR-100)."})
    return out


@claim("MH-3", "Weight-pruned students match or beat the teacher at the breakpoint.", world="mh_world",
       needs=("teachers", "students", "weight_pruned"),
       cases=lambda p: [c for ref in TEACHER_REFERENCES for c in _cases(p, teacher=ref)])
def weight_pruned_students_match_teacher(case, world):
    """MH-3 (§4.1): weight-pruned students are "comparable … or even surpass the accuracy of the teacher models
    at the breaking point"; ResNet-50's 58.92 % vs the teacher's 54.34 % — the *pruned* teacher at its
    breakpoint (unpruned: 54.07). Table 1, student bp − teacher bp: +4.58, +5.99, +2.10, −2.85, −0.10, −3.71,
    −1.54, −4.09, −5.20, −0.26.

    Non-inferiority; per pair, acc(weight-pruned student at its breakpoint) − acc(teacher), L = −1 point;
    two instances: the unpruned teacher and the teacher at its own breakpoint (weight pruning, fine-tuned
    like the students).
    """
    dataset, ref = case["dataset"], case["teacher"]
    rows, models = _per_pair(world, dataset, lambda u: {
        "student bp − teacher": world.breakpoint(u, "weight", "coupled")[1] - _teacher_accuracy(world, u, ref)})
    table, _ = _table(rows, models)
    margin = world.effects.mh3_margin
    rule = NonInferiority("weight-pruned students not below the teacher", "student bp − teacher", reference=0.0,
                          margin=margin, alternative="greater", scale="points",
                          effect_name=f"mean per-pair accuracy, student at breakpoint − teacher ({ref})")
    pruned_vs_unpruned = {pid: float(np.mean([world.breakpoint(u, "weight", "coupled")[1] - world.acc(u.student)
                                              for u in units])) for pid, units in world.pairs(dataset).items()}
    higher = sum(v > 0 for v in pruned_vs_unpruned.values())
    return Measurement(table=table, rule=rule, paper_value={"student bp − teacher bp (Table 1)": PAPER_MH3},
                       ours_value={pid: r["student bp − teacher"] for pid, r in rows.items()},
                       details={"table_rows": _table1_rows(world, dataset) if ref == "breakpoint" else [],
                                "pruned_minus_unpruned_student": pruned_vs_unpruned},
                       notes=[f"Pruned (at breakpoint) vs unpruned students: {higher} of {len(pruned_vs_unpruned)} "
                              "pairs higher (the paper's \"many student models achieve comparable or better accuracy "
                              "than distilled models at this breakpoint\" fits Table 1 this way: 8 of 10).",
                              "Table 1 itself: 5 of 10 students are 1.5–5.2 points below the pruned teacher."])


# ---------------------------------------------------------------- MH-4
@claim("MH-4", "Channel-pruned students are less accurate than their teachers (ResNet-50 excepted).",
       world="mh_world", needs=("teachers", "weight_pruned", "channel_pruned"),
       cases=lambda p: [c for ref in TEACHER_REFERENCES for c in _cases(p, teacher=ref)],
       units=lambda p, case: mh_units_for(p, case, skip_students=EXCEPTION_STUDENTS))
def channel_pruned_students_below_teacher(case, world):
    """MH-4 (§4.1, channel pruning): "with the exception of the ResNet-50 architecture, pruned student models
    are less accurate than their corresponding teacher models"; ResNet-101→50, the exception: 56.78 % vs 54.34 %.
    No other numbers (the channel rows are missing).

    Directional; per pair (a ResNet-50 student reported apart), acc(teacher) − acc(channel-pruned student at
    its breakpoint) > 0; one-sided t across pairs, δ = 1 point; the unpruned teacher and the teacher at its
    breakpoint ("corresponding teacher" says neither).
    """
    dataset, ref = case["dataset"], case["teacher"]

    def gap(u):
        return {"teacher − student bp": _teacher_accuracy(world, u, ref) - world.breakpoint(u, "channel", "coupled")[1]}

    rows, models = _per_pair(world, dataset, gap, skip=lambda pair: pair.student in EXCEPTION_STUDENTS)
    exceptions = {pid: float(np.mean([gap(u)["teacher − student bp"] for u in units]))
                  for pid, units in world.pairs(dataset).items() if units[0].pair.student in EXCEPTION_STUDENTS}
    table, _ = _table(rows, models)
    rule = Directional("channel-pruned students below the teacher", "teacher − student bp", alternative="greater",
                       delta=world.effects.mh4_delta, scale="points",
                       effect_name=f"mean per-pair accuracy, teacher ({ref}) − channel-pruned student at breakpoint")
    return Measurement(table=table, rule=rule, paper_value={"ResNet-101→50 (the exception)": "56.78 vs 54.34"},
                       ours_value={pid: r["teacher − student bp"] for pid, r in rows.items()},
                       details={"resnet50_students_apart": exceptions},
                       notes=([f"ResNet-50 students, reported apart (the paper's exception): {exceptions}."]
                              if exceptions else ["No ResNet-50 student in this profile: no pair is excepted."]))


# ---------------------------------------------------------------- MH-5
@claim("MH-5", "Channel-pruned students are modestly more efficient than unpruned distilled students.",
       world="mh_world", needs=("weight_pruned", "channel_pruned"),
       cases=lambda p: [c for counting in COUNTINGS for c in _cases(p, counting=counting)])
def channel_pruned_more_efficient_than_unpruned(case, world):
    """MH-5 (§4.2): "the efficiency of the pruned models surpasses that of the distilled student models, albeit
    by a relatively modest degree". Figs. 3–4 only (a "normalized efficiency").

    Directional; per pair, log PE(channel-pruned at its breakpoint) − log PE(unpruned distilled student,
    fine-tuned like the pruned ones); one-sided t, δ = log 1.1; the size is reported.
    """
    dataset, counting = case["dataset"], case["counting"]
    first = world.levels[0]

    def gain(u):
        acc, params = world.curve(u, "channel", counting)
        unpruned = math.log(acc[0] / params[0]) if acc[0] > 0 else math.nan  # an accuracy of 0 has no log PE
        return {"log PE channel bp − unpruned": world.log_pe_at_breakpoint(u, "channel", counting) - unpruned}

    rows, models = _per_pair(world, dataset, gain)
    table, _ = _table(rows, models)
    rule = Directional("channel-pruned students more efficient", "log PE channel bp − unpruned",
                       alternative="greater", delta=math.log(world.effects.mh5_ratio), scale="log PE ratio",
                       effect_name="mean per-pair log(PE channel-pruned at breakpoint / PE unpruned student)")
    ratios = {pid: math.exp(r["log PE channel bp − unpruned"]) for pid, r in rows.items()
              if math.isfinite(r["log PE channel bp − unpruned"])}
    at_zero = sum(world.breakpoint(u, "channel", counting)[0] == 0 for units in world.pairs(dataset).values()
                  for u in units)
    return Measurement(table=table, rule=rule, paper_value="a modest gain (Figs. 3–4, no values)",
                       ours_value={"PE ratio per pair": ratios}, details={"unpruned_level": first},
                       figures=world.normalized_figure(dataset, counting),
                       notes=["Near-tautological: PE = accuracy / parameters rises whenever accuracy falls "
                              "proportionally less than parameters.",
                              f"{at_zero} seed(s) have their channel breakpoint at the unpruned level (gain 0)."]
                       + (["Non-zero counting of masked channels shrinks the gain."] if counting == "nonzero" else []))


# ---------------------------------------------------------------- MH-6
@claim("MH-6", "Channel pruning leaves FC layers untouched; weight pruning thins every layer.", world="mh_world",
       needs=("weight_pruned", "channel_pruned"),
       cases=lambda p: [c for method in MH_METHODS for c in _cases(p, method=method)])
def pruning_structure_per_layer(case, world):
    """MH-6 (§5, Fig. 5): "Weight pruning applies parameter reduction across all layers, including fully
    connected layers"; channel pruning leaves "the fully connected layers untouched".

    Exact, on the masks of every pruned model at every level > 0: weight pruning gives every conv and linear
    layer sparsity > 0; channel masks leave every linear weight unmasked except the input columns coupled to
    the last convolution's removed channels (reported apart). Any violation refutes.
    """
    import torch

    from compress.prune.structure import pruning_structure

    dataset, method = case["dataset"], case["method"]
    checked, violations, coupled = 0, [], []
    for units in world.pairs(dataset).values():
        for u in units:
            for lv in world.levels[1:]:
                model, masks, in_shape = world.model_and_masks(u.curve(method)[lv])
                result = pruning_structure(model, masks, method=method, example_inputs=torch.zeros(1, *in_shape))
                checked += 1
                violations += [f"{u.id} at {lv:.0%}: {v}" for v in result.violations]
                if result.coupled is not None:
                    coupled.append(result.coupled.channels_removed / result.coupled.channels)
    mid = world.levels[len(world.levels) // 2]
    test = ("exact: every conv and linear layer of every weight-pruned model has sparsity > 0" if method == "weight"
            else "exact: no linear weight masked by channel pruning beyond the columns coupled to the last conv")
    return Measurement(verdict="refuted" if violations else "supported", form="exact", test=test,
                       effect=float(len(violations)), effect_name="violations",
                       paper_value="Fig. 5 (EfficientNet-b0, b2, MobileNet): no values",
                       ours_value={"models checked": checked, "violations": len(violations)},
                       figures=world.sparsity_figure(dataset, mid),
                       details={"violations": violations[:20],
                                "mean_fraction_of_last_conv_channels_removed": float(np.mean(coupled)) if coupled
                                else None},
                       notes=["Follows from the definitions; checked on the masks. Global weight pruning can leave a "
                              "layer untouched at a low level — a genuine refutation."])
