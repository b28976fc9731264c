"""Experiment designs: the spec graphs of the papers' experiments, from plain parameters.

A design turns seeds, levels and training settings into the DAG of
:class:`~compress.spec.Spec` the claims read; nothing is trained here (the
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
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .layer_cka import layer_cka_spec
from .recipes import channel_prune_spec, distill_spec, prune_spec, quantize_spec, rewind_distill_spec, train_spec
from .spec import Spec
from .training import TrainConfig

__all__ = ["ModelSetup", "MWUnit", "MW_ROLES", "KD_VARIANTS", "PRUNE_VARIANTS", "mw_units",
           "GCUnit", "GC_ROLES", "gc_units", "gc_cka_spec"]


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
