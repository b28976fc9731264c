"""Unstructured magnitude (L1) pruning: global or layer-wise, exact sparsity.

The masks come from :mod:`torch.nn.utils.prune` (``L1Unstructured`` picks
exactly ``round(amount · n)`` weights with ``topk``); we read them out and
remove the re-parametrisation so the model keeps plain ``weight`` tensors and
its ``state_dict`` stays loadable into a fresh model. Masks are returned so
later training can hold them fixed (:class:`compress.masks.MaskHolder`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from ._validation import check_choice, check_in_range

__all__ = ["SCOPES", "TARGETS", "prunable_weights", "l1_unstructured"]

SCOPES = ("global", "layerwise")
#: What unstructured pruning may zero: conv/linear weights (the MW paper's text, Keras/tfmot), or every
#: array of the model (its published code prunes ``model.get_weights()``: biases and BatchNorm
#: γ, β, moving mean and variance too).
TARGETS = ("weights", "all_arrays")


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Weights of every Conv and Linear layer (biases and norms are not pruned, as in Keras/tfmot)."""
    return [
        (name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]


def l1_unstructured(model: nn.Module, ratio: float, *, scope: str = "global", targets: str = "weights") -> dict[str, torch.Tensor]:
    """Prune ``ratio`` of the conv/linear weights (or of every array) with the smallest |w|, in place.

    Parameters
    ----------
    ratio : float
        Fraction of weights to remove, in [0, 1). ``global`` removes exactly
        ``round(ratio · N)`` of all N prunable weights; ``layerwise`` removes
        ``round(ratio · n_l)`` in every layer.
    scope : {'global', 'layerwise'}
    targets : {'weights', 'all_arrays'}
        ``all_arrays`` (global only) zeroes exactly ``round(ratio · N)`` of the N
        entries of every floating parameter and buffer — BatchNorm running
        statistics included (a zeroed running variance makes BatchNorm divide
        by √eps, as in the paper's code).

    Returns
    -------
    dict
        ``{"<layer>.weight": 0/1 mask}`` for every pruned layer (``all_arrays``:
        one mask per parameter).
    """
    check_in_range("ratio", "l1_unstructured", ratio, 0.0, 1.0, closed="left")
    check_choice("scope", "l1_unstructured", scope, SCOPES)
    check_choice("targets", "l1_unstructured", targets, TARGETS)
    if targets == "all_arrays":
        if scope != "global":
            from ._validation import invalid

            raise invalid("scope", "l1_unstructured", "'global' with targets='all_arrays' (the paper code's pruning)", scope)
        return _prune_all_arrays(model, ratio)
    layers = prunable_weights(model)
    if ratio == 0.0:
        return {f"{n}.weight": torch.ones_like(m.weight) for n, m in layers}
    if scope == "global":
        torch_prune.global_unstructured(
            [(m, "weight") for _, m in layers], pruning_method=torch_prune.L1Unstructured, amount=float(ratio)
        )
    else:
        for _, m in layers:
            torch_prune.l1_unstructured(m, "weight", amount=float(ratio))
    masks = {}
    for name, m in layers:
        masks[f"{name}.weight"] = m.weight_mask.detach().clone()
        torch_prune.remove(m, "weight")
    return masks


@torch.no_grad()
def _prune_all_arrays(model: nn.Module, ratio: float) -> dict[str, torch.Tensor]:
    """Zero the globally smallest ``round(ratio · N)`` |values| over every floating parameter and buffer.

    Ties at the threshold are broken by position (a stable sort), so exactly
    that many entries are zeroed.
    """
    arrays = [(n, t) for n, t in model.named_parameters()] + [
        (n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    flat = torch.cat([t.detach().abs().flatten().float().cpu() for _, t in arrays])
    k = int(round(ratio * flat.numel()))
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if k:
        keep[torch.argsort(flat, stable=True)[:k]] = False
    masks, start = {}, 0
    params = dict(model.named_parameters())
    for name, t in arrays:
        m = keep[start:start + t.numel()].view_as(t).to(t.device)
        start += t.numel()
        t.mul_(m.to(t.dtype))
        if name in params:
            masks[name] = m.to(t.dtype)
    return masks
