"""Experiment designs: the spec graphs of the papers' experiments, from plain parameters.

A design turns seeds, levels and training settings into the DAG of
:class:`~compress.store.spec.Spec` the claims read; nothing is trained here (the
store builds each spec once). The suite's profile sections (``fixtures/``)
read their settings and call these; a notebook can call them directly.

**MW** (Mason-Williams), per (architecture, dataset) and unit *i* (one
independent replicate, CLAIMS.md rule 2):

* base B_i: trained from scratch, init and data-order seed ``base_seeds[i]``;
* its own independent partner I_i: seed ``independent_seeds[i]``;
* students S_i(v, w): B_i's architecture from B_i's *initial* weights,
  distilled from B_i with teacher weight w (the paper's α) under KD variant v
  (``text``: Hinton KD as §2.1 describes it; ``code``: the paper's published
  Keras code), data order ``student_seeds[i]``;
* same-init control C_i(v): B_i's initial weights, labels only, the students'
  optimizer and data order — it separates the teacher's signal from the
  shared initialisation (a control the paper lacked);
* post-hoc quantized Q_i(q) and pruned P_i(v, r) of B_i (pruning variant v:
  ``text`` prunes conv/linear weights; ``code`` every array including
  BatchNorm statistics, as the paper's code does).

**GC** (Garcia Caño), per teacher seed *s*: teacher T_s; pruned P_s(l),
iterative channel pruning down the retained fractions with fine-tuning;
distilled D_s(l), P_s(l)'s architecture rewound to T_s's initial weights and
distilled from T_s; mixed M_s(l → l'), each D_s(l) pruned further to every
lower level (a tree); and the layer-wise CKA of each (seed, level).

**MH** (Malihi & Heidemann), per teacher → student pair and seed (:func:`mh_units`):
teacher T; SimKD student S (label-free; the teacher's head reused, frozen);
S pruned by weights and by channels at every level and T pruned by weights,
each fine-tuned with its masks held.

**SH** (Saeed, Haroon & Khan), per seed (:func:`sh_units`): a VGG-11 base, its
per-layer sensitivity analysis, pruned copies at the overall target with
per-layer ratios from it and a uniform sparsity sweep (each fine-tuned), PTQ
and QAT with an FP32 control, VGG-16/19 teachers and their VGG-11 students by
each distillation method, Grad-CAM maps and colour-jittered evaluations.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compress.build.layer_cka import layer_cka_spec
from compress.build.recipes import (channel_prune_spec, distill_spec, prune_spec, quantize_spec, rewind_distill_spec,
                                    train_spec)
from compress.store.spec import Spec
from compress.training.loop import TrainConfig

__all__ = [
    "GC_ROLES",
    "KD_VARIANTS",
    "MH_METHODS",
    "MH_ROLES",
    "MW_ROLES",
    "PRUNE_VARIANTS",
    "SHKD",
    "SH_PRUNED",
    "SH_ROLES",
    "GCUnit",
    "MHPair",
    "MHUnit",
    "MWUnit",
    "ModelSetup",
    "SHUnit",
    "gc_cka_spec",
    "gc_units",
    "mh_seed",
    "mh_units",
    "mw_units",
    "sh_units",
]


@dataclass(frozen=True)
class ModelSetup:
    """What every model of one experiment shares: architecture, dataset and their options, the data seed."""

    arch: str
    dataset: str
    data_seed: int = 0
    overrides: Any = ()  # model constructor keyword arguments (pairs or mapping)
    data_options: Any = ()  # dataset loader keyword arguments (pairs or mapping)

    def trained(self, init_seed: int, seed: int, train: TrainConfig) -> Spec:
        return train_spec(self.arch, self.dataset, init_seed=init_seed, seed=seed, train=train,
                          data_seed=self.data_seed, overrides=self.overrides, data_options=self.data_options)


# --------------------------------------------------------------------------- MW

#: KD variants: the paper's text (Hinton KD, α on the teacher term) and its published code.
KD_VARIANTS = {"text": "hinton", "code": "hinton_code"}
#: Pruning variants: what global L1 pruning removes (the text: weights; the code: every array).
PRUNE_VARIANTS = {"text": "weights", "code": "all_arrays"}
#: The roles of an MW unit's models (what an MW claim names in ``needs=``).
MW_ROLES = ("base", "independent", "students", "controls", "quantized", "pruned")


@dataclass(frozen=True)
class MWUnit:
    """One replicate: a base and every model derived from it or trained beside it."""

    index: int
    base: Spec
    independent: Spec | None
    students: dict  # (kd variant, teacher weight) -> Spec
    controls: dict  # kd variant -> Spec
    quantized: dict  # scheme -> Spec
    pruned: dict  # (pruning variant, ratio) -> Spec

    @property
    def id(self) -> str:
        return f"unit{self.index}"

    def by_role(self) -> dict[str, list[Spec]]:
        """This unit's models under the roles claims name in ``needs=`` (:data:`MW_ROLES`)."""
        return {"base": [self.base], "independent": [self.independent] if self.independent else [],
                "students": list(self.students.values()), "controls": list(self.controls.values()),
                "quantized": list(self.quantized.values()), "pruned": list(self.pruned.values())}

    def models(self, roles: frozenset[str] | None = None) -> list[Spec]:
        """Its models of ``roles`` (every role when None). The base comes with any role: all derive from it."""
        return [m for role, specs in self.by_role().items() for m in specs
                if roles is None or role in roles or role == "base"]


def mw_units(setup: ModelSetup, *, base_seeds: Sequence[int], independent_seeds: Sequence[int],
             student_seeds: Sequence[int], train: TrainConfig, code_train: TrainConfig, full: bool = True,
             kd_variants: Sequence[str] = ("text",), kd_temperature: float = 3.0,
             kd_teacher_weights: Sequence[float] = (0.1, 0.5, 0.9), quant_schemes: Sequence[str] = ("fp16", "int8"),
             quant_activations: bool = False, prune_variants: Sequence[str] = ("text",),
             prune_ratios: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9)) -> tuple[MWUnit, ...]:
    """One :class:`MWUnit` per base seed. ``full=False`` (MW-8's pruning-only experiments): bases and their
    pruned copies only. ``code_train``: the students' and controls' training under the ``code`` KD variant."""
    units = []
    for i, (b, s) in enumerate(zip(base_seeds, student_seeds)):
        base = setup.trained(b, b, train)
        students, controls = {}, {}
        if full:
            for v in kd_variants:
                config = train if v == "text" else code_train
                for w in kd_teacher_weights:
                    students[(v, w)] = distill_spec(
                        base, seed=s, train=config, distiller=KD_VARIANTS[v],
                        distiller_params={"temperature": float(kd_temperature), "teacher_weight": float(w)})
                controls[v] = setup.trained(b, s, config)
        units.append(MWUnit(
            index=i, base=base,
            independent=setup.trained(independent_seeds[i], independent_seeds[i], train) if full else None,
            students=students, controls=controls,
            quantized={q: quantize_spec(base, q, activations=quant_activations) for q in quant_schemes} if full else {},
            pruned={(v, r): prune_spec(base, sparsity=float(r), targets=PRUNE_VARIANTS[v])
                    for v in prune_variants for r in prune_ratios},
        ))
    return tuple(units)


# --------------------------------------------------------------------------- GC

#: The roles of the GC design (what a GC claim names in ``needs=``): model evaluations, and the CKA artifacts.
GC_ROLES = ("models", "cka")


@dataclass(frozen=True)
class GCUnit:
    seed: int
    teacher: Spec
    pruned: dict  # level -> Spec
    distilled: dict  # level -> Spec
    mixed: dict  # (distilled at, pruned further to) -> Spec

    @property
    def id(self) -> str:
        return f"seed{self.seed}"

    def models(self) -> list[Spec]:
        return [self.teacher, *self.pruned.values(), *self.distilled.values(), *self.mixed.values()]

    def mixed_at(self, level: float) -> list[Spec]:
        return [m for (_, lv), m in self.mixed.items() if lv == level]


def gc_units(setup: ModelSetup, *, seeds: Sequence[int], train: TrainConfig, finetune: TrainConfig,
             retained_fractions: Sequence[float], kd: Mapping[str, float], norm: str, scope: str) -> list[GCUnit]:
    """One :class:`GCUnit` per teacher seed; ``kd``: the Hinton distiller's parameters (temperature, weight)."""
    levels = list(retained_fractions)
    units = []
    for s in seeds:
        teacher = setup.trained(s, s, train)

        def prune(parent: Spec, level: float) -> Spec:
            return channel_prune_spec(parent, retained_fraction=level, finetune=finetune, seed=s, norm=norm,
                                      scope=scope)

        pruned, parent = {}, teacher
        for lv in levels:
            pruned[lv] = parent = prune(parent, lv)
        distilled = {lv: rewind_distill_spec(pruned[lv], teacher, seed=s, train=train, distiller="hinton",
                                             distiller_params=dict(kd)) for lv in levels}
        mixed = {}
        for i, src in enumerate(levels):
            parent = distilled[src]
            for lv in levels[i + 1:]:
                mixed[(src, lv)] = parent = prune(parent, lv)
        units.append(GCUnit(s, teacher, pruned, distilled, mixed))
    return units


def gc_cka_spec(unit: GCUnit, level: float, *, n_inputs: int, data_seed: int, debiased: bool) -> Spec:
    """Layer-wise CKA of every model pair at one level of one seed: pruned, distilled, mixed (in that order)."""
    return layer_cka_spec(unit.pruned[level], unit.distilled[level], *unit.mixed_at(level),
                          n_inputs=n_inputs, data_seed=data_seed, debiased=debiased)


# --------------------------------------------------------------------------- MH

#: The roles of the MH design (what an MH claim names in ``needs=``): every model of a (pair, seed) chain.
MH_ROLES = ("teachers", "students", "weight_pruned", "channel_pruned")
#: The two pruning methods compared (MH §3.2–3.3).
MH_METHODS = ("weight", "channel")


@dataclass(frozen=True)
class MHPair:
    """One teacher → student pair of one dataset: both architectures with their constructor options."""

    teacher: str
    student: str
    dataset: str
    teacher_overrides: Any = ()
    student_overrides: Any = ()
    data_options: Any = ()

    @property
    def id(self) -> str:
        """``digits-vgg19-vgg11``; a model's overrides in brackets where given: ``digits-vgg19[width=0.125]-…``."""
        def name(arch, overrides):
            pairs = dict(overrides)
            return arch + ("[" + ",".join(f"{k}={v}" for k, v in sorted(pairs.items())) + "]" if pairs else "")
        return f"{self.dataset}-{name(self.teacher, self.teacher_overrides)}-{name(self.student, self.student_overrides)}"


@dataclass(frozen=True)
class MHUnit:
    """One (pair, seed): a teacher, its SimKD student and both pruning curves of the student and the teacher's.

    ``weight``/``channel``: level (fraction pruned) → the student pruned by that method and fine-tuned; level 0
    is one model in both (the student fine-tuned with nothing pruned). ``teacher_weight``: the teacher's weight
    pruning curve, fine-tuned alike (MH-3/MH-4's teacher at its breakpoint; level 0 is the unpruned reference).
    """

    pair: MHPair
    seed: int
    teacher: Spec
    student: Spec
    weight: dict  # level -> Spec
    channel: dict  # level -> Spec
    teacher_weight: dict  # level -> Spec

    @property
    def id(self) -> str:
        return f"{self.pair.id}/seed{self.seed}"

    def curve(self, method: str) -> dict:
        """The student's curve of one method ('weight', 'channel') or the teacher's ('teacher')."""
        return {"weight": self.weight, "channel": self.channel, "teacher": self.teacher_weight}[method]

    def by_role(self) -> dict[str, list[Spec]]:
        return {"teachers": [self.teacher, *self.teacher_weight.values()], "students": [self.student],
                "weight_pruned": list(self.weight.values()),
                "channel_pruned": [m for lv, m in self.channel.items() if lv > 0]}

    def models(self) -> list[Spec]:
        return [m for specs in self.by_role().values() for m in specs]


def mh_seed(pair_index: int, seed: int) -> int:
    """The init and data-order seed of one (pair, seed): pairs never share a model, even with a common teacher.

    The paper's pairs reuse teachers (ResNet-101 twice, DenseNet-161 twice, EfficientNet-b3 twice); with one
    seed for both, two pairs would hold the same teacher artifact and stop being independent units.
    """
    return 1000 * (pair_index + 1) + seed


def mh_units(pairs: Sequence[MHPair], *, seeds: Sequence[int], levels: Sequence[float], train: TrainConfig,
             kd_train: TrainConfig, finetune: TrainConfig, data_seed: int = 0, bottleneck: int = 2,
             channel_layers: str = "conv") -> list[MHUnit]:
    """One :class:`MHUnit` per (pair, seed), pairs in order. ``levels``: fractions pruned, starting at 0.

    Per unit, with s = :func:`mh_seed`: teacher T trained from scratch (init and data order s); SimKD student S
    distilled from T (student init and data order s, label-free, projector bottleneck ``bottleneck``); at each
    level l > 0, S pruned by global L1 unstructured pruning of every conv and linear weight (``weight``) and by
    one-shot L1 channel pruning of the convolutions to 1 − l of its coupled parameters (``channel``), each then
    fine-tuned with its masks held (``finetune``, data order s); T pruned by weights alike; level 0 of each
    curve is the model fine-tuned with nothing pruned.
    """
    if not levels or levels[0] != 0:
        raise ValueError(f"mh_units: levels must start at 0 (the unpruned model); got {list(levels)}")
    units = []
    for k, pair in enumerate(pairs):
        setup = ModelSetup(pair.teacher, pair.dataset, data_seed, pair.teacher_overrides, pair.data_options)
        for seed in seeds:
            s = mh_seed(k, seed)
            teacher = setup.trained(s, s, train)
            student = distill_spec(teacher, seed=s, train=kd_train, distiller="simkd",
                                   distiller_params={"bottleneck": int(bottleneck)}, student_arch=pair.student,
                                   student_overrides=pair.student_overrides, init_seed=s)

            def weight(parent: Spec, lv: float, s=s) -> Spec:
                return prune_spec(parent, sparsity=float(lv), finetune=finetune, seed=s)

            w = {lv: weight(student, lv) for lv in levels}
            c = {lv: w[lv] if lv == 0 else channel_prune_spec(student, retained_fraction=1 - float(lv),
                                                              finetune=finetune, seed=s, layers=channel_layers)
                 for lv in levels}
            units.append(MHUnit(pair, seed, teacher, student, w, c, {lv: weight(teacher, lv) for lv in levels}))
    return units


# --------------------------------------------------------------------------- SH

#: The roles of the SH design (what an SH claim names in ``needs=``).
SH_ROLES = ("base", "sensitivity", "pruned", "sweep", "quantized", "qat", "teachers", "students", "cams", "jittered")
#: The pruning instances of SH-1/SH-9: (method, scope) of the 25 % models; ``paper`` is SH-1's declared variant.
SH_PRUNED = (("unstructured", "all"), ("structured", "all"), ("structured", "conv"))


@dataclass(frozen=True)
class SHKD:
    """One distillation method of SH-6…8: the distiller's name and parameters (``hint``: FitNets, …)."""

    name: str
    distiller: str
    params: Any = ()
    teacher_layers: Any = ()  # teacher name -> the teacher's hint layer (FitNets), pairs or mapping

    def params_for(self, teacher: str) -> dict:
        """The distiller's parameters for one teacher (its hint layer added where the method has one)."""
        layers = dict(self.teacher_layers)
        return {**dict(self.params), **({"teacher_layer": layers[teacher]} if teacher in layers else {})}


@dataclass(frozen=True)
class SHUnit:
    """One seed of the SH experiment: VGG-11 base B with everything derived from it, and the seed's teachers and
    their students.

    ``pruned``: (method, scope) → B pruned to the overall target with per-layer ratios from B's sensitivity
    analysis, the output layer fine-tuned; ``sweep``: level → B pruned uniformly (L1 unstructured) and fine-tuned
    alike; ``ptq``: scheme → post-training quantized B; ``qat``: (scope, bits) → B fine-tuned with fake
    quantization; ``control``: B fine-tuned as long in FP32, ``control_ptq``: (scope, bits) → its PTQ;
    ``teachers``: name → teacher; ``students``: (teacher, method) → VGG-11 student; ``cams``: name → Grad-CAM
    spec; ``jittered``: name → colour-jittered evaluation.
    """

    seed: int
    base: Spec
    sensitivity: Spec
    pruned: dict
    sweep: dict
    ptq: dict
    qat: dict
    control: Spec
    control_ptq: dict
    teachers: dict
    students: dict
    cams: dict
    jittered: dict

    @property
    def id(self) -> str:
        return f"seed{self.seed}"

    def by_role(self) -> dict[str, list[Spec]]:
        return {"base": [self.base], "sensitivity": [self.sensitivity], "pruned": list(self.pruned.values()),
                "sweep": list(self.sweep.values()), "quantized": list(self.ptq.values()),
                "qat": [*self.qat.values(), self.control, *self.control_ptq.values()],
                "teachers": list(self.teachers.values()), "students": list(self.students.values()),
                "cams": list(self.cams.values()), "jittered": list(self.jittered.values())}

    def models(self) -> list[Spec]:
        return [m for specs in self.by_role().values() for m in specs]


def sh_units(student: ModelSetup, teachers: Mapping[str, ModelSetup], *, seeds: Sequence[int], train: TrainConfig,
             teacher_train: TrainConfig, kd_train: TrainConfig, finetune: TrainConfig, qat_train: TrainConfig,
             sensitivity_levels: Sequence[float], target: float, sweep_levels: Sequence[float], eps: float,
             cap: float, ptq_schemes: Sequence[str], ptq_activations: bool, qat_bits: Sequence[int],
             qat_scopes: Sequence[str], kd: Sequence[SHKD], cam_images: int, jitter: Mapping,
             trainable: str = "last") -> list[SHUnit]:
    """One :class:`SHUnit` per seed s (init and data order s for every model of the seed).

    B: ``student`` trained from scratch (``train``). Its sensitivity analysis at ``sensitivity_levels``; pruned
    copies at ``target`` (unstructured and structured over every layer; structured over the convolutions, the
    paper's variant), per-layer ratios allocated from the sensitivity (``eps``, ``cap``); the ``sweep_levels``
    pruned uniformly; each fine-tuned (``finetune``, ``trainable`` layers). PTQ of B at ``ptq_schemes``
    (``ptq_activations``: layer inputs too, integer schemes over conv+linear). QAT of B at each of
    ``qat_bits`` × ``qat_scopes`` (``qat_train``) and the FP32 control fine-tuned as long, then its PTQ
    (weights only, each scope and bit width). Teachers trained from scratch (``teacher_train``); per teacher
    and ``kd`` method a VGG-11 student from B's initial weights (``kd_train``). Grad-CAM maps (``cam_images``)
    of B, the pruned models of SH-9, the teachers and the students; colour-jittered evaluation (``jitter``) of
    the teachers and students.
    """
    from compress.build.recipes import distill_spec, quantize_spec
    from compress.build.sh_recipes import (eval_jitter_spec, finetune_spec, gradcam_spec, layer_prune_spec,
                                           sensitivity_spec)

    units = []
    for s in seeds:
        base = student.trained(s, s, train)
        sens = sensitivity_spec(base, levels=tuple(sensitivity_levels))

        def pruned(method, scope, level, allocation="sensitivity", s=s, base=base, sens=sens):
            return layer_prune_spec(base, method=method, target=float(level), allocation=allocation,
                                    sensitivity=sens if allocation == "sensitivity" else None, scope=scope,
                                    finetune=finetune, seed=s, trainable=trainable, eps=eps, cap=cap)

        pruned_models = {(m, sc): pruned(m, sc, target) for m, sc in SH_PRUNED}
        sweep = {float(lv): pruned("unstructured", "all", lv, "uniform") for lv in sweep_levels}
        ptq = {q: quantize_spec(base, q, activations=ptq_activations) for q in ptq_schemes}
        qat = {(sc, b): finetune_spec(base, finetune=qat_train, seed=s, qat_bits=int(b), qat_scope=sc)
               for sc in qat_scopes for b in qat_bits}
        control = finetune_spec(base, finetune=qat_train, seed=s)
        control_ptq = {(sc, b): quantize_spec(control, f"int{b}", activations=False, scope=sc)
                       for sc in qat_scopes for b in qat_bits}
        teacher_models = {name: t.trained(s, s, teacher_train) for name, t in teachers.items()}
        students = {(name, k.name): distill_spec(t, seed=s, train=kd_train, distiller=k.distiller,
                                                 distiller_params=k.params_for(name), student_arch=student.arch,
                                                 student_overrides=student.overrides, init_seed=s)
                    for name, t in teacher_models.items() for k in kd}
        cam_of = {"base": base, "unstructured": pruned_models[("unstructured", "all")],
                  "structured": pruned_models[("structured", "all")],
                  **{f"teacher {n}": t for n, t in teacher_models.items()},
                  **{f"{t} {m}": st for (t, m), st in students.items()}}
        cams = {name: gradcam_spec(spec, n_images=cam_images) for name, spec in cam_of.items()}
        jitter_of = {**{f"teacher {n}": t for n, t in teacher_models.items()},
                     **{f"{t} {m}": st for (t, m), st in students.items()}}
        jittered = {name: eval_jitter_spec(spec, jitter=jitter, jitter_seed=0) for name, spec in jitter_of.items()}
        units.append(SHUnit(s, base, sens, pruned_models, sweep, ptq, qat, control, control_ptq, teacher_models,
                            students, cams, jittered))
    return units
