"""Artifact recipes: a registry of artifact kinds, each owning its spec constructor, builder and label.

Kinds registered here (:data:`KINDS`):

``train``     a model trained from scratch (init seed + data-order seed)
``distill``   a student trained from its parent (the teacher) with a distillation
              strategy (:data:`compress.distill.DISTILLERS`); by default
              self-distillation from the teacher's *initial* weights (the
              student spec carries the teacher's ``init_seed``), or another
              architecture (cross-architecture distillation); with ``simkd``
              the student is the composite student encoder → projector →
              frozen copy of the teacher's head (:mod:`compress.simkd`)
``prune``     global/layer-wise L1 unstructured pruning of its parent: post-hoc,
              or followed by fine-tuning with the masks held (MH paper)
``quantize``  post-hoc FP16/BF16/INT8/INT4 (simulated) of its parent
``eval``      the parent's logits and accuracy on the test split
``channel_prune``   structured L1/L2 channel pruning of its parent to a retained
              fraction (masks nested with the parent's), then fine-tuning
              with the masks held fixed (GC thesis: iterative pruning); of
              every layer, or of convolutions only (MH paper)
``rewind_distill``  the pruned architecture of parent 0 with its unmasked weights
              reset to the teacher's (parent 1) *initial* weights, trained
              with a distiller from the teacher, masks held fixed (GC thesis)

Another module adds a kind with :func:`register_kind` (GC's layer-wise CKA in
:mod:`compress.layer_cka`; SH's sensitivity analysis, layer-allocated pruning,
fine-tuning/QAT, Grad-CAM maps and colour-jittered evaluation in
:mod:`compress.sh_recipes`); :func:`make_builders` serves every kind registered when
it is called. A kind whose specs make a model from data (``train``,
``distill``) carries the parameters ``arch``, ``dataset``, ``data_seed``,
``data_options``, ``overrides`` and ``init_seed``; every other spec finds its
data through its first parent.

Model payloads hold a CPU ``state_dict``, what is needed to rebuild the module
(architecture, classes, input shape, overrides; for a SimKD student also
``simkd``: ``teacher_arch``, ``teacher_overrides``, ``bottleneck``, with
``arch``/``overrides`` the student's), ``metrics`` and ``accounting``
(:func:`compress.accounting.account`: parameters, non-zeros, bytes; of the
whole module, so a SimKD student's count includes its projector and the
teacher's head). Every kind deriving a model from a model payload keeps these
fields, so a pruned or quantized SimKD student rebuilds too. Models trained
with masks held (``channel_prune``, ``rewind_distill``, fine-tuned ``prune``)
also store ``masks`` (channel masks; unstructured weight masks for ``prune``)
and ``effective_parameters`` (:func:`compress.structured.effective_parameter_count`:
the parameters that survive the masks — after coupled channel removal, or the
unmasked weights).

One module though long: it is the list of kinds, each kind's spec constructor,
builder and label side by side.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from analysis._validation import check_choice, check_in_range, invalid

from .accounting import account
from .callbacks import Distill, HoldMasks
from .data import InMemoryDataset, dataset_shape, load_dataset
from .distill import check_hint_pair, make_distiller
from .masks import apply_masks
from .models import create_model
from .numerics import cpu_build
from .pruning import SCOPES, TARGETS, l1_unstructured
from .quantize import QUANT_SCOPES, SCHEMES, attach_activation_quant, quantize, storage_bits
from .runtime import resolve_device
from .simkd import SimKDStudent, build_simkd_student
from .spec import model_root
from .split import SPLITTABLE, splitter_of
from .store import BuildContext, Spec
from .structured import NORMS, channel_masks, effective_parameter_count, retained_fraction, rewind_to_init
from .training import TrainConfig, accuracy, predict, train

__all__ = [
    "Kind",
    "KINDS",
    "register_kind",
    "Workspace",
    "make_builders",
    "train_spec",
    "distill_spec",
    "prune_spec",
    "quantize_spec",
    "eval_spec",
    "channel_prune_spec",
    "rewind_distill_spec",
    "CHANNEL_LAYERS",
    "model_from_payload",
    "label",
    "RECIPE_VERSION",
    "single_threaded_on_cpu",
]

# Part of every spec this module makes: bump it when a builder's output changes for the same
# parameters (a bug fix, a new training detail), so stores built by older code are not reused.
# 2: every model payload carries "accounting".
RECIPE_VERSION = 2


# --------------------------------------------------------------------------- registry


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
        """The dataset of ``spec``'s model root (see the module docstring), on :attr:`torch_device`."""
        p = dict(_model_root(spec, "Workspace.dataset").params)
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
        ``label(spec) -> str``, a short human name for progress lines.
    """

    name: str
    spec: Callable[..., Spec]
    build: Builder
    label: Callable[[Spec], str]


#: Every registered artifact kind, by name.
KINDS: dict[str, Kind] = {}


def register_kind(name: str, *, spec: Callable[..., Spec], build: Builder, label: Callable[[Spec], str]) -> Kind:
    """Register the artifact kind ``name`` (see :class:`Kind`); :func:`make_builders` will serve it.

    Raises
    ------
    InvalidParameterError
        If ``name`` is empty or already registered, or a part is not callable.
    """
    if not isinstance(name, str) or not name:
        raise invalid("name", "register_kind", "a non-empty str", name)
    if name in KINDS:
        raise invalid("name", "register_kind", f"a kind not registered yet (registered: {', '.join(KINDS)})", name)
    for part, fn in (("spec", spec), ("build", build), ("label", label)):
        if not callable(fn):
            raise invalid(part, "register_kind", "a callable", fn)
    KINDS[name] = kind = Kind(name, spec, build, label)
    return kind


def make_builders(ws: Workspace) -> dict:
    """The lookup table kind → builder for :class:`compress.store.ArtifactStore`, one per registered kind."""
    return {name: single_threaded_on_cpu(functools.partial(kind.build, ws), ws) for name, kind in KINDS.items()}


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


def label(spec: Spec) -> str:
    """Short human name of a spec for progress lines, e.g. ``distill resnet18/digits init 0 seed 24 hinton
    teacher_weight=0.5 temperature=3.0`` or ``prune 90%→70%→50% (l1) of rewind-distill 90% of train
    resnet18/digits init 0 seed 0``. Kinds registered without a label of their own list their parameters."""
    kind = KINDS.get(spec.kind)
    return kind.label(spec) if kind is not None else _parameters_label(spec)


def _parameters_label(spec: Spec) -> str:
    p = " ".join(f"{k}={v}" for k, v in spec.params if k != "recipe")
    return f"{spec.kind} {p}" + (f" of {label(spec.parents[0])}" if spec.parents else "")


# --------------------------------------------------------------------------- payloads


def _pairs(d: Mapping | tuple) -> tuple:
    items = d.items() if isinstance(d, Mapping) else d
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in items))


def _model_root(spec: Spec, owner: str) -> Spec:
    """:func:`compress.spec.model_root`, or an error naming ``owner`` when ``spec`` has none."""
    root = model_root(spec)
    if root is None:
        raise invalid("spec", owner, "a spec descending from a model trained on data (train, distill)", spec.kind)
    return root


def model_from_payload(payload: Mapping, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the module a model payload describes (quantization hooks included).

    A payload with a ``simkd`` field is a :class:`compress.simkd.SimKDStudent`:
    its skeleton comes from :func:`compress.simkd.build_simkd_student`, then its state is loaded.
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


def _init_model(arch: str, num_classes: int, in_shape: tuple, overrides, init_seed: int,
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


def _payload(model: nn.Module, like: Mapping, *, bits: Mapping[str, int] | None = None, masks=None, **extra) -> dict:
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


def _trained(model: nn.Module, like: Mapping, data: InMemoryDataset, spec: Spec, config: TrainConfig, seed: int,
             callbacks: list, masks=None, metrics: Mapping = (), **extra) -> dict:
    """Train ``model`` with ``callbacks``; its payload with test accuracy, ``metrics`` and the training record."""
    # Global RNG draws during training (dropout; a distiller's fresh modules such as FitNets' regressor) come from
    # the spec's seed, so the bytes do not depend on what the worker process built before. Forked: the caller's
    # RNG is left as it was. (No earlier model drew from it while training: their bytes are unchanged.)
    with torch.random.fork_rng(devices=[data.device] if data.device.type == "cuda" else []):
        torch.manual_seed(seed)
        res = train(model, data.x_train, data.y_train, config, seed=seed, callbacks=callbacks, describe=label(spec))
    metrics = {"test_acc": accuracy(predict(model, data.x_test), data.y_test), **dict(metrics)}
    if masks is not None:
        metrics["retained_fraction"] = retained_fraction(model, masks)
    # No wall-clock time here: a payload is a pure function of its spec (same bytes on any machine);
    # build times live in the store's log.
    metrics["losses"] = res.losses
    return _payload(model, like, masks=masks, metrics=metrics, **extra)


# --------------------------------------------------------------------------- train, distill


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


def distill_spec(
    teacher: Spec,
    *,
    seed: int,
    train: TrainConfig,
    distiller: str = "hinton",
    distiller_params: Mapping | tuple = (),
    student_arch: str | None = None,
    student_overrides: Mapping | tuple | None = None,
    init_seed: int | None = None,
) -> Spec:
    """A student trained with the strategy ``distiller`` from ``teacher`` on the teacher's data.

    Parameters
    ----------
    teacher : Spec
        A model spec (train, distill, or one derived from them).
    seed : int
        Data order of the student's training.
    train : TrainConfig
    distiller : str
        A name in :data:`compress.distill.DISTILLERS`.
    distiller_params : mapping
        Its parameters (e.g. ``temperature``, ``teacher_weight``); validated
        here, stored with defaults filled in.
    student_arch : str, optional
        Default: the teacher's architecture (self-distillation).
    student_overrides : mapping, optional
        Default: the teacher's overrides when the student has the teacher's
        architecture, none otherwise.
    init_seed : int, optional
        The student's initial weights. Default: the teacher's ``init_seed``, so
        a self-distilled student starts from the teacher's *initial* weights,
        as the MW paper's self-distillation does.

    Notes
    -----
    ``simkd`` trains and stores the composite :class:`compress.simkd.SimKDStudent`:
    the student as initialised from ``init_seed`` (the weights a ``train`` spec
    of that seed starts from), a projector drawn in the same seeded RNG stream
    right after the student's weights, and a frozen copy of the trained
    teacher's head; the loss is SimKD's label-free feature MSE. Both the
    student's and the teacher's architectures must be ones
    :func:`compress.split.split_model` knows (the teacher not itself a SimKD student).
    """
    settings = make_distiller(distiller, **dict(distiller_params)).settings()
    root = _model_root(teacher, "distill_spec")
    p = dict(root.params)
    arch = p["arch"] if student_arch is None else student_arch
    if student_overrides is None:
        overrides = p["overrides"] if arch == p["arch"] else ()
    else:
        overrides = _pairs(student_overrides)
    if distiller == "simkd":
        if p.get("distiller") == "simkd":
            raise invalid("teacher", "distill_spec", "a model split_model knows (not a SimKD student)", label(teacher))
        _check_splittable("teacher", p["arch"], p["overrides"])
        _check_splittable("student_arch", arch, overrides)
    if distiller == "fitnets":
        _check_hint_layers(p, arch, overrides, settings)
    return Spec.make(
        "distill",
        recipe=RECIPE_VERSION,
        parents=(teacher,),
        arch=arch,
        dataset=p["dataset"],
        data_seed=p["data_seed"],
        data_options=p["data_options"],
        overrides=overrides,
        init_seed=p["init_seed"] if init_seed is None else init_seed,
        seed=seed,
        distiller=distiller,
        distiller_params=_pairs(settings),
        train=_pairs(train.as_dict()),
    )


def _check_hint_layers(teacher_params: Mapping, arch: str, overrides, settings: Mapping) -> None:
    """Raise unless FitNets' hint layers exist and give maps of one spatial size (meta device: no weights, no RNG);
    once per pair of architectures and layers (a paper plan makes a FitNets spec per unit and seed)."""
    in_shape, classes = dataset_shape(teacher_params["dataset"], **dict(teacher_params["data_options"]))
    _hint_pair_ok(arch, _frozen(overrides), teacher_params["arch"], _frozen(teacher_params["overrides"]),
                  settings["student_layer"], settings["teacher_layer"], tuple(in_shape), classes)


def _frozen(overrides) -> tuple:
    return tuple(sorted(dict(overrides).items()))


@functools.cache
def _hint_pair_ok(arch: str, overrides: tuple, teacher_arch: str, teacher_overrides: tuple, student_layer: str,
                  teacher_layer: str, in_shape: tuple, classes: int) -> bool:
    with torch.device("meta"):
        student = create_model(arch, classes, in_shape, **dict(overrides))
        teacher = create_model(teacher_arch, classes, in_shape, **dict(teacher_overrides))
    check_hint_pair(student, teacher, student_layer, teacher_layer, in_shape)  # raises (not cached) when wrong
    return True


@functools.cache
def _splittable(arch: str, overrides: tuple) -> bool:
    with torch.device("meta"):
        return splitter_of(create_model(arch, 2, (3, 32, 32), **dict(overrides))) is not None


def _check_splittable(param: str, arch: str, overrides) -> None:
    """Raise unless :func:`compress.split.split_model` knows the class of ``arch`` (SimKD splits both models).

    The model is built on the meta device: no memory, no weights, no RNG draws; once per architecture and
    overrides (a paper plan makes thousands of SimKD specs over 20 architectures: 0.1-0.5 s a build).
    """
    if not _splittable(arch, _frozen(overrides)):
        classes = ", ".join(cls.__name__ for cls in SPLITTABLE)
        raise invalid(param, "distill_spec", f"an architecture split_model knows (classes {classes})", arch)


def _model_label(spec: Spec) -> str:
    p = dict(spec.params)
    return f"{spec.kind} {p['arch']}/{p['dataset']} init {p['init_seed']} seed {p['seed']}"


def _distill_label(spec: Spec) -> str:
    p = dict(spec.params)
    teacher_arch = dict(_model_root(spec.parents[0], "label").params)["arch"]
    source = "" if teacher_arch == p["arch"] else f" from {teacher_arch}"
    return f"{_model_label(spec)}{source} {_distiller_label(spec)}"


def _distiller_label(spec: Spec) -> str:
    return " ".join([spec.param("distiller"), *(f"{k}={v}" for k, v in spec.param("distiller_params"))])


def _fresh_model(data: InMemoryDataset, spec: Spec, wrap: Callable[[nn.Module], nn.Module] | None = None
                 ) -> tuple[nn.Module, dict]:
    """The spec's initial model (``wrap``ped: :func:`_init_model`) on the data's device, and its architecture fields."""
    p = dict(spec.params)
    model = _init_model(p["arch"], data.num_classes, data.in_shape, p["overrides"], p["init_seed"], wrap)
    meta = {"arch": p["arch"], "num_classes": data.num_classes, "in_shape": list(data.in_shape),
            "overrides": dict(p["overrides"])}
    return model.to(data.device), meta


def _build_train(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    model, meta = _fresh_model(data, spec)
    return _trained(model, meta, data, spec, TrainConfig(**dict(spec.param("train"))), spec.param("seed"), [])


def _build_distill(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    distiller = make_distiller(spec.param("distiller"), **dict(spec.param("distiller_params")))
    teacher = model_from_payload(parents[0], data.device)
    # The distiller decides what is trained and deployed (SimKD: the composite, its projector seeded with the student).
    model, meta = _fresh_model(data, spec, lambda student: distiller.wrap_student(student, teacher, data.in_shape))
    if isinstance(model, SimKDStudent):
        meta["simkd"] = {"teacher_arch": parents[0]["arch"], "teacher_overrides": dict(parents[0]["overrides"]),
                         "bottleneck": distiller.bottleneck}
    return _trained(model, meta, data, spec, TrainConfig(**dict(spec.param("train"))), spec.param("seed"),
                    [Distill(distiller, teacher)])


# --------------------------------------------------------------------------- post-hoc: prune, quantize, eval


def prune_spec(parent: Spec, *, sparsity: float, scope: str = "global", targets: str = "weights",
               finetune: TrainConfig | None = None, seed: int | None = None) -> Spec:
    """L1 unstructured pruning of ``parent`` (:func:`compress.pruning.l1_unstructured`), optionally fine-tuned.

    Parameters
    ----------
    sparsity : float
        The fraction of the ``targets`` entries zeroed (conv/linear weights, or
        every array as the MW paper's code), in [0, 1); 0 prunes nothing.
    scope : {'global', 'layerwise'}
    targets : {'weights', 'all_arrays'}
    finetune : TrainConfig, optional
        Train the pruned model with cross-entropy on the labels, masks held
        (:class:`compress.callbacks.HoldMasks`: pruned weights stay exactly 0);
        its payload keeps the masks. ``targets`` must be ``weights`` (zeroed
        BatchNorm statistics would be re-estimated, not held). A SimKD
        student's head stays frozen: fine-tuning trains its encoder and
        projector (declared). Default: post-hoc pruning, no training.
    seed : int, optional
        Data order of the fine-tuning; required with ``finetune``, not allowed without.
    """
    check_in_range("sparsity", "prune_spec", sparsity, 0.0, 1.0, closed="left")
    check_choice("scope", "prune_spec", scope, SCOPES)
    check_choice("targets", "prune_spec", targets, TARGETS)
    if finetune is None:
        if seed is not None:
            raise invalid("seed", "prune_spec", "None without finetune (no training, no data order)", seed)
        return Spec.make("prune", parents=(parent,), recipe=RECIPE_VERSION, method="l1_unstructured",
                         sparsity=float(sparsity), scope=scope, targets=targets)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid("seed", "prune_spec", "an int (the fine-tuning's data order) when finetune is given", seed)
    if targets != "weights":
        raise invalid("targets", "prune_spec", "'weights' when finetune is given", targets)
    # Only fine-tuned specs carry finetune and seed: the keys of post-hoc prune specs stay as they were.
    return Spec.make("prune", parents=(parent,), recipe=RECIPE_VERSION, method="l1_unstructured",
                     sparsity=float(sparsity), scope=scope, targets=targets, seed=seed,
                     finetune=_pairs(finetune.as_dict()))


def _prune_label(spec: Spec) -> str:
    p = dict(spec.params)
    tuned = f", fine-tuned seed {p['seed']}" if "finetune" in p else ""
    return f"prune {p['sparsity']:.0%} ({p['scope']} {p['targets']}{tuned}) of {label(spec.parents[0])}"


def _build_prune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    masks = l1_unstructured(model, p["sparsity"], scope=p["scope"], targets=p["targets"])
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    sparsity = 1 - kept / max(total, 1)
    if "finetune" in p:
        return _trained(model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"],
                        [HoldMasks(masks)], masks=masks, metrics={"sparsity": sparsity})
    acc = accuracy(predict(model, data.x_test), data.y_test)
    return _payload(model, parents[0], metrics={"test_acc": acc, "sparsity": sparsity})


def quantize_spec(parent: Spec, scheme: str, *, calib_n: int = 512, activations: bool = True,
                  scope: str = "conv+linear") -> Spec:
    """Post-hoc quantization of ``parent`` (:func:`compress.quantize.quantize`): weights, and layer inputs if ``activations``.

    Integer schemes calibrate activation ranges on ``calib_n`` training inputs. ``scope`` (one of
    :data:`compress.quantize.QUANT_SCOPES`): the layers whose weights an integer scheme quantizes; ``linear``
    needs ``activations=False``.
    """
    check_choice("scheme", "quantize_spec", scheme, SCHEMES)
    check_choice("scope", "quantize_spec", scope, QUANT_SCOPES)
    if activations and scope != "conv+linear":
        raise invalid("activations", "quantize_spec", f"False with scope {scope!r}", activations)
    # The default scope adds no parameter: the keys of specs made before it existed stay as they were.
    extra = {} if scope == "conv+linear" else {"scope": scope}
    return Spec.make("quantize", parents=(parent,), recipe=RECIPE_VERSION, scheme=scheme, calib_n=calib_n,
                     activations=bool(activations), **extra)


def _quantize_label(spec: Spec) -> str:
    weights_only = "" if spec.param("activations") else " weights only"
    scope = "" if spec.param("scope", "conv+linear") == "conv+linear" else f" {spec.param('scope')}"
    return f"quantize {spec.param('scheme')}{scope}{weights_only} of {label(spec.parents[0])}"


def _build_quantize(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    model = model_from_payload(parents[0], data.device)
    scheme, activations = spec.param("scheme"), spec.param("activations")
    g = torch.Generator().manual_seed(0)
    calib = data.x_train[torch.randperm(data.n_train, generator=g)[: spec.param("calib_n")].to(data.device)]
    q, ranges = quantize(model, scheme, calib_x=calib, activations=activations, scope=spec.param("scope", "conv+linear"))
    acc = accuracy(predict(q, data.x_test), data.y_test)
    quant = {"scheme": scheme, "act_ranges": ranges} if activations else None
    return _payload(q, parents[0], bits=storage_bits(q, scheme), quant=quant, metrics={"test_acc": acc})


def eval_spec(parent: Spec) -> Spec:
    """The logits and accuracy of ``parent`` on the test split (not a model payload)."""
    return Spec.make("eval", parents=(parent,), recipe=RECIPE_VERSION, split="test")


def _eval_label(spec: Spec) -> str:
    return f"eval of {label(spec.parents[0])}"


def _build_eval(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    logits = predict(model_from_payload(parents[0], data.device), data.x_test)
    return {"logits": logits.cpu(), "test_acc": accuracy(logits, data.y_test), "labels": data.y_test.cpu()}


# --------------------------------------------------------------------------- GC: channel pruning, rewinding


#: Which layers channel pruning may shrink: ``all`` conv and linear layers (the classifier's outputs never), or
#: ``conv`` layers only (every linear layer's outputs kept, as the MH paper's channel pruning).
CHANNEL_LAYERS = ("all", "conv")


def channel_prune_spec(
    parent: Spec, *, retained_fraction: float, finetune: TrainConfig, seed: int, norm: str = "l1",
    scope: str = "global", layers: str = "all",
) -> Spec:
    """Structured pruning of ``parent`` then fine-tuning with the masks held (:func:`compress.structured.channel_masks`).

    ``retained_fraction`` is the fraction of the dense *effective* parameters
    kept after coupled channel removal (why not ``sparsity``:
    :mod:`compress.pruning`). Masks nest with ``parent``'s when it is itself
    channel-pruned (iterative pruning); a fine-tuned ``prune`` parent, whose
    masks are unstructured, is refused. ``layers`` is one of
    :data:`CHANNEL_LAYERS`: with ``conv`` every ``nn.Linear`` is passed as
    ``ignore`` (no output channel of it is pruned; the input columns of the
    first one after the convolutions are still masked with the channels that
    feed them: coupled removal).
    """
    check_in_range("retained_fraction", "channel_prune_spec", retained_fraction, 0.0, 1.0, closed="right")
    check_choice("norm", "channel_prune_spec", norm, NORMS)
    check_choice("scope", "channel_prune_spec", scope, SCOPES)
    check_choice("layers", "channel_prune_spec", layers, CHANNEL_LAYERS)
    if parent.kind == "prune" and parent.param("finetune", None) is not None:
        raise invalid("parent", "channel_prune_spec", "a model without unstructured weight masks (channel masks nest "
                      "only in channel masks)", label(parent))
    # The default adds no parameter: the keys of specs made before ``layers`` existed stay as they were.
    extra = {} if layers == "all" else {"layers": layers}
    return Spec.make("channel_prune", parents=(parent,), recipe=RECIPE_VERSION, retained_fraction=float(retained_fraction),
                     norm=norm, scope=scope, seed=seed, finetune=_pairs(finetune.as_dict()), **extra)


def _channel_prune_label(spec: Spec) -> str:
    levels, node = [], spec
    while node.kind == "channel_prune":
        levels.append(f"{node.param('retained_fraction'):.0%}")
        node = node.parents[0]
    layers = "" if spec.param("layers", "all") == "all" else f" {spec.param('layers')}"
    return f"prune {'→'.join(reversed(levels))} ({spec.param('norm')}{layers}) of {label(node)}"


def _build_channel_prune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    within = dict(parents[0]["masks"]) if parents[0].get("masks") else None
    ignore = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)] if p.get("layers") == "conv" else None
    masks = channel_masks(model, p["retained_fraction"], norm=p["norm"], scope=p["scope"],
                          example_inputs=data.x_train[:2], ignore=ignore, within=within)
    apply_masks(model, masks)
    return _trained(model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"], [HoldMasks(masks)],
                    masks=masks)


def rewind_distill_spec(pruned: Spec, teacher: Spec, *, seed: int, train: TrainConfig, distiller: str = "hinton",
                        distiller_params: Mapping | tuple = ()) -> Spec:
    """The pruned architecture rewound to the teacher's initial weights and distilled from the teacher, masks held.

    ``distiller``/``distiller_params`` as in :func:`distill_spec`.
    """
    settings = make_distiller(distiller, **dict(distiller_params)).settings()
    return Spec.make("rewind_distill", parents=(pruned, teacher), recipe=RECIPE_VERSION, seed=seed,
                     distiller=distiller, distiller_params=_pairs(settings), train=_pairs(train.as_dict()))


def _rewind_distill_label(spec: Spec) -> str:
    return f"rewind-distill {spec.parents[0].param('retained_fraction'):.0%} of {label(spec.parents[1])}"


def _build_rewind_distill(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    pruned, teacher_payload = parents
    masks = {k: v.to(data.device) for k, v in pruned["masks"].items()}
    init_seed = _model_root(spec.parents[1], "rewind_distill").param("init_seed")
    # the teacher's initial weights, exactly as its train spec made them
    init = _init_model(pruned["arch"], pruned["num_classes"], tuple(pruned["in_shape"]), pruned["overrides"], init_seed)
    model = model_from_payload(pruned, data.device)
    rewind_to_init(model, masks, {k: v.to(data.device) for k, v in init.state_dict().items()})
    distill = Distill(make_distiller(p["distiller"], **dict(p["distiller_params"])),
                      model_from_payload(teacher_payload, data.device))
    return _trained(model, pruned, data, spec, TrainConfig(**dict(p["train"])), p["seed"], [HoldMasks(masks), distill],
                    masks=masks)


register_kind("train", spec=train_spec, build=_build_train, label=_model_label)
register_kind("distill", spec=distill_spec, build=_build_distill, label=_distill_label)
register_kind("prune", spec=prune_spec, build=_build_prune, label=_prune_label)
register_kind("quantize", spec=quantize_spec, build=_build_quantize, label=_quantize_label)
register_kind("eval", spec=eval_spec, build=_build_eval, label=_eval_label)
register_kind("channel_prune", spec=channel_prune_spec, build=_build_channel_prune, label=_channel_prune_label)
register_kind("rewind_distill", spec=rewind_distill_spec, build=_build_rewind_distill, label=_rewind_distill_label)

# Paper-specific kinds register in this table from their own modules (imported last: they use the above).
from . import layer_cka as _layer_cka  # noqa: F401
from . import sh_recipes as _sh_recipes  # noqa: F401
