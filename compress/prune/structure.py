"""Per-layer structure of a pruning: mask sparsity per conv/linear layer, and the MH-6 checks on it.

MH-6 (CLAIMS.md): "weight pruning applies parameter reduction across all
layers, including fully connected layers"; channel pruning leaves "the fully
connected layers untouched". Decided on the masks, for every pruned model and
level:

* :func:`weight_pruning_thins_every_layer` — every prunable layer (conv and
  linear weights, :func:`compress.prune.unstructured.prunable_weights`) has mask
  sparsity > 0. Global L1 pruning can leave a layer untouched at a low level;
  that is a genuine violation, reported by name.
* :func:`channel_pruning_spares_linear` — no Linear weight is masked, except
  for the coupling the definition implies: removing the last conv's channels
  removes the matching input columns of the first Linear after it (channel
  masks of :func:`compress.prune.structured.channel_masks` include those columns,
  as does physical removal). That coupled reduction is reported apart
  (:class:`CoupledColumns`), not counted as a violation; any other masked
  Linear entry — a removed output unit, a stray weight — is one.

Records are plain dataclasses so a report can tabulate them
(``dataclasses.asdict``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from analysis._validation import check_choice, invalid

from compress.prune.masks import MaskSet, validate_masks
from compress.prune.unstructured import prunable_weights

__all__ = [
    "PRUNING_METHODS",
    "CoupledColumns",
    "LayerSparsity",
    "StructureCheck",
    "channel_pruning_spares_linear",
    "layer_sparsity",
    "pruning_structure",
    "weight_pruning_thins_every_layer",
]

PRUNING_METHODS = ("weight", "channel")

_CONV = nn.modules.conv._ConvNd


@dataclass(frozen=True)
class LayerSparsity:
    """One prunable layer's weight mask: ``masked`` of ``weights`` entries are zero (``sparsity`` = ratio)."""

    name: str  # module name; the weight is ``f"{name}.weight"``
    kind: str  # 'conv' or 'linear'
    weights: int
    masked: int
    sparsity: float


@dataclass(frozen=True)
class CoupledColumns:
    """The first Linear's input columns that go with the last conv's removed channels.

    ``columns_removed`` = ``channels_removed`` × (``linear`` in-features /
    ``channels``): a flatten of (C, H, W) puts channel c's H·W positions in
    consecutive columns. ``parameters_removed`` counts the Linear's weight
    entries in those columns (out-features × columns).
    """

    conv: str
    linear: str
    channels: int
    channels_removed: int
    columns_removed: int
    parameters_removed: int


@dataclass(frozen=True)
class StructureCheck:
    """An MH-6 check of one pruned model: per-layer records, violations (empty = holds), coupled reduction."""

    method: str
    layers: tuple[LayerSparsity, ...]
    violations: tuple[str, ...]
    coupled: CoupledColumns | None = None

    @property
    def holds(self) -> bool:
        return not self.violations


def _kind(module: nn.Module) -> str:
    return "linear" if isinstance(module, nn.Linear) else "conv"


def _weight_mask(masks: MaskSet, name: str, module: nn.Module) -> torch.Tensor:
    """The layer's weight mask as bool keep-flags (all kept when ``masks`` has none for it)."""
    mask = masks.get(f"{name}.weight")
    return torch.ones(module.weight.shape, dtype=torch.bool) if mask is None else mask.detach().ne(0).cpu()


def layer_sparsity(model: nn.Module, masks: MaskSet) -> list[LayerSparsity]:
    """Mask sparsity of every conv and linear weight, in module order.

    A layer without a mask in ``masks`` is unmasked (sparsity 0). Biases and
    norms are not counted (they are not prunable weights).
    """
    validate_masks(model, masks)
    records = []
    for name, module in prunable_weights(model):
        keep = _weight_mask(masks, name, module)
        masked = int((~keep).sum())
        records.append(LayerSparsity(name, _kind(module), keep.numel(), masked, masked / max(keep.numel(), 1)))
    return records


def weight_pruning_thins_every_layer(model: nn.Module, masks: MaskSet) -> StructureCheck:
    """MH-6, weight pruning: every prunable layer, linear layers included, has sparsity > 0."""
    layers = tuple(layer_sparsity(model, masks))
    violations = tuple(
        f"{r.kind} layer {r.name!r} has sparsity 0 under weight pruning (none of its {r.weights} weights masked)"
        for r in layers if r.masked == 0
    )
    return StructureCheck("weight", layers, violations)


def _execution_order(model: nn.Module, example_inputs) -> list[str]:
    """Names of conv/linear modules in the order a forward pass calls them (each at its last call)."""
    order: list[str] = []

    def record(_m, _i, _o, name):
        if name in order:
            order.remove(name)
        order.append(name)

    handles = [
        m.register_forward_hook(lambda m, i, o, n=n: record(m, i, o, n))
        for n, m in model.named_modules() if isinstance(m, (_CONV, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            if isinstance(example_inputs, (tuple, list)):
                model(*example_inputs)
            elif isinstance(example_inputs, dict):
                model(**example_inputs)
            else:
                model(example_inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return order


def _coupled_columns(model: nn.Module, masks: MaskSet, example_inputs) -> tuple[CoupledColumns | None, torch.Tensor]:
    """The coupled reduction and the bool vector of the head's coupled input columns (empty when none)."""
    modules = dict(model.named_modules())
    order = _execution_order(model, example_inputs)
    convs = [i for i, n in enumerate(order) if isinstance(modules[n], _CONV)]
    heads = [n for n in order[convs[-1] + 1:] if isinstance(modules[n], nn.Linear)] if convs else []
    if not heads:
        return None, torch.zeros(0, dtype=torch.bool)
    conv_name, head_name = order[convs[-1]], heads[0]
    conv, head = modules[conv_name], modules[head_name]
    channel_keep = _weight_mask(masks, conv_name, conv).flatten(1).any(1)
    channels = channel_keep.numel()
    if head.in_features % channels:  # not a flatten of this conv's output: no known coupling
        return None, torch.zeros(0, dtype=torch.bool)
    coupled = (~channel_keep).repeat_interleave(head.in_features // channels)
    columns = int(coupled.sum())
    record = CoupledColumns(
        conv=conv_name, linear=head_name, channels=channels, channels_removed=int((~channel_keep).sum()),
        columns_removed=columns, parameters_removed=columns * head.out_features,
    )
    return record, coupled


def channel_pruning_spares_linear(model: nn.Module, masks: MaskSet, *, example_inputs) -> StructureCheck:
    """MH-6, channel pruning: every Linear weight unmasked beyond the coupling to the last conv.

    Parameters
    ----------
    model : nn.Module
        Read only (one forward pass in eval mode finds the last conv and the
        first Linear after it; the training flag is restored).
    masks : dict
        Channel masks (:func:`compress.prune.structured.channel_masks`).
    example_inputs : Tensor or tuple
        Inputs for the forward pass (a batch of one is enough).

    Returns
    -------
    StructureCheck
        ``coupled`` is None when no Linear follows a conv, or when its
        in-features are not a multiple of the conv's channels (no known
        coupling: then every masked entry of it is a violation).
    """
    if example_inputs is None:
        raise invalid(
            "example_inputs", "channel_pruning_spares_linear", "inputs for one forward pass (tensor, tuple or dict)", None
        )
    validate_masks(model, masks)
    layers = tuple(layer_sparsity(model, masks))
    coupled, coupled_columns = _coupled_columns(model, masks, example_inputs)
    modules = dict(model.named_modules())
    violations = []
    for record in layers:
        if record.kind != "linear" or record.masked == 0:
            continue
        masked = ~_weight_mask(masks, record.name, modules[record.name])
        stray = masked & ~coupled_columns if coupled is not None and record.name == coupled.linear else masked
        if stray.any():
            units = int(masked.all(1).sum())
            violations.append(
                f"linear layer {record.name!r} is masked under channel pruning: {int(stray.sum())} masked weights "
                f"outside the input columns coupled to the last conv's removed channels; "
                f"whole output units removed: {units}"
            )
    return StructureCheck("channel", layers, tuple(violations), coupled)


def pruning_structure(model: nn.Module, masks: MaskSet, *, method: str, example_inputs=None) -> StructureCheck:
    """The MH-6 check for ``method`` ('weight' or 'channel'; 'channel' needs ``example_inputs``)."""
    check_choice("method", "pruning_structure", method, PRUNING_METHODS)
    if method == "weight":
        return weight_pruning_thins_every_layer(model, masks)
    return channel_pruning_spares_linear(model, masks, example_inputs=example_inputs)
