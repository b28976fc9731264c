"""Fake MW and GC worlds whose answers are known: for null simulations and known-answer tests of the claims.

They offer exactly the interface the claim functions read from the real
worlds (``fixtures/mw.py``, ``fixtures/gc.py``) — experiments with units of
models, distances, accuracies, layer-wise CKA — but every number is drawn
from a model whose truth is set by the test.

**MW.** A model is a latent vector; the functional distance of two models is
their mean squared difference. Unit *i* has a base B_i and a unit scale s_i
(a between-unit random effect); every other model X of the unit is
``B_i + c_X · s_i · Z`` with Z a fresh standard normal draw, so
``log d(X, B) − log d(Y, B) = 2 log(c_X / c_Y) + log(|Z_X|² / |Z_Y|²)`` has mean
exactly ``2 log(c_X / c_Y)``: a claim's null boundary is set by choosing the
``c`` of each model kind (exchangeability does the rest). Accuracies are the
base's plus a per-kind shift (relative %, or points) plus noise.

**GC.** Per seed, layer-wise CKA for each comparison type and level is a
chosen mean (a function of level, layer and type) plus a seed effect and
noise; accuracies likewise.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fixtures.gc import GCEffects, GCSettings
from fixtures.mw import MWEffects, MWSettings
from fixtures.profile import Experiment

__all__ = ["FakeMW", "FakeGC", "mw_settings", "gc_settings"]

K = 64  # latent dimensions ("test examples")


def mw_settings(experiments, *, weights=(0.1, 0.5, 0.9), ratios=(0.1, 0.3, 0.5, 0.7, 0.9), n=10,
                kd=("text",), pruning=("text",), schemes=("fp16", "int8")) -> MWSettings:
    return MWSettings(
        experiments=tuple(experiments), base_seeds=tuple(range(n)), independent_seeds=tuple(range(100, 100 + n)),
        student_seeds=tuple(range(200, 200 + n)), kd_teacher_weights=tuple(weights), kd_variants=tuple(kd),
        prune_variants=tuple(pruning), quant_schemes=tuple(schemes), prune_ratios=tuple(ratios))


@dataclass
class _Profile:
    sections: dict

    def section(self, key):
        return self.sections.get(key)


@dataclass
class _Unit:
    id: str
    base: str
    independent: str | None
    students: dict
    controls: dict
    quantized: dict
    pruned: dict


@dataclass
class _Exp:
    exp: Experiment
    units: tuple

    @property
    def id(self):
        return self.exp.id


@dataclass
class FakeMW:
    """A fake MW world. ``c`` and ``acc_shift`` map a model kind to its distance scale and accuracy shift.

    Kinds: ``independent``, ``student:<variant>:<w>``, ``control:<variant>``, ``quant:<scheme>``,
    ``prune:<variant>:<ratio>``; unknown kinds default to ``c = 1`` (as far as an independent model)
    and no shift. ``c`` and ``acc_shift`` may also be callables of the experiment id (MW-5, MW-8).
    Accuracy shifts are relative % of the base's accuracy when ``relative`` (MW-3, MW-8, MW-9),
    else points.
    """

    settings: MWSettings
    rng: np.random.Generator
    c: dict = field(default_factory=dict)
    acc_shift: dict = field(default_factory=dict)
    acc_noise: float = 0.5
    unit_sd: float = 0.3
    acc_in_points: bool = False
    effects: MWEffects = field(default_factory=MWEffects)
    metric: str = "msd"

    def __post_init__(self):
        self.profile = _Profile({"mw": self.settings})
        self._vec: dict[str, np.ndarray] = {}
        self._acc: dict[str, float] = {}
        self.experiments = {}
        for e in self.settings.experiments:
            units = []
            n = e.units or len(self.settings.base_seeds)
            for i in range(n):
                units.append(self._unit(e, i))
            self.experiments[e.id] = _Exp(e, tuple(units))

    def _value(self, table, kind, exp_id, default):
        v = table.get(kind, table.get(kind.split(":")[0], default))
        return v(exp_id) if callable(v) else v

    def _model(self, name, base, kind, exp_id, scale, base_acc):
        c = self._value(self.c, kind, exp_id, 1.0)
        self._vec[name] = self._vec[base] + c * scale * self.rng.standard_normal(K)
        shift = self._value(self.acc_shift, kind, exp_id, 0.0)
        mean = base_acc + shift if self.acc_in_points else base_acc * (1 + shift / 100)
        self._acc[name] = mean + self.acc_noise * self.rng.standard_normal()
        return name

    def _unit(self, e: Experiment, i: int) -> _Unit:
        uid = f"{e.id}/u{i}"
        base = f"{uid}/B"
        self._vec[base] = self.rng.standard_normal(K)
        base_acc = 90.0 + 2.0 * self.rng.standard_normal()
        self._acc[base] = base_acc
        scale = math.exp(self.unit_sd * self.rng.standard_normal())
        make = lambda name, kind: self._model(f"{uid}/{name}", base, kind, e.id, scale, base_acc)  # noqa: E731
        s = self.settings
        full = e.role == "full"
        variants = e.kd_variants or s.kd_variants
        return _Unit(
            id=f"unit{i}", base=base,
            independent=make("I", "independent") if full else None,
            students={(v, w): make(f"S{v}{w}", f"student:{v}:{w}") for v in variants for w in s.kd_teacher_weights} if full else {},
            controls={v: make(f"C{v}", f"control:{v}") for v in variants} if full else {},
            quantized={q: make(f"Q{q}", f"quant:{q}") for q in s.quant_schemes} if full else {},
            pruned={(v, r): make(f"P{v}{r}", f"prune:{v}:{r}") for v in s.prune_variants for r in s.prune_ratios},
        )

    # -- the interface the claims read
    def experiment(self, exp_id):
        return self.experiments[exp_id]

    def distance(self, a, b):
        return float(np.mean((self._vec[a] - self._vec[b]) ** 2))

    def log_distance(self, a, b):
        return math.log(self.distance(a, b))

    def acc(self, m):
        return self._acc[m]

    def landscape_figures(self, exp_id):
        return []

    def trend_figure(self, *args):
        return []

    def health_notes(self):
        return []


def gc_settings(levels=(0.9, 0.7, 0.5, 0.3, 0.1), seeds=10, layers=("conv1", "bn1")) -> GCSettings:
    return GCSettings(experiments=(Experiment("resnet18", "digits"),), seeds=tuple(range(seeds)),
                      retained_fractions=tuple(levels), early_layers=tuple(layers))


@dataclass
class _GCUnit:
    id: str
    seed: int
    pruned: dict
    distilled: dict
    mixed: dict

    def models(self):
        return [*self.pruned.values(), *self.distilled.values(), *self.mixed.values()]

    def mixed_at(self, level):
        return [m for (_, lv), m in self.mixed.items() if lv == level]


@dataclass
class FakeGC:
    """A fake GC world: ``cka_mean(type, level, layer_index) -> mean CKA``, ``acc_mean(kind, level) -> points``."""

    settings: GCSettings
    rng: np.random.Generator
    cka_mean: Callable = lambda kind, level, layer: 0.8
    acc_mean: Callable = lambda kind, level: 90.0
    n_layers: int = 12
    quiet_layers: tuple = ()  # layer indices drawn without noise (their value is the mean plus the seed effect)
    seed_sd: float = 0.02
    noise_sd: float = 0.02
    acc_noise: float = 0.5
    effects: GCEffects = field(default_factory=GCEffects)

    def __post_init__(self):
        self.profile = _Profile({"gc": self.settings})
        self.levels = sorted(self.settings.retained_fractions)
        names = ["conv1", "bn1", *[f"layer{i}.conv{1 + i % 2}" for i in range(self.n_layers - 2)]]
        self._layers = names[: self.n_layers]
        self._acc: dict[str, float] = {}
        self._cka: dict = {}
        self.units = []
        schedule = list(self.settings.retained_fractions)
        for s in self.settings.seeds:
            uid = f"seed{s}"
            effect = self.seed_sd * self.rng.standard_normal()
            acc_effect = self.acc_noise * self.rng.standard_normal()
            pruned = {lv: f"{uid}/P{lv}" for lv in schedule}
            distilled = {lv: f"{uid}/D{lv}" for lv in schedule}
            mixed = {(src, lv): f"{uid}/M{src}-{lv}" for i, src in enumerate(schedule) for lv in schedule[i + 1:]}
            for kind, table in (("pruned", pruned), ("distilled", distilled)):
                for lv, m in table.items():
                    self._acc[m] = self.acc_mean(kind, lv) + acc_effect + self.acc_noise * self.rng.standard_normal()
            for (src, lv), m in mixed.items():
                self._acc[m] = self.acc_mean("mixed", lv) + acc_effect + self.acc_noise * self.rng.standard_normal()
            unit = _GCUnit(uid, s, pruned, distilled, mixed)
            self.units.append(unit)
            for lv in self.levels:
                self._cka[(uid, lv)] = self._draw(unit, lv, effect)

    def _draw(self, unit, level, effect):
        L = len(self._layers)

        noise = np.array([0.0 if j in self.quiet_layers else self.noise_sd for j in range(L)])

        def row(kind):
            mean = np.array([self.cka_mean(kind, level, j) for j in range(L)])
            return np.clip(mean + effect + noise * self.rng.standard_normal(L), 0.0, 1.0)

        k = len(unit.mixed_at(level))
        return {"layers": list(self._layers), "pd": row("pd"),
                "mp": np.array([row("mp") for _ in range(k)]).reshape(k, L),
                "md": np.array([row("md") for _ in range(k)]).reshape(k, L),
                "mm": np.array([row("mm") for _ in range(k * (k - 1) // 2)]).reshape(k * (k - 1) // 2, L),
                "full": np.eye(L)}

    # -- the interface the claims read
    @property
    def experiment_id(self):
        return self.settings.experiments[0].id

    def cka(self, unit, level):
        return self._cka[(unit.id, level)]

    def layers(self):
        return list(self._layers)

    def mean_cka(self, unit, level, comparison):
        v = self.cka(unit, level)[comparison]
        return float(v.mean()) if v.size else float("nan")

    def acc(self, m):
        return self._acc[m]

    def heatmap_figures(self, *a):
        return []

    def layerwise_figures(self):
        return []

    def accuracy_figures(self):
        return []

    def health_notes(self):
        return []
