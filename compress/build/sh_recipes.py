"""The SH paper's artifact kinds (Saeed, Haroon & Khan: VGG-11 pruning, quantization, distillation).

Listed in the one kind table (:data:`compress.build.kinds.KINDS`):

``sensitivity``   each conv/linear layer pruned alone at every level, by each
                  method, test accuracy recorded, weights restored
                  (:func:`compress.prune.per_layer.sensitivity`)
``layer_prune``   per-layer ratios (from a ``sensitivity`` parent, or uniform)
                  reaching an overall sparsity, masks applied, then
                  fine-tuning with the masks held — of the output layer only
                  (the paper: "only the classifier's final layer unfrozen") or
                  of every layer
``finetune``      more epochs of cross-entropy training of its parent, with
                  straight-through fake quantization (QAT) or without (the
                  FP32 control QAT is compared with)
``gradcam``       Grad-CAM maps (:func:`compress.measure.gradcam.grad_cam`) of the
                  first ``n_images`` test images for their true labels,
                  upsampled to the input size and scaled to [0, 1]
``eval_jitter``   test accuracy on a colour-jittered copy of the test split
                  (:func:`compress.data.jitter.colour_jitter`) beside the clean one
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from analysis._validation import check_choice, check_in_range, invalid

from compress.build.workspace import RECIPE_VERSION, Kind, Workspace, model_from_payload, pairs, payload, trained
from compress.data.datasets import pixel_stats
from compress.data.jitter import check_jitter, colour_jitter
from compress.measure.gradcam import grad_cam, last_conv_layer, upsample_and_scale
from compress.prune.masks import apply_masks
from compress.prune.per_layer import (LAYER_SCOPES, METHODS, allocatable, allocate, layer_masks, prunable_layers,
                                      weight_sparsity)
from compress.prune.hold import HoldMasks
from compress.quant.qat import FakeQuant
from compress.quant.schemes import QUANT_SCOPES
from compress.store.spec import Spec, model_root
from compress.training.loop import TrainConfig, accuracy, predict

__all__ = [
    "ALLOCATIONS",
    "EVAL_JITTER",
    "FINETUNE",
    "GRADCAM",
    "LAYER_PRUNE",
    "SENSITIVITY",
    "TRAINABLE",
    "cam_layer",
    "eval_jitter_spec",
    "finetune_spec",
    "gradcam_spec",
    "layer_prune_spec",
    "sensitivity_spec",
]

#: How ``layer_prune`` spreads its target over layers: from the parent's sensitivity analysis, or uniformly.
ALLOCATIONS = ("sensitivity", "uniform")
#: What ``layer_prune`` fine-tunes: the output layer only (the paper), or every layer.
TRAINABLE = ("last", "all")


# --------------------------------------------------------------------------- sensitivity


def sensitivity_spec(parent: Spec, *, levels: tuple[float, ...], methods: tuple[str, ...] = METHODS) -> Spec:
    """Each layer of ``parent`` pruned alone at each of ``levels`` by each of ``methods``; weights restored after each."""
    levels = tuple(float(v) for v in levels)
    if not levels:
        raise invalid("levels", "sensitivity_spec", "at least one level in [0, 1)", levels)
    for v in levels:
        check_in_range("levels", "sensitivity_spec", v, 0.0, 1.0, closed="left")
    for m in methods:
        check_choice("methods", "sensitivity_spec", m, METHODS)
    return Spec.make("sensitivity", parents=(parent,), recipe=RECIPE_VERSION, levels=levels, methods=tuple(methods))


def _build_sensitivity(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    from compress.prune.per_layer import sensitivity

    data = ws.dataset(spec)
    model = model_from_payload(parents[0], data.device)
    layers = prunable_layers(model)
    out = {"layers": [n for n, _ in layers], "conv": [isinstance(m, nn.Conv2d) for _, m in layers],
           "sizes": [m.weight.numel() for _, m in layers], "levels": list(spec.param("levels")),
           "base_acc": accuracy(predict(model, data.x_test), data.y_test), "acc": {}}
    for method in spec.param("methods"):
        out["acc"][method] = sensitivity(model, data.x_test, data.y_test, levels=spec.param("levels"), method=method)
    return out


def _sensitivity_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"sensitivity {'/'.join(spec.param('methods'))} of {describe(spec.parents[0])}"


def mean_drops(payload: Mapping, method: str) -> dict[str, float]:
    """Layer → mean accuracy drop (points) over the levels, from a ``sensitivity`` payload (layers with none left out)."""
    base = payload["base_acc"]
    return {name: base - sum(accs) / len(accs) for name, accs in payload["acc"][method].items() if accs is not None}


# --------------------------------------------------------------------------- layer-allocated pruning


def layer_prune_spec(
    parent: Spec, *, method: str, target: float, allocation: str = "sensitivity", sensitivity: Spec | None = None,
    scope: str = "all", finetune: TrainConfig | None = None, seed: int | None = None, trainable: str = "last",
    eps: float = 1.0, cap: float = 0.9,
) -> Spec:
    """``parent`` pruned by ``method`` to the overall sparsity ``target``, per-layer ratios by ``allocation``.

    Parameters
    ----------
    method : {'unstructured', 'structured'}
    target : float
        Zeroed fraction of the weights of the layers in ``scope``, in [0, 1).
    allocation : {'sensitivity', 'uniform'}
        ``sensitivity`` needs ``sensitivity``, a :func:`sensitivity_spec` of
        ``parent`` covering ``method`` (:func:`compress.prune.per_layer.allocate`
        with ``eps`` and ``cap``); ``uniform`` prunes every layer in scope at
        ``target`` (structured: the output layer excepted).
    scope : {'all', 'conv'}
    finetune : TrainConfig, optional
        Fine-tune after pruning, masks held (``seed`` its data order); only
        the output layer when ``trainable`` is ``last``.
    """
    owner = "layer_prune_spec"
    check_choice("method", owner, method, METHODS)
    check_in_range("target", owner, target, 0.0, 1.0, closed="left")
    check_choice("allocation", owner, allocation, ALLOCATIONS)
    check_choice("scope", owner, scope, LAYER_SCOPES)
    check_choice("trainable", owner, trainable, TRAINABLE)
    check_in_range("eps", owner, eps, 0.0, float("inf"))
    check_in_range("cap", owner, cap, 0.0, 1.0)
    parents: tuple[Spec, ...] = (parent,)
    if allocation == "sensitivity":
        if sensitivity is None or sensitivity.kind != "sensitivity" or sensitivity.parents[0] != parent:
            raise invalid("sensitivity", owner, "a sensitivity_spec of the parent (allocation 'sensitivity')",
                          None if sensitivity is None else sensitivity.describe())
        if method not in sensitivity.param("methods"):
            raise invalid("sensitivity", owner, f"a sensitivity analysis covering {method!r}",
                          sensitivity.param("methods"))
        parents = (parent, sensitivity)
    elif sensitivity is not None:
        raise invalid("sensitivity", owner, "None with allocation 'uniform'", sensitivity.describe())
    if (finetune is None) != (seed is None):
        raise invalid("seed", owner, "an int exactly when finetune is given", seed)
    tuned = {} if finetune is None else {"finetune": pairs(finetune.as_dict()), "seed": seed, "trainable": trainable}
    return Spec.make("layer_prune", parents=parents, recipe=RECIPE_VERSION, method=method, target=float(target),
                     allocation=allocation, scope=scope, eps=float(eps), cap=float(cap), **tuned)


def _output_only(model: nn.Module) -> None:
    """Freeze every parameter but the output layer's (the paper's fine-tuning)."""
    last = prunable_layers(model)[-1][1]
    keep = {id(p) for p in last.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)


def _build_layer_prune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    method, scope = p["method"], p["scope"]
    if p["allocation"] == "sensitivity":
        drops = mean_drops(parents[1], method)
        ratios = allocate(model, drops, target=p["target"], method=method, scope=scope, eps=p["eps"], cap=p["cap"])
    else:
        ratios = {n: p["target"] for n in allocatable(model, method, scope)}
    masks = layer_masks(model, ratios, method)
    apply_masks(model, masks)
    counted = [n for n, m in prunable_layers(model) if scope == "all" or isinstance(m, nn.Conv2d)]
    metrics = {"sparsity": weight_sparsity(model, masks), "scope_sparsity": weight_sparsity(model, masks, counted),
               "ratios": ratios}
    if "finetune" not in p:
        return payload(model, parents[0], masks=masks,
                        metrics={"test_acc": accuracy(predict(model, data.x_test), data.y_test), **metrics})
    if p["trainable"] == "last":
        _output_only(model)
    out = trained(ws, model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"], [HoldMasks(masks)],
                   masks=masks, metrics=metrics)
    out["metrics"].pop("retained_fraction", None)  # channel-pruning's measure; sparsity is this kind's
    return out


def _layer_prune_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    p = dict(spec.params)
    scope = "" if p["scope"] == "all" else " conv"
    return f"prune {p['method']}{scope} {p['target']:.0%} ({p['allocation']}) of {describe(spec.parents[0])}"


# --------------------------------------------------------------------------- fine-tuning and QAT


def finetune_spec(parent: Spec, *, finetune: TrainConfig, seed: int, qat_bits: int | None = None,
                  qat_scope: str = "conv+linear") -> Spec:
    """``parent`` trained ``finetune.epochs`` more epochs with cross-entropy; with ``qat_bits``, quantization-aware
    (:class:`compress.quant.qat.FakeQuant`, weights of ``qat_scope``), else the FP32 control."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid("seed", "finetune_spec", "an int (the data order)", seed)
    quant = {}
    if qat_bits is not None:
        if isinstance(qat_bits, bool) or not isinstance(qat_bits, int) or not 2 <= qat_bits <= 16:
            raise invalid("qat_bits", "finetune_spec", "an int in [2, 16] or None", qat_bits)
        check_choice("qat_scope", "finetune_spec", qat_scope, QUANT_SCOPES)
        quant = {"qat_bits": qat_bits, "qat_scope": qat_scope}
    return Spec.make("finetune", parents=(parent,), recipe=RECIPE_VERSION, finetune=pairs(finetune.as_dict()),
                     seed=seed, **quant)


def _build_finetune(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    p = dict(spec.params)
    model = model_from_payload(parents[0], data.device)
    callbacks = [FakeQuant(p["qat_bits"], p["qat_scope"])] if "qat_bits" in p else []
    return trained(ws, model, parents[0], data, spec, TrainConfig(**dict(p["finetune"])), p["seed"], callbacks)


def _finetune_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    qat = f" QAT int{spec.param('qat_bits')} {spec.param('qat_scope')}" if spec.param("qat_bits", None) else ""
    return f"fine-tune{qat} seed {spec.param('seed')} of {describe(spec.parents[0])}"


# --------------------------------------------------------------------------- Grad-CAM


def cam_layer(model: nn.Module) -> str:
    """The layer Grad-CAM reads: the last ReLU of ``model.features`` when there is one (the last feature map after
    BatchNorm and activation), else :func:`compress.measure.gradcam.last_conv_layer`."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        relus = [n for n, m in features.named_children() if isinstance(m, nn.ReLU)]
        if relus:
            return f"features.{relus[-1]}"
    return last_conv_layer(model)


def gradcam_spec(parent: Spec, *, n_images: int) -> Spec:
    """Grad-CAM maps of ``parent`` for the first ``n_images`` test images, each for its true label."""
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise invalid("n_images", "gradcam_spec", "a positive int", n_images)
    return Spec.make("gradcam", parents=(parent,), recipe=RECIPE_VERSION, n_images=n_images, target="label")


def _build_gradcam(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    model = model_from_payload(parents[0], data.device)
    n = min(spec.param("n_images"), data.n_test)
    x, y = data.x_test[:n], data.y_test[:n]
    layer = cam_layer(model)
    maps = grad_cam(model, x, layer=layer, targets=y)
    return {"maps": upsample_and_scale(maps, tuple(data.in_shape[1:])).cpu(), "map_size": list(maps.shape[1:]),
            "layer": layer, "targets": y.cpu()}


def _gradcam_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"Grad-CAM of {spec.param('n_images')} images of {describe(spec.parents[0])}"


# --------------------------------------------------------------------------- colour-jittered evaluation


def eval_jitter_spec(parent: Spec, *, jitter: Mapping, jitter_seed: int = 0) -> Spec:
    """Test accuracy of ``parent`` on the test split colour-jittered with ``jitter`` (:func:`compress.data.jitter.check_jitter`:
    brightness, contrast, saturation, hue; defaults filled in), factors drawn with ``jitter_seed``, and on the clean
    split."""
    settings = check_jitter(dict(jitter), owner="eval_jitter_spec")
    if isinstance(jitter_seed, bool) or not isinstance(jitter_seed, int):
        raise invalid("jitter_seed", "eval_jitter_spec", "an int", jitter_seed)
    return Spec.make("eval_jitter", parents=(parent,), recipe=RECIPE_VERSION, jitter=pairs(settings),
                     jitter_seed=jitter_seed)


def _build_eval_jitter(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    root = dict(model_root(spec).params)
    stats = pixel_stats(root["dataset"], seed=root["data_seed"], **dict(root["data_options"]))
    x = colour_jitter(data.x_test, normalization=stats, seed=spec.param("jitter_seed"), **dict(spec.param("jitter")))
    model = model_from_payload(parents[0], data.device)
    return {"test_acc": accuracy(predict(model, x), data.y_test),
            "clean_acc": accuracy(predict(model, data.x_test), data.y_test)}


def _eval_jitter_label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"colour-jittered eval of {describe(spec.parents[0])}"


SENSITIVITY = Kind("sensitivity", sensitivity_spec, _build_sensitivity, _sensitivity_label)
LAYER_PRUNE = Kind("layer_prune", layer_prune_spec, _build_layer_prune, _layer_prune_label)
FINETUNE = Kind("finetune", finetune_spec, _build_finetune, _finetune_label)
GRADCAM = Kind("gradcam", gradcam_spec, _build_gradcam, _gradcam_label)
EVAL_JITTER = Kind("eval_jitter", eval_jitter_spec, _build_eval_jitter, _eval_jitter_label)
