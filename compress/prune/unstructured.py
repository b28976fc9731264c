"""Unstructured magnitude (L1) pruning: global or layer-wise, exact sparsity.

Vocabulary. Unstructured pruning is asked for by ``sparsity``: the fraction
of the counted entries *removed* (set to zero), the way the pruning
literature and the MW paper ("pruning 10 %…90 %") state it. Channel pruning
(:mod:`compress.prune.structured`) keeps ``retained_fraction`` on purpose: it is a
different quantity — the fraction of the model's *effective* parameters that
survive the coupled removal of channels (the parameter count of the
physically smaller network), the compression level of the GC thesis — and
one name per quantity keeps the two from being compared as if they were the
same number (and keeps 1 − x float noise out of spec keys). Every function
says what it counts.

The ``weights`` masks come from :mod:`torch.nn.utils.prune`
(``L1Unstructured`` picks exactly ``round(sparsity · n)`` weights with
``topk``); we read them out and remove the re-parametrisation so the model
keeps plain ``weight`` tensors and its ``state_dict`` stays loadable into a
fresh model. Masks are returned so later training can hold them fixed
(:class:`compress.prune.hold.HoldMasks`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from analysis._validation import check_choice, check_in_range

__all__ = ["SCOPES", "TARGETS", "prunable_weights", "l1_unstructured"]

SCOPES = ("global", "layerwise")
#: What unstructured pruning counts and may zero: conv/linear weights (the MW paper's text; Keras/tfmot),
#: or every array of the model (its published code prunes ``model.get_weights()``).
TARGETS = ("weights", "all_arrays")


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Weights of every Conv and Linear layer (biases and norms are not pruned, as in Keras/tfmot)."""
    return [
        (name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]


def l1_unstructured(
    model: nn.Module, sparsity: float, *, scope: str = "global", targets: str = "weights"
) -> dict[str, torch.Tensor]:
    """Zero the fraction ``sparsity`` of the targeted entries with the smallest magnitude, in place.

    Parameters
    ----------
    sparsity : float
        Fraction of the counted entries removed, in [0, 1). ``global`` zeroes
        exactly ``round(sparsity · N)`` of all N counted entries (one
        threshold); ``layerwise`` zeroes ``round(sparsity · n)`` of each
        layer's (``all_arrays``: each array's) n entries.
    scope : {'global', 'layerwise'}
    targets : {'weights', 'all_arrays'}
        What is counted and may be zeroed. ``weights``: the weights of every
        conv/linear layer (:func:`prunable_weights`). ``all_arrays`` (the MW
        paper's code, Keras ``model.get_weights()``): every floating-point
        parameter *and buffer* — conv/linear weights and biases, BatchNorm
        weight and bias, BatchNorm ``running_mean`` and ``running_var``. A
        zeroed running variance makes BatchNorm divide by √eps, as it does in
        the paper's code (a likely cause of its MobileNet collapse). Ties at
        the threshold are broken by position, so the count is exact.

    Returns
    -------
    dict
        0/1 masks by parameter name: ``{"<layer>.weight": mask}`` for every
        conv/linear layer (``weights``), or one per parameter (``all_arrays``;
        zeroed buffers are simply zero, they are not trained).
    """
    check_in_range("sparsity", "l1_unstructured", sparsity, 0.0, 1.0, closed="left")
    check_choice("scope", "l1_unstructured", scope, SCOPES)
    check_choice("targets", "l1_unstructured", targets, TARGETS)
    if targets == "all_arrays":
        return _prune_arrays(model, sparsity, scope)
    layers = prunable_weights(model)
    if sparsity == 0.0:
        return {f"{n}.weight": torch.ones_like(m.weight) for n, m in layers}
    if scope == "global":
        torch_prune.global_unstructured(
            [(m, "weight") for _, m in layers], pruning_method=torch_prune.L1Unstructured, amount=float(sparsity)
        )
    else:
        for _, m in layers:
            torch_prune.l1_unstructured(m, "weight", amount=float(sparsity))
    masks = {}
    for name, m in layers:
        masks[f"{name}.weight"] = m.weight_mask.detach().clone()
        torch_prune.remove(m, "weight")
    return masks


def _smallest(values: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool keep-mask of ``values`` (flat) without its ``round(sparsity · n)`` smallest |entries| (stable order)."""
    keep = torch.ones(values.numel(), dtype=torch.bool)
    k = round(sparsity * values.numel())
    if k:
        keep[torch.argsort(values.abs(), stable=True)[:k]] = False
    return keep


@torch.no_grad()
def _prune_arrays(model: nn.Module, sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    """Every floating parameter and buffer pruned by magnitude (``targets="all_arrays"``)."""
    params = dict(model.named_parameters())
    arrays = list(params.items()) + [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    flat = [t.detach().flatten().float().cpu() for _, t in arrays]
    if scope == "global":
        keeps = torch.split(_smallest(torch.cat(flat), sparsity), [f.numel() for f in flat])
    else:
        keeps = [_smallest(f, sparsity) for f in flat]
    masks = {}
    for (name, t), keep in zip(arrays, keeps):
        mask = keep.view(t.shape).to(device=t.device, dtype=t.dtype)
        t.mul_(mask)
        if name in params:
            masks[name] = mask
    return masks
