"""What every artifact kind shares: the workspace builders run in, the :class:`Kind` record, payload helpers.

A builder is ``build(workspace, spec, parent_payloads, context) -> payload``;
model payloads hold a CPU ``state_dict``, what is needed to rebuild the module
(:func:`model_from_payload`), ``metrics`` and ``accounting``. The kinds
themselves live in :mod:`compress.build.recipes` (the generic ones) and the
paper modules beside it; :mod:`compress.build.kinds` lists them all.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from analysis._validation import invalid
from compress.data.datasets import InMemoryDataset, load_dataset
from compress.measure.accounting import account
from compress.models.registry import create_model
from compress.prune.structured import effective_parameter_count, retained_fraction
from compress.quant.schemes import attach_activation_quant
from compress.runtime.devices import resolve_device
from compress.runtime.numerics import cpu_build
from compress.store.artifacts import BuildContext
from compress.store.spec import Spec, model_root
from compress.training.loop import TrainConfig, accuracy, predict, train
from compress.training.simkd import build_simkd_student

__all__ = ["Builder", "Kind", "RECIPE_VERSION", "Workspace", "init_model", "model_from_payload", "model_root_of",
           "pairs", "payload", "single_threaded_on_cpu", "trained"]

# Part of every spec the kinds make: bump it when a builder's output changes for the same
# parameters (a bug fix, a new training detail), so stores built by older code are not reused.
# 2: every model payload carries "accounting".
RECIPE_VERSION = 2


@dataclass
class Workspace:
    """Where builders run: device, data root, and a per-process dataset cache."""

    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    #: How progress lines name a spec (:func:`compress.build.kinds.make_builders` sets its :func:`~compress.build.kinds.label`).
    describe: Callable[[Spec], str] = Spec.describe
    _datasets: dict = field(default_factory=dict)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def dataset(self, spec: Spec) -> InMemoryDataset:
        """The dataset of ``spec``'s model root (see the module docstring), on :attr:`torch_device`."""
        p = dict(model_root_of(spec, "Workspace.dataset").params)
        key = (p["dataset"], p["data_seed"], p["data_options"])
        if key not in self._datasets:
            ds = load_dataset(p["dataset"], root=self.data_root, seed=p["data_seed"], download=self.download, **dict(p["data_options"]))
            self._datasets[key] = ds.to(self.torch_device)
        return self._datasets[key]


Builder = Callable[[Workspace, Spec, list, BuildContext], Any]


@dataclass(frozen=True)
class Kind:
    """An artifact kind.

    Attributes
    ----------
    name : str
        The ``Spec.kind`` it builds.
    spec : callable
        Its spec constructor (e.g. :func:`prune_spec`).
    build : callable
        ``build(workspace, spec, parent_payloads, context) -> payload``.
    label : callable
        ``label(spec, describe) -> str``, a short human name for progress lines; ``describe`` names
        other specs (parents) the same way.
    """

    name: str
    spec: Callable[..., Spec]
    build: Builder
    label: Callable[[Spec, Callable[[Spec], str]], str]


def single_threaded_on_cpu(builder, ws: Workspace):
    """Run a CPU build inside :func:`compress.runtime.numerics.cpu_build` (one thread, pinned kernels).

    The store's key does not (and should not) include the thread count or the
    machine; pinning them makes an artifact's bytes the same whether it was
    built under ``-n 1`` or ``-n 4``, here or on another x86-64 machine.
    """

    def build(spec, parents, ctx):
        if ws.torch_device.type != "cpu":
            return builder(spec, parents, ctx)
        with cpu_build():
            return builder(spec, parents, ctx)

    return build


def pairs(d: Mapping | tuple) -> tuple:
    items = d.items() if isinstance(d, Mapping) else d
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in items))


def model_root_of(spec: Spec, owner: str) -> Spec:
    """:func:`compress.store.spec.model_root`, or an error naming ``owner`` when ``spec`` has none."""
    root = model_root(spec)
    if root is None:
        raise invalid("spec", owner, "a spec descending from a model trained on data (train, distill)", spec.kind)
    return root


def model_from_payload(payload: Mapping, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the module a model payload describes (quantization hooks included).

    A payload with a ``simkd`` field is a :class:`compress.training.simkd.SimKDStudent`:
    its skeleton comes from :func:`compress.training.simkd.build_simkd_student`, then its state is loaded.
    """
    arch, num_classes, in_shape = payload["arch"], payload["num_classes"], tuple(payload["in_shape"])
    simkd = payload.get("simkd")
    if simkd:
        model = build_simkd_student(arch, simkd["teacher_arch"], num_classes, in_shape,
                                    student_overrides=dict(payload["overrides"]),
                                    teacher_overrides=dict(simkd["teacher_overrides"]), bottleneck=simkd["bottleneck"])
    else:
        model = create_model(arch, num_classes, in_shape, **dict(payload["overrides"]))
    model.load_state_dict(payload["state_dict"])
    quant = payload.get("quant")
    if quant:
        attach_activation_quant(model, quant["scheme"], dict(quant["act_ranges"]))
    return model.to(device).eval()


def init_model(arch: str, num_classes: int, in_shape: tuple, overrides, init_seed: int,
                wrap: Callable[[nn.Module], nn.Module] | None = None) -> nn.Module:
    """A freshly initialised model whose weights depend on ``init_seed`` alone.

    Built on the CPU under a forked RNG, so the weights are the same on every
    device and the caller's global RNG state is left as it was. With ``wrap``,
    the model returned is ``wrap(model)``, called in the same RNG stream right
    after the model's weights are drawn: what it initialises (SimKD's
    projector) depends on ``init_seed`` alone too, and the model's own weights
    are those it has without ``wrap``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = create_model(arch, num_classes, in_shape, **dict(overrides))
        return model if wrap is None else wrap(model)


def payload(model: nn.Module, like: Mapping, *, bits: Mapping[str, int] | None = None, masks=None, **extra) -> dict:
    """A model payload: ``like``'s architecture fields (``simkd`` included), the CPU state and accounting.

    ``masks`` (channel masks, in which children nest theirs, or a fine-tuned
    prune's weight masks) are stored too and give the effective parameter count.
    """
    out = {k: like[k] for k in ("arch", "num_classes", "in_shape", "overrides")}
    if "simkd" in like:
        out["simkd"] = like["simkd"]
    out["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    out["accounting"] = account(model, bits=bits)
    if masks is not None:
        out["accounting"]["effective_parameters"] = effective_parameter_count(model, masks)
        out["masks"] = {k: v.detach().cpu() for k, v in masks.items()}
    out.update(extra)
    return out


def trained(ws: Workspace, model: nn.Module, like: Mapping, data: InMemoryDataset, spec: Spec, config: TrainConfig, seed: int,
             callbacks: list, masks=None, metrics: Mapping = (), **extra) -> dict:
    """Train ``model`` with ``callbacks`` (progress lines name it ``ws.describe(spec)``); its payload with test accuracy, ``metrics`` and the training record."""
    # Global RNG draws during training (dropout; a distiller's fresh modules such as FitNets' regressor) come from
    # the spec's seed, so the bytes do not depend on what the worker process built before. Forked: the caller's
    # RNG is left as it was. (No earlier model drew from it while training: their bytes are unchanged.)
    with torch.random.fork_rng(devices=[data.device] if data.device.type == "cuda" else []):
        torch.manual_seed(seed)
        res = train(model, data.x_train, data.y_train, config, seed=seed, callbacks=callbacks, describe=ws.describe(spec))
    metrics = {"test_acc": accuracy(predict(model, data.x_test), data.y_test), **dict(metrics)}
    if masks is not None:
        metrics["retained_fraction"] = retained_fraction(model, masks)
    # No wall-clock time here: a payload is a pure function of its spec (same bytes on any machine);
    # build times live in the store's log.
    metrics["losses"] = res.losses
    return payload(model, like, masks=masks, metrics=metrics, **extra)
