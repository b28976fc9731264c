"""Artifact recipes: spec constructors and the builders that turn specs into models.

Kinds (each a small builder in one lookup table, :data:`BUILDER_KINDS`):

``train``     a model trained from scratch (init seed + data-order seed)
``distill``   a student trained with Hinton KD from its parent (the teacher);
              self-distillation starts from the teacher's *initial* weights
              because the student spec carries the teacher's ``init_seed``
``prune``     post-hoc global/layer-wise L1 unstructured pruning of its parent
``quantize``  post-hoc FP16/BF16/INT8/INT4 (simulated) of its parent
``eval``      the parent's logits and accuracy on the test split
``channel_prune``   structured L1/L2 channel pruning of its parent to a retained
              fraction (masks nested with the parent's), then fine-tuning
              with the masks held fixed (GC thesis: iterative pruning)
``rewind_distill``  the pruned architecture of parent 0 with its unmasked weights
              reset to the teacher's (parent 1) *initial* weights, trained
              with KD from the teacher, masks held fixed (GC thesis)

Model payloads hold a CPU ``state_dict`` plus what is needed to rebuild the
module (architecture, classes, input shape, overrides) and metrics.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import InMemoryDataset, load_dataset
from .callbacks import Distill, HoldMasks
from .distill import HintonKD
from .models import create_model
from .numerics import cpu_build
from .pruning import l1_unstructured
from .masks import apply_masks
from .quantize import attach_activation_quant, quantize
from .structured import channel_masks, retained_fraction, rewind_to_init
from .runtime import resolve_device
from .store import Spec
from .training import TrainConfig, accuracy, predict, train

__all__ = [
    "Workspace",
    "make_builders",
    "train_spec",
    "distill_spec",
    "prune_spec",
    "quantize_spec",
    "eval_spec",
    "channel_prune_spec",
    "rewind_distill_spec",
    "model_from_payload",
    "label",
    "RECIPE_VERSION",
    "single_threaded_on_cpu",
    "BUILDER_KINDS",
]

# Part of every spec this module makes: bump it when a builder's output changes for the same
# parameters (a bug fix, a new training detail), so stores built by older code are not reused.
RECIPE_VERSION = 1

BUILDER_KINDS = ("train", "distill", "prune", "quantize", "eval", "channel_prune", "rewind_distill")


def _pairs(d: Mapping | tuple) -> tuple:
    items = d.items() if isinstance(d, Mapping) else d
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in items))


def train_spec(
    arch: str,
    dataset: str,
    *,
    init_seed: int,
    seed: int,
    train: TrainConfig,
    data_seed: int = 0,
    overrides: Mapping | tuple = (),
    data_options: Mapping | tuple = (),
) -> Spec:
    """A model trained from scratch: weights from ``init_seed``, data order from ``seed``."""
    return Spec.make(
        "train",
        recipe=RECIPE_VERSION,
        arch=arch,
        dataset=dataset,
        data_seed=data_seed,
        data_options=_pairs(data_options),
        overrides=_pairs(overrides),
        init_seed=init_seed,
        seed=seed,
        train=_pairs(train.as_dict()),
    )


def distill_spec(teacher: Spec, *, seed: int, temperature: float, alpha: float, train: TrainConfig) -> Spec:
    """Self-distillation: the teacher's architecture and *initial* weights, trained with KD from it."""
    p = dict(teacher.params)
    return Spec.make(
        "distill",
        recipe=RECIPE_VERSION,
        parents=(teacher,),
        arch=p["arch"],
        dataset=p["dataset"],
        data_seed=p["data_seed"],
        data_options=p["data_options"],
        overrides=p["overrides"],
        init_seed=p["init_seed"],
        seed=seed,
        temperature=float(temperature),
        alpha=float(alpha),
        train=_pairs(train.as_dict()),
    )


def prune_spec(parent: Spec, ratio: float, *, scope: str = "global") -> Spec:
    return Spec.make("prune", parents=(parent,), recipe=RECIPE_VERSION, method="l1_unstructured", ratio=float(ratio), scope=scope)


def quantize_spec(parent: Spec, scheme: str, *, calib_n: int = 512) -> Spec:
    return Spec.make("quantize", parents=(parent,), recipe=RECIPE_VERSION, scheme=scheme, calib_n=calib_n)


def eval_spec(parent: Spec) -> Spec:
    return Spec.make("eval", parents=(parent,), recipe=RECIPE_VERSION, split="test")


def channel_prune_spec(
    parent: Spec, retained_fraction: float, *, finetune: TrainConfig, seed: int, norm: str = "l1", scope: str = "global"
) -> Spec:
    """Structured pruning of ``parent`` to ``retained_fraction`` of the dense parameters, then fine-tuning."""
    return Spec.make("channel_prune", parents=(parent,), recipe=RECIPE_VERSION, retained_fraction=float(retained_fraction), norm=norm,
                     scope=scope, seed=seed, finetune=_pairs(finetune.as_dict()))


def rewind_distill_spec(pruned: Spec, teacher: Spec, *, seed: int, temperature: float, alpha: float, train: TrainConfig) -> Spec:
    """The pruned architecture rewound to the teacher's initial weights and distilled from the teacher."""
    return Spec.make("rewind_distill", parents=(pruned, teacher), recipe=RECIPE_VERSION, seed=seed, temperature=float(temperature),
                     alpha=float(alpha), train=_pairs(train.as_dict()))


def _root_model_spec(spec: Spec) -> Spec:
    """The train/distill spec a derived spec descends from (it fixes arch and data)."""
    while spec.kind not in ("train", "distill"):
        spec = spec.parents[-1] if spec.kind == "rewind_distill" else spec.parents[0]
    return spec


def label(spec: Spec) -> str:
    """Short human name of a spec for progress lines, e.g. ``distill resnet18/digits init 0 seed 24 α=0.5 T=3.0``
    or ``prune 90%→70%→50% (l1) of rewind-distill 90% of train resnet18/digits init 0 seed 0``."""
    p = {k: v for k, v in spec.params if k != "recipe"}
    if spec.kind == "channel_prune":
        levels, node = [], spec
        while node.kind == "channel_prune":
            levels.append(f"{node.param('retained_fraction'):.0%}")
            node = node.parents[0]
        return f"prune {'→'.join(reversed(levels))} ({p['norm']}) of {label(node)}"
    if spec.kind == "rewind_distill":
        return f"rewind-distill {spec.parents[0].param('retained_fraction'):.0%} of {label(spec.parents[1])}"
    if spec.kind in ("train", "distill"):
        text = f"{spec.kind} {p['arch']}/{p['dataset']} init {p['init_seed']} seed {p['seed']}"
        return text + (f" α={p['alpha']} T={p['temperature']}" if spec.kind == "distill" else "")
    return f"{spec.kind} {' '.join(f'{k}={v}' for k, v in p.items())} of {label(spec.parents[0])}"


def model_from_payload(payload: Mapping, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the module a model payload describes (quantization hooks included)."""
    model = create_model(payload["arch"], payload["num_classes"], tuple(payload["in_shape"]), **dict(payload["overrides"]))
    model.load_state_dict(payload["state_dict"])
    quant = payload.get("quant")
    if quant:
        attach_activation_quant(model, quant["scheme"], dict(quant["act_ranges"]))
    return model.to(device).eval()


def _init_model(arch: str, num_classes: int, in_shape: tuple, overrides, init_seed: int) -> nn.Module:
    """A freshly initialised model whose weights depend on ``init_seed`` alone.

    Built on the CPU under a forked RNG, so the weights are the same on every
    device and the caller's global RNG state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return create_model(arch, num_classes, in_shape, **dict(overrides))


def _payload(model: nn.Module, like: Mapping, **extra) -> dict:
    out = {k: like[k] for k in ("arch", "num_classes", "in_shape", "overrides")}
    out["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    out.update(extra)
    return out


@dataclass
class Workspace:
    """Where builders run: device, data root, and a per-process dataset cache."""

    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    _datasets: dict = field(default_factory=dict)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def dataset(self, spec: Spec) -> InMemoryDataset:
        p = dict(_root_model_spec(spec).params)
        key = (p["dataset"], p["data_seed"], p["data_options"])
        if key not in self._datasets:
            ds = load_dataset(p["dataset"], root=self.data_root, seed=p["data_seed"], download=self.download, **dict(p["data_options"]))
            self._datasets[key] = ds.to(self.torch_device)
        return self._datasets[key]


def make_builders(ws: Workspace) -> dict:
    """The lookup table kind → builder for :class:`compress.store.ArtifactStore`."""

    def build_train(spec: Spec, parents: list, ctx) -> dict:
        p = dict(spec.params)
        data = ws.dataset(spec)
        model = _init_model(p["arch"], data.num_classes, data.in_shape, p["overrides"], p["init_seed"])
        meta = {"arch": p["arch"], "num_classes": data.num_classes, "in_shape": list(data.in_shape), "overrides": dict(p["overrides"])}
        model = model.to(data.device)
        cfg = TrainConfig(**dict(p["train"]))
        callbacks = []
        if spec.kind == "distill":
            teacher = model_from_payload(parents[0], data.device)
            callbacks = [Distill(HintonKD(p["temperature"], p["alpha"]), teacher)]
        res = train(model, data.x_train, data.y_train, cfg, seed=p["seed"], callbacks=callbacks, describe=label(spec))
        acc = accuracy(predict(model, data.x_test), data.y_test)
        return _payload(model, meta, metrics={"test_acc": acc, "train_seconds": res.seconds, "losses": res.losses})

    def build_prune(spec: Spec, parents: list, ctx) -> dict:
        data = ws.dataset(spec)
        model = model_from_payload(parents[0], data.device)
        masks = l1_unstructured(model, spec.param("ratio"), scope=spec.param("scope"))
        acc = accuracy(predict(model, data.x_test), data.y_test)
        kept = sum(int(m.sum()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        return _payload(model, parents[0], metrics={"test_acc": acc, "sparsity": 1 - kept / max(total, 1)})

    def build_quantize(spec: Spec, parents: list, ctx) -> dict:
        data = ws.dataset(spec)
        model = model_from_payload(parents[0], data.device)
        g = torch.Generator().manual_seed(0)
        calib = data.x_train[torch.randperm(data.n_train, generator=g)[: spec.param("calib_n")].to(data.device)]
        q, ranges = quantize(model, spec.param("scheme"), calib_x=calib)
        acc = accuracy(predict(q, data.x_test), data.y_test)
        return _payload(q, parents[0], quant={"scheme": spec.param("scheme"), "act_ranges": ranges}, metrics={"test_acc": acc})

    def build_eval(spec: Spec, parents: list, ctx) -> dict:
        data = ws.dataset(spec)
        t0 = time.perf_counter()
        logits = predict(model_from_payload(parents[0], data.device), data.x_test)
        return {
            "logits": logits.cpu(),
            "test_acc": accuracy(logits, data.y_test),
            "labels": data.y_test.cpu(),
            "seconds": time.perf_counter() - t0,
        }

    def build_channel_prune(spec: Spec, parents: list, ctx) -> dict:
        data = ws.dataset(spec)
        p = dict(spec.params)
        model = model_from_payload(parents[0], data.device)
        within = dict(parents[0]["masks"]) if parents[0].get("masks") else None
        masks = channel_masks(model, p["retained_fraction"], norm=p["norm"], scope=p["scope"],
                              example_inputs=data.x_train[:2], within=within)
        apply_masks(model, masks)
        cfg = TrainConfig(**dict(p["finetune"]))
        res = train(model, data.x_train, data.y_train, cfg, seed=p["seed"], callbacks=[HoldMasks(masks)],
                    describe=label(spec))
        acc = accuracy(predict(model, data.x_test), data.y_test)
        return _payload(model, parents[0], masks={k: v.cpu() for k, v in masks.items()},
                        metrics={"test_acc": acc, "retained_fraction": retained_fraction(model, masks),
                                 "train_seconds": res.seconds, "losses": res.losses})

    def build_rewind_distill(spec: Spec, parents: list, ctx) -> dict:
        data = ws.dataset(spec)
        p = dict(spec.params)
        pruned, teacher_payload = parents
        masks = {k: v.to(data.device) for k, v in pruned["masks"].items()}
        init_seed = _root_model_spec(spec.parents[1]).param("init_seed")
        # the teacher's initial weights, exactly as its train spec made them
        init = _init_model(pruned["arch"], pruned["num_classes"], tuple(pruned["in_shape"]), pruned["overrides"], init_seed)
        model = model_from_payload(pruned, data.device)
        rewind_to_init(model, masks, {k: v.to(data.device) for k, v in init.state_dict().items()})
        teacher = model_from_payload(teacher_payload, data.device)
        cfg = TrainConfig(**dict(p["train"]))
        res = train(model, data.x_train, data.y_train, cfg, seed=p["seed"], describe=label(spec),
                    callbacks=[HoldMasks(masks), Distill(HintonKD(p["temperature"], p["alpha"]), teacher)])
        acc = accuracy(predict(model, data.x_test), data.y_test)
        return _payload(model, pruned, masks=dict(pruned["masks"]),
                        metrics={"test_acc": acc, "retained_fraction": retained_fraction(model, masks),
                                 "train_seconds": res.seconds, "losses": res.losses})

    builders = {"train": build_train, "distill": build_train, "prune": build_prune, "quantize": build_quantize,
                "eval": build_eval, "channel_prune": build_channel_prune, "rewind_distill": build_rewind_distill}
    return {kind: single_threaded_on_cpu(fn, ws) for kind, fn in builders.items()}


def single_threaded_on_cpu(builder, ws: Workspace):
    """Run a CPU build inside :func:`compress.numerics.cpu_build` (one thread, pinned kernels).

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
