"""Fake MW, GC and MH worlds whose answers are known, for testing the claims' constructions (STYLE.md §14).

The worlds subclass the real ones (:class:`fixtures.papers.mw.MWWorld`, :class:`fixtures.papers.gc.GCWorld`) and replace
only what the store provides — distances, accuracies, CKA — so a claim reads them through the real
interface (and the real ``log_distance`` and ``mean_cka``). Every model id is a plain string.

**MW.** A model is a latent vector; the functional distance of two models is the mean squared difference
of their latents. A trained model of unit *i* is ``s_i·(√c·init + √(1−c)·e^η·z)``: ``s_i`` is the unit's
scale (a unit random effect), ``init`` its initialisation (shared with B_i by same-init models), ``η`` the
model's own spread (a model random effect) and ``z`` its training noise. A compressed or distilled model is
built from its base B and an *anchor* A::

    M = B + exp(r/2)·(A − B)   ⇒   log d(M, B) = r + log d(A, B)   exactly.

With a *fresh* anchor (a new model trained like the unit's reference R: new init for an independent, B's
init for a same-init control), A and R are exchangeable given B, so
``E[log d(M, B) − log d(R, B)] = E[r]`` exactly: a claim's null boundary is reached by choosing ``r``
(``r = 0`` for "M is closer than R", ``r = log 0.8`` for MW-1's bound) while every unit keeps its random
effects. With the unit's *own* reference as anchor, the per-unit value is ``r`` itself: a known answer.
Accuracies are drawn relative to the base (relative % as the paper's tables, or points) with a symmetric
zero-mean noise, so a mean accuracy deviation is exactly the designed one. ``world.truth[model]`` records
each model's drawn ``r`` and accuracy change.

**GC.** Each CKA value is a designed mean (by level, layer depth and comparison type) plus seed random
effects (a shift, a slope over levels, an offset per comparison type) plus noise, all bounded and
symmetric: every mean over levels, layers or model pairs has exactly the designed expectation, and with
equal means across levels (or layers) the values' distribution is symmetric under reversing them, so a
per-seed Kendall τ is symmetric about 0. Accuracies of distilled and mixed models are drawn relative to
the pruned and distilled ones.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.build.designs import MHPair, MHUnit
from fixtures.papers.gc import GCSettings, GCUnit, GCWorld
from fixtures.papers.mh import MHSettings, MHWorld, Point
from fixtures.papers.mw import MWExperiment, MWSettings, MWUnit, MWWorld
from fixtures.schema import Experiment, Profile

__all__ = ["Acc", "Rel", "MWCell", "Truth", "FakeMWWorld", "mw_world", "GCDesign", "FakeGCWorld", "gc_world",
           "GC_LAYERS", "fake_profile", "MH_LEVELS", "Curve", "flat", "FakeMHWorld", "mh_world"]

_SCALES = ("relative", "points")
_ANCHORS = ("fresh", "own")
_REFERENCES = ("independent", "same_init")


def fake_profile(section: str, settings) -> Profile:
    """A real :class:`Profile` holding one section, α = 0.05, power and stability off."""
    return Profile(name="fake", path=Path("fake.toml"), description="fake world with known answers", alpha=0.05,
                   data_seed=0, train={}, power_simulations=0, stability_resamples=0, sections={section: settings})


# --------------------------------------------------------------------------- MW


@dataclass(frozen=True)
class Acc:
    """A model's accuracy relative to its unit's base: ``shift + sd·z``, z standard normal.

    ``scale="relative"``: 100·(acc − acc_B)/acc_B (the paper's Tables 3–5); ``"points"``: acc − acc_B.
    """

    shift: float = 0.0
    sd: float = 0.0
    scale: str = "relative"

    def __post_init__(self) -> None:
        if self.scale not in _SCALES:
            raise ValueError(f"The 'scale' parameter of Acc must be one of {_SCALES}. Got {self.scale!r} instead.")

    def apply(self, change: float, base_acc: float) -> float:
        return base_acc * (1 + change / 100) if self.scale == "relative" else base_acc + change


@dataclass(frozen=True)
class Rel:
    """How a derived model M relates to its base B: log d(M, B) = r + log d(A, B), A its anchor.

    Parameters
    ----------
    log_ratio : float or callable
        Mean of r; a callable receives the unit's standard-normal random effect (shared by its models).
    sd : float
        SD of r between models.
    anchor : {"fresh", "own"}
        ``fresh``: A is a new model trained like the reference (exchangeable with it given B);
        ``own``: A is the unit's own reference, so the per-unit log ratio is r exactly.
    like : {"independent", "same_init"}
        The reference: the unit's independent I (new init) or its same-init control C (B's init).
    share : str, optional
        Models of one unit with the same key share one fresh anchor (nested pruning masks).
    acc : Acc
        The model's accuracy relative to B.
    """

    log_ratio: float | Callable[[float], float] = 0.0
    sd: float = 0.0
    anchor: str = "fresh"
    like: str = "independent"
    share: str | None = None
    acc: Acc = Acc()

    def __post_init__(self) -> None:
        if self.anchor not in _ANCHORS:
            raise ValueError(f"The 'anchor' parameter of Rel must be one of {_ANCHORS}. Got {self.anchor!r} instead.")
        if self.like not in _REFERENCES:
            raise ValueError(f"The 'like' parameter of Rel must be one of {_REFERENCES}. Got {self.like!r} instead.")

    def mean(self, unit_effect: float) -> float:
        return self.log_ratio(unit_effect) if callable(self.log_ratio) else self.log_ratio


def _as_independent(*_key) -> Rel:
    return Rel()


@dataclass(frozen=True)
class MWCell:
    """One (architecture, dataset) experiment of a fake MW world and how its models relate to the bases.

    ``student(variant, teacher_weight)``, ``quantized(scheme)`` and ``pruned(variant, ratio)`` give each
    derived model's :class:`Rel`. Bases have accuracy ``base_acc ± base_acc_sd`` (between units, points).
    """

    arch: str = "lenet5"
    dataset: str = "mnist"
    role: str = "full"
    units: int = 10
    base_acc: float = 60.0
    base_acc_sd: float = 3.0
    independent: Acc = Acc(0.0, 0.5, "points")
    control: Acc = Acc(0.0, 0.5, "points")
    student: Callable[[str, float], Rel] = _as_independent
    quantized: Callable[[str], Rel] = _as_independent
    pruned: Callable[[str, float], Rel] = _as_independent

    @property
    def id(self) -> str:
        return Experiment(self.arch, self.dataset).id


@dataclass(frozen=True)
class Truth:
    """What the fake world put into a model: its log distance ratio to its anchor and its accuracy change."""

    log_ratio: float | None
    acc_change: float


@dataclass(kw_only=True)
class FakeMWWorld(MWWorld):
    """An MW world whose distances are mean squared latent differences and whose accuracies are designed."""

    latent: dict[str, np.ndarray]
    accuracy: dict[str, float]
    truth: dict[str, Truth]

    @property
    def metric(self) -> str:
        return "mean squared latent difference"

    def distance(self, a: str, b: str) -> float:
        return float(np.mean((self.latent[a] - self.latent[b]) ** 2))

    def acc(self, spec: str) -> float:
        return self.accuracy[spec]


def mw_world(rng: np.random.Generator, cells: Sequence[MWCell], *, teacher_weights=(0.1, 0.5, 0.9),
             kd_variants=("text",), prune_variants=("text",), quant_schemes=("fp16", "int8"),
             prune_ratios=(0.1, 0.3, 0.5, 0.7, 0.9), dim: int = 256, init_share: float = 0.3,
             unit_scale_sd: float = 0.3, model_scale_sd: float = 0.3) -> FakeMWWorld:
    """Draw a fake MW world: every unit of every cell with its own models (see the module docstring).

    ``dim`` is the latent dimension (larger: less noise in a distance), ``init_share`` the part of a trained
    model's variance its initialisation explains, ``unit_scale_sd`` and ``model_scale_sd`` the SDs of the
    log unit scale and of the log model spread.
    """
    n = max(c.units for c in cells)
    settings = MWSettings(
        experiments=tuple(Experiment(c.arch, c.dataset, role=c.role, units=c.units) for c in cells),
        base_seeds=tuple(range(n)), independent_seeds=tuple(range(100, 100 + n)),
        student_seeds=tuple(range(200, 200 + n)), kd_teacher_weights=tuple(teacher_weights),
        kd_variants=tuple(kd_variants), prune_variants=tuple(prune_variants), quant_schemes=tuple(quant_schemes),
        prune_ratios=tuple(prune_ratios), landscape=False)
    draws = _Draws(dim, init_share, unit_scale_sd, model_scale_sd)
    world = FakeMWWorld(profile=fake_profile("mw", settings), store=None, latent={}, accuracy={}, truth={})
    for cell, exp in zip(cells, settings.experiments):
        units = tuple(draws.unit(rng, world, cell, f"{exp.id}/unit{i}", i) for i in range(cell.units))
        world.experiments[exp.id] = MWExperiment(exp, units, tuple(kd_variants) if cell.role == "full" else ())
    return world


@dataclass(frozen=True)
class _Draws:
    """How trained models vary (the keyword arguments of :func:`mw_world`)."""

    dim: int
    init_share: float
    unit_scale_sd: float
    model_scale_sd: float

    def unit(self, rng: np.random.Generator, world: FakeMWWorld, cell: MWCell, prefix: str, index: int) -> MWUnit:
        """One unit's models, drawn at once and written into ``world``."""
        sec = world.settings
        full = cell.role == "full"
        variants = sec.kd_variants if full else ()
        first = sec.kd_variants[0]
        students = {(v, w): f"{prefix}/student:{v}:w={w}" for v in variants for w in sec.kd_teacher_weights}
        quantized = {q: f"{prefix}/quantized:{q}" for q in sec.quant_schemes} if full else {}
        pruned = {(v, r): f"{prefix}/pruned:{v}:{r}" for v in sec.prune_variants for r in sec.prune_ratios}
        derived = [*((m, cell.student(*k), k[0]) for k, m in students.items()),
                   *((m, cell.quantized(k), first) for k, m in quantized.items()),
                   *((m, cell.pruned(*k), first) for k, m in pruned.items())]
        # Trained models: the base, its independent and controls, then one row per fresh anchor.
        trained = [f"{prefix}/base", *([f"{prefix}/independent", *(f"{prefix}/control:{v}" for v in variants)]
                                       if full else [])]
        new_init = [False, *([True, *[False] * len(variants)] if full else [])]
        anchors, shared = [], {}
        for name, rel, variant in derived:
            if rel.anchor == "own":
                if not full:
                    raise ValueError(f"{name}: a {cell.role!r} experiment has no {rel.like} model to anchor on")
                anchors.append(1 if rel.like == "independent" else 2 + variants.index(variant))
            elif rel.share is not None and (rel.like, rel.share) in shared:
                anchors.append(shared[(rel.like, rel.share)])
            else:
                anchors.append(len(new_init))
                new_init.append(rel.like == "independent")
                if rel.share is not None:
                    shared[(rel.like, rel.share)] = anchors[-1]
        fresh = np.array(new_init)
        scale = math.exp(self.unit_scale_sd * rng.standard_normal())
        inits = np.repeat(rng.standard_normal((1, self.dim)), fresh.size, axis=0)
        inits[fresh] = rng.standard_normal((int(fresh.sum()), self.dim))
        spread = np.exp(self.model_scale_sd * rng.standard_normal((fresh.size, 1)))
        models = scale * (math.sqrt(self.init_share) * inits
                          + math.sqrt(1 - self.init_share) * spread * rng.standard_normal((fresh.size, self.dim)))
        unit_effect = rng.standard_normal()
        rels = [rel for _, rel, _ in derived]
        r = (np.array([rel.mean(unit_effect) for rel in rels])
             + np.array([rel.sd for rel in rels]) * rng.standard_normal(len(rels)))
        base = models[0]
        latents = base + np.exp(r / 2)[:, None] * (models[anchors] - base)
        accs = [*([cell.independent, *[cell.control] * len(variants)] if full else []), *(rel.acc for rel in rels)]
        changes = np.array([a.shift for a in accs]) + np.array([a.sd for a in accs]) * rng.standard_normal(len(accs))
        base_acc = cell.base_acc + cell.base_acc_sd * rng.standard_normal()
        world.latent[trained[0]], world.accuracy[trained[0]] = base, base_acc
        ratios = [None] * (len(trained) - 1) + r.tolist()
        for name, vector, acc, change, ratio in zip([*trained[1:], *(m for m, _, _ in derived)],
                                                    [*models[1:len(trained)], *latents], accs, changes, ratios):
            world.latent[name] = vector
            world.accuracy[name] = acc.apply(float(change), base_acc)
            world.truth[name] = Truth(ratio, float(change))
        return MWUnit(index=index, base=trained[0], independent=trained[1] if full else None, students=students,
                      controls={v: f"{prefix}/control:{v}" for v in variants}, quantized=quantized, pruned=pruned)


# --------------------------------------------------------------------------- GC

#: A ResNet-18-like layer list: conv1/bn1 first, second convolutions of blocks, a skip, the classifier.
GC_LAYERS = ("conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2", "layer2.0.conv1",
             "layer2.0.bn1", "layer2.0.conv2", "layer2.0.bn2", "layer2.0.shortcut.0", "fc")


def _constant(value: float) -> Callable[[float], float]:
    return lambda level: value


def _bounded(rng: np.random.Generator, half_width: float, size=None):
    """Symmetric noise on [−half_width, half_width] (a scaled Beta(2, 2)): mean exactly 0, never clipped."""
    return half_width * (2 * rng.beta(2.0, 2.0, size) - 1)


@dataclass(frozen=True)
class GCDesign:
    """The designed means of a fake GC world.

    CKA of comparison c ∈ {pd, mp, md, mm} at level ℓ and layer j:
    ``pd(ℓ) + depth_slope·(j − centre) + offset_c`` (``early + offset_c`` at the early layers when ``early``
    is set). Each seed adds its own random effects, all bounded and symmetric (mean exactly 0): a shift
    (``seed_halfwidth``), a slope over the retained fraction (``seed_slope_halfwidth`` per unit fraction,
    centred on the schedule's mean: with an evenly spaced schedule and equal means, a seed's curve over the
    levels is as likely reversed, so its Kendall τ is symmetric about 0) and an offset per mixed comparison
    type (``seed_contrast_halfwidth``);
    every value adds noise (``noise_halfwidth``). So the levels and comparisons of one seed are correlated,
    as in a real pipeline, and are not replicates. ``early_floor`` puts the per-seed minimum of GC-3a at a
    known place: CKA(M, P) at the first early layer at the lowest level has mean ``early_floor``.
    Accuracies (points): pruned ``acc_pruned(ℓ)`` ± a seed effect; distilled = pruned +
    ``distilled_minus_pruned(ℓ)``; each mixed model = distilled − ``distilled_minus_mixed(ℓ)``; each with
    noise SD ``acc_sd``.
    """

    seeds: int = 8
    retained_fractions: tuple[float, ...] = (0.9, 0.7, 0.5, 0.3, 0.1)
    layers: tuple[str, ...] = GC_LAYERS
    early_layers: tuple[str, ...] = ("conv1", "bn1")
    pd: Callable[[float], float] = _constant(0.8)
    depth_slope: float = 0.0
    early: float | None = None
    early_floor: float | None = None
    offset_mp: float = 0.0
    offset_md: float = 0.0
    offset_mm: float = 0.0
    seed_halfwidth: float = 0.02
    seed_slope_halfwidth: float = 0.05
    seed_contrast_halfwidth: float = 0.01
    noise_halfwidth: float = 0.03
    acc_pruned: Callable[[float], float] = lambda level: 40.0 + 50.0 * level
    distilled_minus_pruned: Callable[[float], float] = _constant(0.0)
    distilled_minus_mixed: Callable[[float], float] = _constant(0.0)
    acc_seed_sd: float = 2.0
    acc_sd: float = 0.3

    def __post_init__(self) -> None:
        if self.early_floor is None:
            return
        # The floor must stay below every other early-layer value whatever the seed effects and noise.
        span = max(self.retained_fractions) - min(self.retained_fractions)
        worst = (self.seed_slope_halfwidth * span + 2 * self.seed_contrast_halfwidth + 2 * self.noise_halfwidth
                 - min(0.0, self.offset_mp, self.offset_md, self.offset_mm))
        if self.early is None or self.early_floor >= self.early - worst:
            raise ValueError("The 'early_floor' parameter of GCDesign must lie below every other early-layer value "
                             f"by more than the seed effects and noise ({worst:.3g}; needs 'early'). "
                             f"Got {self.early_floor!r} instead.")

    def layer_means(self, level: float) -> np.ndarray:
        """Designed mean CKA(P, D) per layer at ``level`` (before the offsets of the other comparisons)."""
        j = np.arange(len(self.layers))
        means = self.pd(level) + self.depth_slope * (j - (len(self.layers) - 1) / 2)
        if self.early is not None:
            means[[self.layers.index(n) for n in self.early_layers]] = self.early
        return means


@dataclass(kw_only=True)
class FakeGCWorld(GCWorld):
    """A GC world whose CKA arrays and accuracies come from a :class:`GCDesign`."""

    ckas: dict[tuple[int, float], dict]
    accuracy: dict[str, float]

    def cka(self, unit: GCUnit, level: float) -> dict:
        return self.ckas[(unit.seed, level)]

    def acc(self, spec: str) -> float:
        return self.accuracy[spec]

    def heatmap_figures(self, paper_row: dict) -> list[str]:
        return []

    def layerwise_figures(self) -> list[str]:
        return []

    def accuracy_figures(self) -> list[str]:
        return []


def gc_world(rng: np.random.Generator, design: GCDesign = GCDesign()) -> FakeGCWorld:
    """Draw a fake GC world: one pipeline per seed (teacher, pruned, distilled, mixed) from ``design``."""
    schedule = design.retained_fractions
    settings = GCSettings(experiments=(Experiment("resnet18", "cifar10"),), seeds=tuple(range(design.seeds)),
                          retained_fractions=schedule, early_layers=design.early_layers)
    first_early = design.layers.index(design.early_layers[0])
    offsets = {"pd": 0.0, "mp": design.offset_mp, "md": design.offset_md, "mm": design.offset_mm}
    level_means = {lv: design.layer_means(lv) for lv in schedule}
    centre = float(np.mean(schedule))
    units, ckas, accuracy = [], {}, {}
    for s in range(design.seeds):
        prefix = f"seed{s}"
        pruned = {lv: f"{prefix}/pruned:{lv}" for lv in schedule}
        distilled = {lv: f"{prefix}/distilled:{lv}" for lv in schedule}
        mixed = {(src, lv): f"{prefix}/mixed:{src}>{lv}" for i, src in enumerate(schedule) for lv in schedule[i + 1:]}
        unit = GCUnit(s, f"{prefix}/teacher", pruned, distilled, mixed)
        units.append(unit)
        # Every comparison's rows at every level, drawn at once: designed mean + seed effect + noise.
        counts = {lv: {"pd": 1, "mp": k, "md": k, "mm": k * (k - 1) // 2}
                  for lv in schedule for k in [len(unit.mixed_at(lv))]}
        slope = _bounded(rng, design.seed_slope_halfwidth)
        shift = {c: offsets[c] + (c != "pd") * _bounded(rng, design.seed_contrast_halfwidth) for c in offsets}
        means = np.concatenate([np.repeat(level_means[lv][None] + shift[c] + slope * (lv - centre), n, axis=0)
                                for lv in schedule for c, n in counts[lv].items()])
        if design.early_floor is not None:
            lowest = min(schedule)
            start = sum(sum(counts[lv].values()) for lv in schedule[:schedule.index(lowest)]) + 1
            means[start:start + counts[lowest]["mp"], first_early] = (
                design.early_floor + shift["mp"] - offsets["mp"] + slope * (lowest - centre))
        values = means + _bounded(rng, design.seed_halfwidth) + _bounded(rng, design.noise_halfwidth, means.shape)
        start = 0
        for lv in schedule:
            cka = {}
            for c, n in counts[lv].items():
                cka[c], start = values[start:start + n], start + n
            ckas[(s, lv)] = {"layers": list(design.layers), **cka, "pd": cka["pd"][0],
                             "full": np.minimum.outer(cka["pd"][0], cka["pd"][0])}
        noise = iter(design.acc_sd * rng.standard_normal(2 * len(schedule) + len(mixed)))
        acc_effect = design.acc_seed_sd * rng.standard_normal()
        accuracy[unit.teacher] = design.acc_pruned(1.0) + acc_effect
        for lv in schedule:
            accuracy[pruned[lv]] = design.acc_pruned(lv) + acc_effect + next(noise)
            accuracy[distilled[lv]] = accuracy[pruned[lv]] + design.distilled_minus_pruned(lv) + next(noise)
            for m in unit.mixed_at(lv):
                accuracy[m] = accuracy[distilled[lv]] - design.distilled_minus_mixed(lv) + next(noise)
    return FakeGCWorld(profile=fake_profile("gc", settings), store=None, units=units, ckas=ckas, accuracy=accuracy)


# --------------------------------------------------------------------------- MH
#
# **MH.** A fake world gives every (pair, seed) its three pruning curves (student by weights, by channels,
# teacher by weights) directly: accuracy and parameters per level, built by the scenario from the pair's
# random effect and the seed's noise (:func:`mh_world`). The claims then find breakpoints, PE and
# iso-accuracy counts through the real code (``MHWorld.curve``/``breakpoint`` read these points), so a
# scenario designs the per-seed value a claim computes and the null boundary sits exactly where it puts it.

MH_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MH_P0 = 1e5  # parameters of every unpruned fake model


@dataclass(frozen=True)
class Curve:
    """One pruning curve of a fake world: accuracy (%) and parameters at each level."""

    accuracy: tuple[float, ...]
    parameters: tuple[float, ...]


def flat(accuracy: float, log_end: float, levels: Sequence[float] = MH_LEVELS) -> Curve:
    """Constant accuracy (so the breakpoint is the sparsest level under a 'drop' rule); log parameters falling
    linearly from log ``MH_P0`` at level 0 to log ``MH_P0`` + ``log_end`` at the last level (``log_end`` ≤ 0)."""
    if log_end > 0:
        raise ValueError(f"flat: log_end must be <= 0 (parameters never grow with pruning); got {log_end!r}")
    top = levels[-1]
    return Curve(tuple(accuracy for _ in levels), tuple(MH_P0 * math.exp(log_end * lv / top) for lv in levels))


@dataclass(kw_only=True)
class FakeMHWorld(MHWorld):
    """An MH world whose points (accuracy, parameters) come from designed curves; model ids are strings."""

    points: dict[str, Point]

    def point(self, spec: str) -> Point:
        return self.points[spec]

    def role_of(self, spec: str) -> str:
        return spec.rsplit("/", 1)[-1].split(":")[0]

    def curve_figures(self, dataset: str, counting: str = "coupled") -> list[str]:
        return []

    def pe_figure(self, dataset, counting, bars) -> list[str]:
        return []

    def sparsity_figure(self, dataset: str, level: float) -> list[str]:
        return []

    def normalized_figure(self, dataset: str, counting: str) -> list[str]:
        return []


def mh_world(rng: np.random.Generator, draw: Callable, *, pairs: int = 6, seeds: int = 3,
             levels: Sequence[float] = MH_LEVELS, pair_halfwidth: float = 0.2, seed_halfwidth: float = 0.1,
             students: Sequence[str] | None = None) -> FakeMHWorld:
    """Draw a fake MH world. Per pair j a random effect ``u_j`` (bounded, symmetric, half-width
    ``pair_halfwidth``), per seed a noise ``e`` (``seed_halfwidth``); ``draw(u_j + e)`` returns the unit's
    ``{"weight": Curve, "channel": Curve, "teacher": Curve}`` (the channel curve's level 0 is the weight
    curve's: one model in both, as in the real design). Every count is the same under both counting rules."""
    settings = MHSettings(datasets=("digits",), pairs=tuple({"teacher": "t", "student": s}
                                                         for s in (students or [f"s{j}" for j in range(pairs)])),
                          seeds=tuple(range(seeds)), levels=tuple(levels))
    units, points = [], {}
    for j, pair_spec in enumerate(settings.pairs):
        pair = MHPair(pair_spec["teacher"], pair_spec["student"], "digits")
        u_j = _bounded(rng, pair_halfwidth)
        for s in range(seeds):
            curves = draw(u_j + _bounded(rng, seed_halfwidth))
            prefix = f"{pair.id}/seed{s}"
            ids = {m: {lv: f"{prefix}/{role}:{lv}" for lv in levels}
                   for m, role in (("weight", "weight_pruned"), ("channel", "channel_pruned"),
                                   ("teacher", "teachers"))}
            ids["channel"][levels[0]] = ids["weight"][levels[0]]
            for m, c in curves.items():
                for i, lv in enumerate(levels):
                    if m == "channel" and i == 0:
                        continue
                    n = int(round(c.parameters[i]))
                    points[ids[m][lv]] = Point(accuracy=float(c.accuracy[i]), coupled=n, nonzero=n, num_classes=10)
            units.append(MHUnit(pair, s, f"{prefix}/teachers:trained", f"{prefix}/students:simkd", ids["weight"],
                                ids["channel"], ids["teacher"]))
    for u in units:
        points.setdefault(u.teacher, points[u.teacher_weight[levels[0]]])
        points.setdefault(u.student, points[u.weight[levels[0]]])
    return FakeMHWorld(profile=fake_profile("mh", settings), store=None, units=units, points=points)


# --------------------------------------------------------------------------- the ci profile's design sizes


@dataclass(frozen=True)
class CIDesign:
    """How many units the ``ci`` profile gives each paper's experiments, read from the profile itself, so the
    null simulations also run at the design the committed baseline was decided with (and follow it when the
    power plan moves units)."""

    mw_units: dict  # architecture -> units of its (first) MW experiment
    gc_seeds: int
    mh_pairs: int
    mh_seeds: int
    sh_seeds: int

    def mw(self, arch: str, default: int) -> int:
        return self.mw_units.get(arch, default)


@functools.lru_cache(maxsize=1)
def ci_design() -> CIDesign:
    from fixtures.profile import load_profile

    p = load_profile("ci")
    mw, gc, mh, sh = (p.section(k) for k in ("mw", "gc", "mh", "sh"))
    units: dict = {}
    for e in mw.experiments:
        units.setdefault(e.arch, e.units or len(mw.base_seeds))
    return CIDesign(units, len(gc.seeds), len(mh.pairs) * len(mh.datasets), len(mh.seeds), len(sh.seeds))
