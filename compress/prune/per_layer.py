"""Per-layer pruning as the SH paper does it: sensitivity analysis, allocation to an overall sparsity, masks.

* :func:`sensitivity` — each conv/linear layer pruned *alone* at every level
  (0.4 … 0.9), the test accuracy recorded, the original weights restored
  after each (the paper's §2.1);
* :func:`allocate` — per-layer ratios from the sensitivity reaching a target
  *overall* sparsity, counting the weights of every layer in scope;
* :func:`layer_masks` — the masks for given per-layer ratios: ``unstructured``
  L1 (the smallest-magnitude weights of each layer) or ``structured`` L2
  (whole output channels of a conv, whole output units of a linear layer,
  "zeroed out": the mask zeroes their weights; biases stay, as
  ``torch.nn.utils.prune.ln_structured`` leaves them).

The masks come from ``torch.nn.utils.prune``'s ``L1Unstructured`` and
``LnStructured`` (their ``compute_mask``: the paper used these, and they round
``amount · n`` as it did). Sparsity is counted over conv/linear *weights*
(biases excluded, as the paper's "MB" of zeroed storage).

Allocation rule (the paper does not state its own; declared in the profile):
a layer's sensitivity s_l is its mean accuracy drop (points) over the levels
when pruned alone by the same method; its weight is w_l = 1 / (s_l + ε) and
its ratio r_l = min(cap, k·w_l), with k found by bisection so that the
achieved overall sparsity (after each method's rounding) is as close as it
gets to the target. Tolerant layers are pruned more, sensitive ones less.
The output layer is never pruned structurally (its units are the classes).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from analysis._validation import check_choice, check_in_range, invalid

from compress.prune.masks import MaskSet, apply_masks
from compress.training.loop import accuracy

__all__ = [
    "LAYER_SCOPES",
    "METHODS",
    "allocatable",
    "allocate",
    "check_layers",
    "layer_mask",
    "layer_masks",
    "prunable_layers",
    "remove_zeroed_units",
    "sensitivity",
    "weight_sparsity",
]

#: Pruning methods: L1 of single weights, or L2 of whole output channels/units.
METHODS = ("unstructured", "structured")
#: Which layers an allocation spreads the target over: every conv/linear layer, or the convolutions only
#: (the SH paper's Table 2 variant of structured pruning).
LAYER_SCOPES = ("all", "conv")


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model`` in definition order (name, module)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def check_layers(model: nn.Module, names: Sequence[str], owner: str) -> None:
    """Raise unless every name is a conv/linear layer of ``model`` (the message lists the valid ones)."""
    valid = [n for n, _ in prunable_layers(model)]
    for name in names:
        if name not in valid:
            raise invalid("layer", owner, f"a conv/linear layer of the model ({', '.join(valid)})", name)


def _output_layer(model: nn.Module) -> str:
    return prunable_layers(model)[-1][0]


def layer_mask(module: nn.Module, ratio: float, method: str) -> torch.Tensor:
    """The 0/1 mask of ``module.weight`` pruning the fraction ``ratio`` by ``method`` (see the module docstring)."""
    check_in_range("ratio", "layer_mask", ratio, 0.0, 1.0, closed="left")
    check_choice("method", "layer_mask", method, METHODS)
    w = module.weight.detach()
    ones = torch.ones_like(w)
    if ratio == 0.0:
        return ones
    if method == "unstructured":
        return prune.L1Unstructured(amount=float(ratio)).compute_mask(w, default_mask=ones)
    return prune.LnStructured(amount=float(ratio), n=2, dim=0).compute_mask(w, default_mask=ones)


def layer_masks(model: nn.Module, ratios: Mapping[str, float], method: str) -> MaskSet:
    """Masks (``"<layer>.weight"`` → mask) for the per-layer ``ratios`` (layers not named are not pruned)."""
    check_layers(model, list(ratios), "layer_masks")
    if method == "structured" and ratios.get(_output_layer(model), 0.0) > 0:
        raise invalid("ratios", "layer_masks", "no structured pruning of the output layer (its units are the "
                      "classes)", f"{_output_layer(model)}: {ratios[_output_layer(model)]}")
    modules = dict(model.named_modules())
    return {f"{name}.weight": layer_mask(modules[name], r, method) for name, r in ratios.items()}


def weight_sparsity(model: nn.Module, masks: MaskSet, layers: Sequence[str] | None = None) -> float:
    """Zeroed fraction of the weights of ``layers`` (default: every conv/linear layer) under ``masks``."""
    names = [n for n, _ in prunable_layers(model)] if layers is None else list(layers)
    modules = dict(model.named_modules())
    total = sum(modules[n].weight.numel() for n in names)
    zeroed = sum(int((masks[f"{n}.weight"] == 0).sum()) for n in names if f"{n}.weight" in masks)
    return zeroed / total


def _stages(model: nn.Module) -> list[nn.Module] | None:
    """``model`` as a flat list of modules run one after another (``model(x)`` bit for bit), or None.

    From :func:`compress.models.split.split_model` (encoder then head, nested
    ``nn.Sequential`` containers expanded); None for a model it cannot split.
    """
    from compress.models.split import split_model, splitter_of

    if splitter_of(model) is None:
        return None
    split = split_model(model)
    out: list[nn.Module] = []

    def flat(m: nn.Module) -> None:
        if type(m) is nn.Sequential:
            for child in m:
                flat(child)
        else:
            out.append(m)

    flat(split.encoder)
    flat(split.head)
    return out


def _run(stages: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for stage in stages:
        x = stage(x)
    return x


@torch.no_grad()
def sensitivity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, levels: Sequence[float], method: str,
                layers: Sequence[str] | None = None, batch_size: int = 1024) -> dict[str, list[float | None]]:
    """Test accuracy (%) with each layer pruned alone at each level, the weights restored after each.

    Returns ``layer → [accuracy at each level]``; for ``structured`` the output
    layer's entry is ``None`` (its units are the classes). ``model`` is left
    exactly as it was.

    The part of the network before a pruned layer does not change with the
    level, so where the model splits into stages (:func:`_stages`) it runs
    once per layer and batch, and only the rest runs once per level: the
    logits are the ones ``predict(model, x)`` gives, bit for bit (tested); a
    ``ci`` VGG-11's analysis takes 22 s instead of 32. Models that do not split
    run whole.
    """
    check_choice("method", "sensitivity", method, METHODS)
    for level in levels:
        check_in_range("levels", "sensitivity", level, 0.0, 1.0, closed="left")
    names = [n for n, _ in prunable_layers(model)] if layers is None else list(layers)
    check_layers(model, names, "sensitivity")
    modules = dict(model.named_modules())
    stages = _stages(model)
    out: dict[str, list[float | None]] = {}
    was_training = model.training
    model.eval()
    try:
        for name in names:
            if method == "structured" and name == _output_layer(model):
                out[name] = None
                continue
            module = modules[name]
            weight = module.weight
            original = weight.detach().clone()
            # each from the original weights; kept as bool (a quarter of the float masks' memory: six masks of
            # torchvision VGG-11's first classifier layer are 0.6 GB so, 2.5 GB as float)
            masks = [layer_mask(module, level, method).bool() for level in levels]
            if stages is None:
                prefix, rest = [], [model]
            else:
                first = next(i for i, st in enumerate(stages) if any(m is module for m in st.modules()))
                prefix, rest = stages[:first], stages[first:]
            logits: list[list[torch.Tensor]] = [[] for _ in levels]
            for i in range(0, x.shape[0], batch_size):
                h = _run(prefix, x[i : i + batch_size])
                for j, mask in enumerate(masks):
                    apply_masks(model, {f"{name}.weight": mask})
                    logits[j].append(_run(rest, h).float())
                    weight.copy_(original)  # "original weights restored after each"
            out[name] = [accuracy(torch.cat(chunks) if chunks else torch.empty(0), y) for chunks in logits]
    finally:
        model.train(was_training)
    return out


def allocatable(model: nn.Module, method: str, scope: str) -> list[str]:
    """The layers an allocation may prune: by ``scope`` (:data:`LAYER_SCOPES`), without the output layer when
    ``structured``."""
    check_choice("scope", "allocatable", scope, LAYER_SCOPES)
    layers = [(n, m) for n, m in prunable_layers(model) if scope == "all" or isinstance(m, nn.Conv2d)]
    return [n for n, _ in layers if not (method == "structured" and n == _output_layer(model))]


def allocate(model: nn.Module, drops: Mapping[str, float], *, target: float, method: str, scope: str = "all",
             eps: float = 1.0, cap: float = 0.9) -> dict[str, float]:
    """Per-layer ratios from sensitivity ``drops`` reaching the overall ``target`` (see the module docstring).

    Parameters
    ----------
    drops : mapping
        Layer → mean accuracy drop (points) when pruned alone; every layer of
        :func:`allocatable` must have one. ``{}`` with ``eps`` > 0 and equal
        weights gives a uniform allocation.
    target : float
        Overall sparsity over the weights of every layer in ``scope`` (the
        output layer counted even where it cannot be pruned), in [0, 1).
    eps, cap : float
        ε > 0 of the weights; the largest ratio of one layer, in (0, 1).

    Raises
    ------
    InvalidParameterError
        A bad value, a missing layer, or a target the capped layers cannot reach.
    """
    check_in_range("target", "allocate", target, 0.0, 1.0, closed="left")
    check_in_range("eps", "allocate", eps, 0.0, float("inf"))
    check_in_range("cap", "allocate", cap, 0.0, 1.0)
    layers = allocatable(model, method, scope)
    missing = [n for n in layers if n not in drops]
    if missing:
        raise invalid("drops", "allocate", f"a drop for every layer in scope ({', '.join(layers)})", missing)
    counted = [n for n, m in prunable_layers(model) if scope == "all" or isinstance(m, nn.Conv2d)]
    weights = {n: 1.0 / (max(float(drops[n]), 0.0) + eps) for n in layers}

    def ratios(k: float) -> dict[str, float]:
        return {n: min(cap, k * w) for n, w in weights.items()}

    def achieved(k: float) -> float:
        return weight_sparsity(model, layer_masks(model, ratios(k), method), counted)

    if target == 0.0:
        return {n: 0.0 for n in layers}
    hi = cap / min(weights.values())
    if achieved(hi) < target:
        raise invalid("target", "allocate", f"an overall sparsity the layers reach with each at most {cap} "
                      f"(at most {achieved(hi):.4f})", target)
    lo = 0.0
    for _ in range(60):  # bisection on k; achieved() is monotone in k
        mid = (lo + hi) / 2
        if achieved(mid) < target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda k: abs(achieved(k) - target))
    return ratios(best)


def remove_zeroed_units(model: nn.Module, masks: MaskSet, example_inputs: torch.Tensor) -> nn.Module:
    """A deep copy of ``model`` with every wholly zeroed output channel/unit physically removed (Torch-Pruning).

    For timing structured pruning (SH-3): the masked model keeps its dense
    shapes and runs the same kernels. Torch-Pruning's dependency graph removes
    each zeroed filter with everything coupled to it (its bias, BatchNorm
    entries, the next layer's input slice). The copy's function differs from
    the masked model's by the removed biases/BatchNorm shifts (a zeroed filter
    still outputs ReLU(bias) there); its shapes are what a deployed model would
    have. ``model`` is not changed.
    """
    import copy

    import torch_pruning as tp

    pruned = copy.deepcopy(model).eval()
    modules = dict(pruned.named_modules())
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example_inputs)
    for name, mask in masks.items():
        layer = modules[name.removesuffix(".weight")]
        rows = mask.reshape(mask.shape[0], -1).ne(0).any(1)
        idxs = torch.nonzero(~rows).flatten().tolist()
        if not idxs:
            continue
        if len(idxs) == rows.numel():
            raise invalid("masks", "remove_zeroed_units", "masks keeping at least one unit of every layer", name)
        fn = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
        graph.get_pruning_group(layer, fn, idxs=idxs).prune()
    return pruned
