"""A fake SH world whose answers are known, for testing the SH claims' constructions (STYLE.md §14).

:class:`FakeSHWorld` subclasses the real :class:`fixtures.papers.sh.SHWorld` and replaces only what the store and
the machine provide — accuracies, sensitivity tables, KL divergences, Grad-CAM SSIMs, jitter ratios, latency
records — so a claim reads them through the real interface. Every model id is a plain string
(``seed3/pruned:structured,all``).

A scenario is a function ``design(x) -> dict`` of one per-seed value ``x`` (a seed's random effect: bounded,
symmetric, mean exactly 0, plus the designed offset) returning the quantities the claim reads for that
seed; values the scenario does not set get harmless defaults.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from compress.build.designs import SH_PRUNED, SHUnit
from compress.measure.latency import LatencyRecord
from fixtures.papers.sh import KD_METHODS, SHSettings, SHWorld
from tests.fakeworlds import _bounded, fake_profile

__all__ = ["FakeSHWorld", "sh_world", "SH_LAYERS", "SWEEP"]

#: The fake model's layers: (name, is conv), in depth order.
SH_LAYERS = (("features.0", True), ("features.3", True), ("features.6", True), ("features.8", True),
             ("classifier.0", False), ("classifier.3", False), ("classifier.6", False))
SWEEP = (0.0, 0.1, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9)
TEACHERS = ("vgg16", "vgg19")


def _settings(seeds: int) -> SHSettings:
    teachers = tuple({"name": t, "arch": f"{t}_fc", "hint_layer": "h"} for t in TEACHERS)
    return SHSettings(dataset="colour_digits", student={"arch": "vgg11_fc"}, teachers=teachers,
                      seeds=tuple(range(seeds)), hint_student_layer="h", sweep_levels=SWEEP,
                      latency_batches=(1,), latency_rounds=30, qat_scopes=("linear",))


def _unit(s: int) -> SHUnit:
    p = f"seed{s}"
    students = {(t, m): f"{p}/students:{t},{m}" for t in TEACHERS for m in KD_METHODS}
    cam_names = ["base", "unstructured", "structured", *(f"teacher {t}" for t in TEACHERS),
                 *(f"{t} {m}" for t in TEACHERS for m in KD_METHODS)]
    return SHUnit(
        seed=s, base=f"{p}/base:b", sensitivity=f"{p}/sensitivity:s",
        pruned={k: f"{p}/pruned:{','.join(k)}" for k in SH_PRUNED}, sweep={lv: f"{p}/sweep:{lv}" for lv in SWEEP},
        ptq={q: f"{p}/quantized:{q}" for q in ("fp16", "bf16", "int8", "int4")},
        qat={("linear", b): f"{p}/qat:qat{b}" for b in (8, 4)}, control=f"{p}/qat:control",
        control_ptq={("linear", b): f"{p}/qat:control{b}" for b in (8, 4)},
        teachers={t: f"{p}/teachers:{t}" for t in TEACHERS}, students=students,
        cams={n: f"{p}/cams:{n}" for n in cam_names},
        jittered={n: f"{p}/jittered:{n}" for n in [*(f"teacher {t}" for t in TEACHERS),
                                                    *(f"{t} {m}" for t in TEACHERS for m in KD_METHODS)]})


@dataclass(kw_only=True)
class FakeSHWorld(SHWorld):
    """An SH world whose measured quantities are designed numbers."""

    accs: dict = field(default_factory=dict)
    sens: dict = field(default_factory=dict)  # unit id -> {method: {layer: [acc per level]}}
    kls: dict = field(default_factory=dict)  # (unit id, teacher, method) -> KL
    ssims: dict = field(default_factory=dict)  # (unit id, a, b) -> mean SSIM
    jitters: dict = field(default_factory=dict)  # (unit id, name) -> log ratio
    records: dict = field(default_factory=dict)  # batch -> LatencyRecord

    def role_of(self, spec: str) -> str:
        return spec.rsplit("/", 1)[-1].split(":")[0]

    def payload(self, spec: str) -> dict:
        self._check_read(self.role_of(spec), spec)
        uid = spec.split("/")[0]
        if self.role_of(spec) == "sensitivity":
            return {"layers": [n for n, _ in SH_LAYERS], "conv": [c for _, c in SH_LAYERS], "levels": [0.4, 0.9],
                    "base_acc": 90.0, "acc": self.sens[uid]}
        if self.role_of(spec) == "cams":
            return {"map_size": [4, 4]}
        return {"metrics": {"test_acc": self.accs[spec], "sparsity": 0.25}, "num_classes": 10}

    def acc(self, spec: str) -> float:
        self._check_read(self.role_of(spec), spec)
        return self.accs[spec]

    def kl(self, unit, teacher, method) -> float:
        return self.kls[(unit.id, teacher, method)]

    def cam_ssim(self, unit, a, b) -> float:
        return self.ssims[(unit.id, a, b)]

    def cam(self, unit, name) -> np.ndarray:
        return np.zeros((3, 8, 8))

    def jitter_ratio(self, unit, name) -> float:
        return self.jitters[(unit.id, name)]

    def latency(self, batch: int):
        return self.records[batch]

    def test_images(self, n: int):
        return None

    def figure(self, name, draw) -> list[str]:
        return []


def _defaults(world: FakeSHWorld, u: SHUnit) -> None:
    for spec in [u.base, *u.pruned.values(), *u.sweep.values(), *u.ptq.values(), *u.qat.values(), u.control,
                 *u.control_ptq.values(), *u.teachers.values(), *u.students.values()]:
        world.accs.setdefault(spec, 80.0)
    world.sens.setdefault(u.id, {m: {n: [85.0, 80.0] for n, _ in SH_LAYERS} for m in ("unstructured", "structured")})
    for t in TEACHERS:
        for m in KD_METHODS:
            world.kls.setdefault((u.id, t, m), 0.5)
            world.ssims.setdefault((u.id, f"teacher {t}", f"{t} {m}"), 0.5)
            world.jitters.setdefault((u.id, f"{t} {m}"), -0.1)
    for m in ("unstructured", "structured"):
        world.ssims.setdefault((u.id, m, "base"), 0.5)


def sh_world(rng: np.random.Generator, design: Callable[[float, "FakeSHWorld", SHUnit], None], *, seeds: int = 5,
             halfwidth: float = 1.0) -> FakeSHWorld:
    """Draw a fake SH world: per seed ``design(x, world, unit)`` sets the seed's quantities from
    ``x = bounded noise (half-width halfwidth)``; latency records are set by the design through ``world.records``."""
    world = FakeSHWorld(profile=fake_profile("sh", _settings(seeds)), store=None,
                        units=[_unit(s) for s in range(seeds)])
    for u in world.units:
        design(float(_bounded(rng, halfwidth)), world, u)
        _defaults(world, u)
    return world


def latency_record(times: dict[str, np.ndarray], batch: int = 1) -> LatencyRecord:
    """A hand-made record (paired rounds) for the fake world."""
    rounds = len(next(iter(times.values())))
    return LatencyRecord(names=tuple(times), times={k: np.asarray(v, float) for k, v in times.items()},
                         batch_size=batch, device="cpu", hardware="fake", threads=1, rounds=rounds, warmup=0,
                         order_seed=0)
