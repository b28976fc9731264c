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
  a kind missing there, or without a model, is counted, not guessed.

An estimate is what it says: the build time one process spends; with several
workers the wall time is about the total divided by the workers, as far as the
DAG lets them work in parallel.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .progress import format_seconds
from .spec import Spec, model_root

__all__ = ["cost_class", "build_history", "Estimate", "estimate_builds"]

#: Kinds that train, and the parameter holding their training settings.
TRAINING = {"train": "train", "distill": "train", "rewind_distill": "train", "channel_prune": "finetune",
            "layer_prune": "finetune", "finetune": "finetune"}

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


def _setup(spec: Spec) -> tuple | None:
    root = model_root(spec)
    if root is None:
        return None
    p = dict(root.params)
    return p["arch"], p["dataset"], tuple(p.get("overrides", ())), tuple(p.get("data_options", ()))


def _training(spec: Spec) -> dict:
    return dict(dict(spec.params).get(TRAINING.get(spec.kind, ""), ()) or ())


def cost_class(spec: Spec) -> str:
    """What a build's time depends on: kind, model and data, training length (not seeds)."""
    setup = _setup(spec)
    t = _training(spec)
    parts = [spec.kind]
    if setup is not None:
        arch, dataset, overrides, options = setup
        parts.append(f"{arch}{dict(overrides) or ''}/{dataset}{dict(options) or ''}")
    if t:
        parts.append(f"epochs={t.get('epochs')} batch={t.get('batch_size')}")
    if spec.kind == "layer_cka":
        parts.append(f"models={len(spec.parents)} n={dict(spec.params).get('n_inputs')}")
    return " ".join(parts)


def build_history(log: Path) -> dict[str, list[float]]:
    """``{cost class: [seconds, …]}`` of the builds ``store.log`` records (lines without a class are skipped)."""
    out: dict[str, list[float]] = {}
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and d.get("event") == "built" and isinstance(d.get("class"), str) \
                and isinstance(d.get("seconds"), (int, float)):
            out.setdefault(d["class"], []).append(float(d["seconds"]))
    return out


def _steps(spec: Spec, n_train: int) -> int:
    t = _training(spec)
    return int(t.get("epochs", 0)) * math.ceil(n_train / max(1, int(t.get("batch_size", 64))))


def _probe(setup: tuple, batch_size: int, repeats: int = 3) -> tuple[float, float, int, int, int]:
    """Seconds per training step and per forward pass, training and test examples, conv/linear layers."""
    import torch
    import torch.nn.functional as F

    from .data import dataset_shape, dataset_size
    from .models import create_model
    from .numerics import cpu_build

    arch, dataset, overrides, options = setup
    in_shape, classes = dataset_shape(dataset, **dict(options))
    with cpu_build():
        torch.manual_seed(0)
        model = create_model(arch, classes, in_shape, **dict(overrides))
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
    n_train, n_test = dataset_size(dataset, **dict(options))
    layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())
    return statistics.median(steps), statistics.median(forwards), n_train, n_test, layers


@dataclass
class Estimate:
    """Estimated build seconds per kind, and how each artifact was estimated."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"history"|"probe"|"none": n}
    by_key: dict[str, float] = field(default_factory=dict)  # spec key -> its estimate (0 when not estimated)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def add(self, spec: Spec, how: str, seconds: float) -> None:
        kind = spec.kind
        self.by_key[spec.key] = seconds
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        c = self.counts.setdefault(kind, {})
        c[how] = c.get(how, 0) + 1

    def describe(self, kind: str) -> str:
        c = self.counts.get(kind, {})
        how = ", ".join(f"{n} by {k}" for k, n in c.items() if k != "none")
        none = c.get("none", 0)
        text = f"~{format_seconds(self.seconds.get(kind, 0.0))}" + (f" ({how})" if how else "")
        return text + (f", {none} not estimated (no training, no build of its class in this store yet)" if none else "")


def estimate_builds(specs: Iterable[Spec], history: Mapping[str, list[float]], *, probe: bool = True,
                    probes: dict | None = None) -> Estimate:
    """Estimate the build time of ``specs`` (those still to build) from ``history``, else a probe.

    ``probes``: a cache of measured probes shared between calls (each model and batch size is timed once).
    """
    est = Estimate()
    probes = {} if probes is None else probes
    for spec in specs:
        cls = cost_class(spec)
        if history.get(cls):
            est.add(spec, "history", statistics.median(history[cls]))
            continue
        setup = _setup(spec)
        training = spec.kind in TRAINING and bool(_training(spec))
        if not probe or setup is None or not (training or spec.kind in TEST_PASSES):
            est.add(spec, "none", 0.0)
            continue
        batch = int(_training(spec).get("batch_size", 64))
        if (setup, batch) not in probes:
            probes[(setup, batch)] = _probe(setup, batch)
        step, forward, n_train, n_test, layers = probes[(setup, batch)]
        seconds = 0.0
        if training:
            seconds += _steps(spec, n_train) * (step + (forward if spec.kind in WITH_TEACHER else 0.0))
        if spec.kind in TEST_PASSES:
            seconds += TEST_PASSES[spec.kind](spec, max(1, n_test), layers) * forward * math.ceil(n_test / batch)
        est.add(spec, "probe", seconds)
    return est
