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

__all__ = ["SCOPES", "prunable_weights", "l1_unstructured"]

SCOPES = ("global", "layerwise")


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Weights of every Conv and Linear layer (biases and norms are not pruned, as in Keras/tfmot)."""
    return [
        (name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    ]


def l1_unstructured(model: nn.Module, ratio: float, *, scope: str = "global") -> dict[str, torch.Tensor]:
    """Prune ``ratio`` of the conv/linear weights with the smallest |w|, in place.

    Parameters
    ----------
    ratio : float
        Fraction of weights to remove, in [0, 1). ``global`` removes exactly
        ``round(ratio · N)`` of all N prunable weights; ``layerwise`` removes
        ``round(ratio · n_l)`` in every layer.
    scope : {'global', 'layerwise'}

    Returns
    -------
    dict
        ``{"<layer>.weight": 0/1 mask}`` for every pruned layer.
    """
    check_in_range("ratio", "l1_unstructured", ratio, 0.0, 1.0, closed="left")
    check_choice("scope", "l1_unstructured", scope, SCOPES)
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
