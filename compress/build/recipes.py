"""The generic artifact kinds, each owning its spec constructor, builder and label.

The kinds defined here (listed, with the papers' own, in :data:`compress.build.kinds.KINDS`):

``train``     a model trained from scratch (init seed + data-order seed)
``distill``   a student trained from its parent (the teacher) with a distillation
              strategy (:data:`compress.training.distill.DISTILLERS`); by default
              self-distillation from the teacher's *initial* weights (the
              student spec carries the teacher's ``init_seed``), or another
              architecture (cross-architecture distillation); with ``simkd``
              the student is the composite student encoder → projector →
              frozen copy of the teacher's head (:mod:`compress.training.simkd`)
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

Paper-specific kinds live beside this module (GC's layer-wise CKA in
:mod:`compress.build.layer_cka`; SH's sensitivity analysis, layer-allocated pruning,
fine-tuning/QAT, Grad-CAM maps and colour-jittered evaluation in
:mod:`compress.build.sh_recipes`). A kind whose specs make a model from data (``train``,
``distill``) carries the parameters ``arch``, ``dataset``, ``data_seed``,
``data_options``, ``overrides`` and ``init_seed``; every other spec finds its
data through its first parent.

Model payloads hold a CPU ``state_dict``, what is needed to rebuild the module
(architecture, classes, input shape, overrides; for a SimKD student also
``simkd``: ``teacher_arch``, ``teacher_overrides``, ``bottleneck``, with
``arch``/``overrides`` the student's), ``metrics`` and ``accounting``
(:func:`compress.measure.accounting.account`: parameters, non-zeros, bytes; of the
whole module, so a SimKD student's count includes its projector and the
teacher's head). Every kind deriving a model from a model payload keeps these
fields, so a pruned or quantized SimKD student rebuilds too. Models trained
with masks held (``channel_prune``, ``rewind_distill``, fine-tuned ``prune``)
also store ``masks`` (channel masks; unstructured weight masks for ``prune``)
and ``effective_parameters`` (:func:`compress.prune.structured.effective_parameter_count`:
the parameters that survive the masks — after coupled channel removal, or the
unmasked weights).

One module though long: it is the list of kinds, each kind's spec constructor,
builder and label side by side.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from torch import nn

from analysis._validation import check_choice, check_in_range, invalid
from compress.build.workspace import (RECIPE_VERSION, Kind, Workspace, init_model, model_from_payload, model_root_of,
                                      pairs, payload, trained)
from compress.data.datasets import InMemoryDataset, dataset_shape
from compress.models.registry import create_model
from compress.models.split import SPLITTABLE, splitter_of
from compress.prune.hold import HoldMasks
from compress.prune.masks import apply_masks
from compress.prune.structured import NORMS, channel_masks, rewind_to_init
from compress.prune.unstructured import SCOPES, TARGETS, l1_unstructured
from compress.quant.schemes import QUANT_SCOPES, SCHEMES, quantize, storage_bits
from compress.store.spec import Spec
from compress.training.callbacks import Distill
from compress.training.distill import check_hint_pair, make_distiller
from compress.training.loop import TrainConfig, accuracy, predict
from compress.training.simkd import SimKDStudent

__all__ = [
    "CHANNEL_LAYERS", "CHANNEL_PRUNE", "DISTILL", "EVAL", "PRUNE", "QUANTIZE", "REWIND_DISTILL", "TRAIN",
    "channel_prune_spec", "distill_spec", "eval_spec", "prune_spec", "quantize_spec", "rewind_distill_spec",
    "train_spec",
]


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
        data_options=pairs(data_options),
        overrides=pairs(overrides),
        init_seed=init_seed,
        seed=seed,
        train=pairs(train.as_dict()),
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
        A name in :data:`compress.training.distill.DISTILLERS`.
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
    ``simkd`` trains and stores the composite :class:`compress.training.simkd.SimKDStudent`:
    the student as initialised from ``init_seed`` (the weights a ``train`` spec
    of that seed starts from), a projector drawn in the same seeded RNG stream
    right after the student's weights, and a frozen copy of the trained
    teacher's head; the loss is SimKD's label-free feature MSE. Both the
    student's and the teacher's architectures must be ones
    :func:`compress.models.split.split_model` knows (the teacher not itself a SimKD student).
    """
    settings = make_distiller(distiller, **dict(distiller_params)).settings()
    root = model_root_of(teacher, "distill_spec")
    p = dict(root.params)
    arch = p["arch"] if student_arch is None else student_arch
    if student_overrides is None:
        overrides = p["overrides"] if arch == p["arch"] else ()
    else:
        overrides = pairs(student_overrides)
    if distiller == "simkd":
        if p.get("distiller") == "simkd":
            raise invalid("teacher", "distill_spec", "a model split_model knows (not a SimKD student)", teacher.describe())
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
        distiller_params=pairs(settings),
        train=pairs(train.as_dict()),
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
    """Raise unless :func:`compress.models.split.split_model` knows the class of ``arch`` (SimKD splits both models).

    The model is built on the meta device: no memory, no weights, no RNG draws; once per architecture and
    overrides (a paper plan makes thousands of SimKD specs over 20 architectures: 0.1-0.5 s a build).
    """
    if not _splittable(arch, _frozen(overrides)):
        classes = ", ".join(cls.__name__ for cls in SPLITTABLE)
        raise invalid(param, "distill_spec", f"an architecture split_model knows (classes {classes})", arch)


def _model_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    p = dict(spec.params)
    return f"{spec.kind} {p['arch']}/{p['dataset']} init {p['init_seed']} seed {p['seed']}"


def _distill_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    p = dict(spec.params)
    teacher_arch = dict(model_root_of(spec.parents[0], "label").params)["arch"]
    source = "" if teacher_arch == p["arch"] else f" from {teacher_arch}"
    return f"{_model_label(spec, describe)}{source} {_distiller_label(spec)}"


def _distiller_label(spec: Spec) -> str:
    return " ".join([spec.param("distiller"), *(f"{k}={v}" for k, v in spec.param("distiller_params"))])


def _fresh_model(data: InMemoryDataset, spec: Spec, wrap: Callable[[nn.Module], nn.Module] | None = None
                 ) -> tuple[nn.Module, dict]:
    """The spec's initial model (``wrap``ped: :func:`_init_model`) on the data's device, and its architecture fields."""
    p = dict(spec.params)
    model = init_model(p["arch"], data.num_classes, data.in_shape, p["overrides"], p["init_seed"], wrap)
    meta = {"arch": p["arch"], "num_classes": data.num_classes, "in_shape": list(data.in_shape),
            "overrides": dict(p["overrides"])}
    return model.to(data.device), meta


def _build_train(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    model, meta = _fresh_model(data, spec)
    return trained(ws, model, meta, data, spec, TrainConfig(**dict(spec.param("train"))), spec.param("seed"), [])


def _build_distill(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    distiller = make_distiller(spec.param("distiller"), **dict(spec.param("distiller_params")))
    teacher = model_from_payload(parents[0], data.device)
    # The distiller decides what is trained and deployed (SimKD: the composite, its projector seeded with the student).
    model, meta = _fresh_model(data, spec, lambda student: distiller.wrap_student(student, teacher, data.in_shape))
    if isinstance(model, SimKDStudent):
        meta["simkd"] = {"teacher_arch": parents[0]["arch"], "teacher_overrides": dict(parents[0]["overrides"]),
                         "bottleneck": distiller.bottleneck}
    return trained(ws, model, meta, data, spec, TrainConfig(**dict(spec.param("train"))), spec.param("seed"),
                    [Distill(distiller, teacher)])


# --------------------------------------------------------------------------- post-hoc: prune, quantize, eval


def prune_spec(parent: Spec, *, sparsity: float, scope: str = "global", targets: str = "weights",
               finetune: TrainConfig | None = None, seed: int | None = None) -> Spec:
    """L1 unstructured pruning of ``parent`` (:func:`compress.prune.unstructured.l1_unstructured`), optionally fine-tuned.

    Parameters
    ----------
    sparsity : float
        The fraction of the ``targets`` entries zeroed (conv/linear weights, or
        every array as the MW paper's code), in [0, 1); 0 prunes nothing.
    scope : {'global', 'layerwise'}
    targets : {'weights', 'all_arrays'}
    finetune : TrainConfig, optional
        Train the pruned model with cross-entropy on the labels, masks held
        (:class:`compress.prune.hold.HoldMasks`: pruned weights stay exactly 0);
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
                     finetune=pairs(finetune.as_dict()))


def _prune_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    p = dict(spec.params)
    tuned = f", fine-tuned seed {p['seed']}" if "finetune" in p else ""
    return f"prune {p['sparsity']:.0%} ({p['scope']} {p['targets']}{tuned}) of {describe(spec.parents[0])}"


def _build_prune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    masks = l1_unstructured(model, p["sparsity"], scope=p["scope"], targets=p["targets"])
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    sparsity = 1 - kept / max(total, 1)
    if "finetune" in p:
        return trained(ws, model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"],
                        [HoldMasks(masks)], masks=masks, metrics={"sparsity": sparsity})
    acc = accuracy(predict(model, data.x_test), data.y_test)
    return payload(model, parents[0], metrics={"test_acc": acc, "sparsity": sparsity})


def quantize_spec(parent: Spec, scheme: str, *, calib_n: int = 512, activations: bool = True,
                  scope: str = "conv+linear") -> Spec:
    """Post-hoc quantization of ``parent`` (:func:`compress.quant.schemes.quantize`): weights, and layer inputs if ``activations``.

    Integer schemes calibrate activation ranges on ``calib_n`` training inputs. ``scope`` (one of
    :data:`compress.quant.schemes.QUANT_SCOPES`): the layers whose weights an integer scheme quantizes; ``linear``
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


def _quantize_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    weights_only = "" if spec.param("activations") else " weights only"
    scope = "" if spec.param("scope", "conv+linear") == "conv+linear" else f" {spec.param('scope')}"
    return f"quantize {spec.param('scheme')}{scope}{weights_only} of {describe(spec.parents[0])}"


def _build_quantize(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    model = model_from_payload(parents[0], data.device)
    scheme, activations = spec.param("scheme"), spec.param("activations")
    g = torch.Generator().manual_seed(0)
    calib = data.x_train[torch.randperm(data.n_train, generator=g)[: spec.param("calib_n")].to(data.device)]
    q, ranges = quantize(model, scheme, calib_x=calib, activations=activations, scope=spec.param("scope", "conv+linear"))
    acc = accuracy(predict(q, data.x_test), data.y_test)
    quant = {"scheme": scheme, "act_ranges": ranges} if activations else None
    return payload(q, parents[0], bits=storage_bits(q, scheme), quant=quant, metrics={"test_acc": acc})


def eval_spec(parent: Spec) -> Spec:
    """The logits and accuracy of ``parent`` on the test split (not a model payload)."""
    return Spec.make("eval", parents=(parent,), recipe=RECIPE_VERSION, split="test")


def _eval_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"eval of {describe(spec.parents[0])}"


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
    """Structured pruning of ``parent`` then fine-tuning with the masks held (:func:`compress.prune.structured.channel_masks`).

    ``retained_fraction`` is the fraction of the dense *effective* parameters
    kept after coupled channel removal (why not ``sparsity``:
    :mod:`compress.prune.unstructured`). Masks nest with ``parent``'s when it is itself
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
                      "only in channel masks)", parent.describe())
    # The default adds no parameter: the keys of specs made before ``layers`` existed stay as they were.
    extra = {} if layers == "all" else {"layers": layers}
    return Spec.make("channel_prune", parents=(parent,), recipe=RECIPE_VERSION, retained_fraction=float(retained_fraction),
                     norm=norm, scope=scope, seed=seed, finetune=pairs(finetune.as_dict()), **extra)


def _channel_prune_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    levels, node = [], spec
    while node.kind == "channel_prune":
        levels.append(f"{node.param('retained_fraction'):.0%}")
        node = node.parents[0]
    layers = "" if spec.param("layers", "all") == "all" else f" {spec.param('layers')}"
    return f"prune {'→'.join(reversed(levels))} ({spec.param('norm')}{layers}) of {describe(node)}"


def _build_channel_prune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    within = dict(parents[0]["masks"]) if parents[0].get("masks") else None
    ignore = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)] if p.get("layers") == "conv" else None
    masks = channel_masks(model, p["retained_fraction"], norm=p["norm"], scope=p["scope"],
                          example_inputs=data.x_train[:2], ignore=ignore, within=within)
    apply_masks(model, masks)
    return trained(ws, model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"], [HoldMasks(masks)],
                    masks=masks)


def rewind_distill_spec(pruned: Spec, teacher: Spec, *, seed: int, train: TrainConfig, distiller: str = "hinton",
                        distiller_params: Mapping | tuple = ()) -> Spec:
    """The pruned architecture rewound to the teacher's initial weights and distilled from the teacher, masks held.

    ``distiller``/``distiller_params`` as in :func:`distill_spec`.
    """
    settings = make_distiller(distiller, **dict(distiller_params)).settings()
    return Spec.make("rewind_distill", parents=(pruned, teacher), recipe=RECIPE_VERSION, seed=seed,
                     distiller=distiller, distiller_params=pairs(settings), train=pairs(train.as_dict()))


def _rewind_distill_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"rewind-distill {spec.parents[0].param('retained_fraction'):.0%} of {describe(spec.parents[1])}"


def _build_rewind_distill(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    pruned, teacher_payload = parents
    masks = {k: v.to(data.device) for k, v in pruned["masks"].items()}
    init_seed = model_root_of(spec.parents[1], "rewind_distill").param("init_seed")
    # the teacher's initial weights, exactly as its train spec made them
    init = init_model(pruned["arch"], pruned["num_classes"], tuple(pruned["in_shape"]), pruned["overrides"], init_seed)
    model = model_from_payload(pruned, data.device)
    rewind_to_init(model, masks, {k: v.to(data.device) for k, v in init.state_dict().items()})
    distill = Distill(make_distiller(p["distiller"], **dict(p["distiller_params"])),
                      model_from_payload(teacher_payload, data.device))
    return trained(ws, model, pruned, data, spec, TrainConfig(**dict(p["train"])), p["seed"], [HoldMasks(masks), distill],
                    masks=masks)


TRAIN = Kind("train", train_spec, _build_train, _model_label)
DISTILL = Kind("distill", distill_spec, _build_distill, _distill_label)
PRUNE = Kind("prune", prune_spec, _build_prune, _prune_label)
QUANTIZE = Kind("quantize", quantize_spec, _build_quantize, _quantize_label)
EVAL = Kind("eval", eval_spec, _build_eval, _eval_label)
CHANNEL_PRUNE = Kind("channel_prune", channel_prune_spec, _build_channel_prune, _channel_prune_label)
REWIND_DISTILL = Kind("rewind_distill", rewind_distill_spec, _build_rewind_distill, _rewind_distill_label)
