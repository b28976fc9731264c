"""How long a set of builds will take, from measured throughput (``pytest claims --plan``).

Two sources, best first:

* **history**: the store's own ``store.log`` holds every build's seconds and
  its *cost class* (kind, architecture, dataset and options, training length:
  what a build's time depends on); an artifact to build is estimated by the
  median of its class's builds in this store, on this machine;
* **probe**: a training kind whose class the store has not built yet is
  estimated from a measured training step (the model on a synthetic batch of
  its dataset's shape, one thread, forward + backward + SGD, median of a few
  steps) times its number of steps; distillation adds the teacher's forward
  pass (measured too). Kinds that train nothing (evaluation, one-shot pruning,
  quantization, CKA, sensitivity) are estimated from the same probe's forward
  pass times the passes over the test set the kind makes (:data:`TEST_PASSES`);
  a kind missing there, or without a model, is counted, not guessed;
* **flops**: a model too large to time in a moment (a step above
  :data:`PROBE_FLOPS`, e.g. the paper profile's ImageNet-size networks, which
  took 18 CPU-minutes of probing to plan) is priced from its FLOPs, counted
  by ``torch.utils.flop_counter`` on the ``meta`` device (no memory, no
  arithmetic), at the throughput this machine measured on a reference model
  (:data:`REFERENCE`, timed once per plan). Backward costs two forwards.

Every estimate is also given for ``cuda``, always from FLOPs (a CPU's history
says nothing about a GPU): the FLOPs at an assumed sustained throughput
(:data:`GPU_TFLOPS`, 25 TFLOP/s: bf16 autocast on 32x32 convnets, a fraction
of an H100's peak; ``--plan-gpu-tflops`` overrides it, ``benchmarks/gpu_check.py``
measures it), but never faster than the kernel-launch floor of eager PyTorch
(:data:`GPU_LAYER_SECONDS` per parameterised layer per step): small-image
models on a GPU are launch-bound, not FLOP-bound. Both constants are
assumptions, printed with the plan.

An estimate is what it says: the build time one process spends; with several
workers the wall time is about the total divided by the workers, as far as the
DAG lets them work in parallel.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from compress.runtime.progress import format_seconds
from compress.store.history import TRAINING, cost_class, model_setup, training_settings
from compress.store.spec import Spec

__all__ = [
    "GPU_LAYER_SECONDS",
    "GPU_TFLOPS",
    "PROBE_FLOPS",
    "REFERENCE",
    "Cost",
    "Estimate",
    "cpu_flop_rate",
    "estimate_builds",
    "model_cost",
]

#: Forward passes over the test set a build makes, by kind (besides any training): a function of the spec,
#: the test set's size and the number of conv/linear layers of its model. Rough by design (for ``--plan`` and the order in which
#: Ray starts tasks): an evaluation is a few hundredths of a training, a sensitivity analysis a few trainings.
#: Pruning (masks over every weight, then an evaluation) and CKA (a Gram matrix per layer) are counted in
#: passes too, with factors read off the ``ci`` store's measured builds (a cold ``ci`` plan, two probes on this
#: machine: 1.05-1.3x the measured total, each kind within 0.7-2.7x).
TEST_PASSES = {
    "eval": lambda s, n_test, layers: 1.0,
    "prune": lambda s, n_test, layers: 3.0,
    "layer_prune": lambda s, n_test, layers: 1.0,
    "quantize": lambda s, n_test, layers: 1.0 + s.param("calib_n") / n_test,
    "eval_jitter": lambda s, n_test, layers: 2.0,
    "gradcam": lambda s, n_test, layers: 3.0 * s.param("n_images") / n_test,
    "layer_cka": lambda s, n_test, layers: len(s.parents) * s.param("n_inputs") / n_test * layers / 3,
    # every layer at every level by every method; the unpruned prefix runs once per layer (about half)
    "sensitivity": lambda s, n_test, layers: 1.0 + len(s.param("levels")) * len(s.param("methods")) * layers / 2,
}
#: Kinds whose steps also run a teacher's forward pass.
WITH_TEACHER = {"distill", "rewind_distill"}

#: A training step (batch x forward FLOPs x 3) above this many FLOPs is priced from FLOPs, not timed: about a
#: tenth of a second on one CPU core. Every ``ci`` model is below it (their plan stays measured); the paper's are above.
PROBE_FLOPS = 2e9
#: The model whose measured step calibrates this machine's FLOP/s: a CIFAR ResNet-18 at a quarter width on a
#: 32x32 batch of :data:`REFERENCE_BATCH` (convolutions of the sizes the paper's networks run; about 0.1 s a
#: step on one core).
REFERENCE = ("resnet18", "cifar10", (("width", 0.25),), ())
REFERENCE_BATCH = 16
#: Assumed sustained GPU throughput for the cuda estimate (FLOP/s) and the launch-bound floor of one training
#: step per parameterised layer (forward, backward and optimizer kernels, seconds). Assumptions, not measured.
GPU_TFLOPS = 25.0
GPU_LAYER_SECONDS = 40e-6


def _steps(spec: Spec, n_train: int) -> int:
    t = training_settings(spec)
    return int(t.get("epochs", 0)) * math.ceil(n_train / max(1, int(t.get("batch_size", 64))))


def _model(setup: tuple):
    from compress.data.datasets import dataset_shape
    from compress.models.registry import create_model

    arch, dataset, overrides, options = setup
    in_shape, classes = dataset_shape(dataset, **dict(options))
    return create_model(arch, classes, in_shape, **dict(overrides)), in_shape, classes


def _layers(model) -> tuple[int, int]:
    """Conv/linear layers, and every module with its own parameters (the launch-bound floor's count)."""
    import torch

    convs = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())
    own = sum(any(True for _ in m.parameters(recurse=False)) for m in model.modules())
    return convs, own


def _flops(arch: str, overrides: tuple, in_shape: tuple) -> tuple[float, int, int]:
    """Forward FLOPs per example (counted on the ``meta`` device: no memory, no arithmetic, torch's RNG
    untouched), conv/linear layers and parameterised modules, with a 10-class head: a head of 100 classes adds
    under 0.1 % to the paper's networks, so CIFAR-10 and CIFAR-100 share one count."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from compress.models.registry import create_model

    with torch.device("meta"):
        model = create_model(arch, 10, in_shape, **dict(overrides))
        model.eval()  # batch statistics of a 1x1 map need two examples in training mode; eval needs none
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(2, *in_shape))
    return counter.get_total_flops() / 2, *_layers(model)


def _time_step(setup: tuple, batch_size: int, repeats: int = 3) -> tuple[float, float]:
    """Measured seconds of one training step and one forward pass on a synthetic batch (one thread)."""
    import torch
    import torch.nn.functional as F

    from compress.runtime.numerics import cpu_build

    with cpu_build():
        torch.manual_seed(0)
        model, in_shape, classes = _model(setup)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.randn(batch_size, *in_shape), torch.randint(0, classes, (batch_size,))
        steps, forwards = [], []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i:
                steps.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad():
                model(x)
            forwards.append(time.perf_counter() - t0)
    return statistics.median(steps), statistics.median(forwards)


@dataclass(frozen=True)
class Cost:
    """What one batch of a model costs, per device type, and how that was found (``probe`` or ``flops``)."""

    cpu_step: float
    cpu_forward: float
    gpu_step: float
    gpu_forward: float
    n_train: int
    n_test: int
    layers: int  # conv/linear (TEST_PASSES)
    how: str


def cpu_flop_rate(probes: dict) -> float:
    """This machine's training FLOP/s on one thread, measured on :data:`REFERENCE` once per ``probes`` cache."""
    if "cpu_flop_rate" not in probes:
        flops = _counted(REFERENCE, probes)[0]
        step, _ = _time_step(REFERENCE, REFERENCE_BATCH)
        probes["cpu_flop_rate"] = 3 * flops * REFERENCE_BATCH / step
    return probes["cpu_flop_rate"]


def _counted(setup: tuple, probes: dict) -> tuple[float, int, int]:
    """:func:`_flops` of ``setup``, once per ``probes`` cache (inf for a model the meta device cannot run)."""
    from compress.data.datasets import dataset_shape

    arch, dataset, overrides, options = setup
    in_shape = tuple(dataset_shape(dataset, **dict(options))[0])
    key = ("flops", arch, overrides, in_shape)
    if key not in probes:
        try:
            probes[key] = _flops(arch, overrides, in_shape)
        except Exception:  # noqa: BLE001  a model the meta device cannot run (a data-dependent op): time it
            probes[key] = (math.inf, 0, 0)
    return probes[key]


def model_cost(setup: tuple, batch_size: int, probes: dict, *, gpu_tflops: float = GPU_TFLOPS,
               cpu: bool = True) -> Cost:
    """The :class:`Cost` of ``setup`` at ``batch_size``: on CPU timed if a step is cheap, else from its FLOPs
    (``cpu=False``: the GPU figures only, nothing timed); on GPU from its FLOPs."""
    key = (setup, batch_size, gpu_tflops, cpu)
    if key in probes:
        return probes[key]
    from compress.data.datasets import dataset_size

    arch, dataset, overrides, options = setup
    n_train, n_test = dataset_size(dataset, **dict(options))
    flops, layers, own = _counted(setup, probes)
    step_flops = 3 * flops * batch_size
    if not cpu:
        cpu_step = cpu_forward = math.nan
        how = "flops"
    elif step_flops <= PROBE_FLOPS or not math.isfinite(flops):
        cpu_step, cpu_forward = _time_step(setup, batch_size)
        how = "probe"
    else:
        rate = cpu_flop_rate(probes)
        cpu_step, cpu_forward, how = step_flops / rate, flops * batch_size / rate, "flops"
    gpu, floor = gpu_tflops * 1e12, GPU_LAYER_SECONDS * own
    gpu_step = max(step_flops / gpu, floor) if math.isfinite(flops) else math.nan
    gpu_forward = max(flops * batch_size / gpu, floor / 3) if math.isfinite(flops) else math.nan
    probes[key] = Cost(cpu_step, cpu_forward, gpu_step, gpu_forward, n_train, n_test, layers, how)
    return probes[key]


@dataclass
class Estimate:
    """Estimated build seconds per kind (on this machine's CPU, one process, and on one GPU), and how each
    artifact was estimated."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"history"|"probe"|"flops"|"none": n}
    by_key: dict[str, float] = field(default_factory=dict)  # spec key -> its estimate (0 when not estimated)
    gpu_seconds: dict[str, float] = field(default_factory=dict)  # kind -> seconds on one GPU (FLOPs; assumed rate)
    gpu_tflops: float = GPU_TFLOPS

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def gpu_total(self) -> float:
        return sum(v for v in self.gpu_seconds.values() if math.isfinite(v))

    def add(self, spec: Spec, how: str, seconds: float, gpu_seconds: float = 0.0) -> None:
        kind = spec.kind
        self.by_key[spec.key] = seconds
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.gpu_seconds[kind] = self.gpu_seconds.get(kind, 0.0) + gpu_seconds
        c = self.counts.setdefault(kind, {})
        c[how] = c.get(how, 0) + 1

    def describe(self, kind: str) -> str:
        c = self.counts.get(kind, {})
        how = ", ".join(f"{n} by {k}" for k, n in c.items() if k != "none")
        none = c.get("none", 0)
        text = f"~{format_seconds(self.seconds.get(kind, 0.0))}" + (f" ({how})" if how else "")
        return text + (f", {none} not estimated (no training, no build of its class in this store yet)" if none else "")


def _seconds(spec: Spec, cost: Cost, batch: int, step: float, forward: float) -> float:
    seconds = 0.0
    if spec.kind in TRAINING and training_settings(spec):
        seconds += _steps(spec, cost.n_train) * (step + (forward if spec.kind in WITH_TEACHER else 0.0))
    if spec.kind in TEST_PASSES:
        seconds += TEST_PASSES[spec.kind](spec, max(1, cost.n_test), cost.layers) * forward * math.ceil(cost.n_test / batch)
    return seconds


def estimate_builds(specs: Iterable[Spec], history: Mapping[str, list[float]], *, probe: bool = True,
                    probes: dict | None = None, gpu: bool = False, gpu_tflops: float = GPU_TFLOPS) -> Estimate:
    """Estimate the build time of ``specs`` (those still to build) from ``history``, else a probe or FLOPs,
    and on one GPU from FLOPs (module docstring).

    ``probes``: a cache of measured costs shared between calls (each model and batch size is priced once).
    ``probe=False`` prices nothing but the history (no model is built or timed); ``gpu=True`` adds the
    estimate on one GPU (:attr:`Estimate.gpu_seconds`; FLOPs counted, nothing timed for it).
    """
    est = Estimate(gpu_tflops=gpu_tflops)
    probes = {} if probes is None else probes
    for spec in specs:
        cls = cost_class(spec)
        setup = model_setup(spec)
        priced = probe and setup is not None and ((spec.kind in TRAINING and bool(training_settings(spec)))
                                                  or spec.kind in TEST_PASSES)
        batch = int(training_settings(spec).get("batch_size", 64))
        known = bool(history.get(cls))
        cost = (model_cost(setup, batch, probes, gpu_tflops=gpu_tflops, cpu=not known)
                if priced and (gpu or not known) else None)
        on_gpu = _seconds(spec, cost, batch, cost.gpu_step, cost.gpu_forward) if cost and gpu else 0.0
        if known:
            est.add(spec, "history", statistics.median(history[cls]), on_gpu)
        elif cost is None:
            est.add(spec, "none", 0.0)
        else:
            est.add(spec, cost.how, _seconds(spec, cost, batch, cost.cpu_step, cost.cpu_forward), on_gpu)
    return est
