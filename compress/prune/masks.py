"""Weight masks that stay fixed through training.

A mask set maps parameter names (``model.named_parameters()``) to 0/1 tensors
of the same shape. Holding a mask means masked weights are zero after every
optimizer step, whatever momentum or weight decay would do to them.

Names are the plain ones also while a weight is re-parametrized
(``torch.nn.utils.parametrize``, e.g. by quantization-aware training): the
mask for ``"fc.weight"`` applies to ``fc.parametrizations.weight.original``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from analysis._validation import InvalidParameterError

__all__ = ["MaskSet", "apply_masks", "MaskHolder", "sparsity", "validate_masks"]

MaskSet = Mapping[str, torch.Tensor]

_PARAMETRIZED = re.compile(r"parametrizations\.([^.]+)\.original$")


def _parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """``model``'s parameters by plain name (a parametrized tensor's original under the tensor's own name)."""
    return {_PARAMETRIZED.sub(r"\1", name): p for name, p in model.named_parameters()}


def validate_masks(model: nn.Module, masks: MaskSet) -> None:
    """Raise :class:`InvalidParameterError` if a mask names no parameter or has the wrong shape."""
    params = _parameters(model)
    for name, mask in masks.items():
        if name not in params:
            known = ", ".join(sorted(params)[:20])
            raise InvalidParameterError(
                f"The mask for {name!r} names no parameter of {type(model).__name__}. "
                f"Known parameters include: {known}."
            )
        if tuple(mask.shape) != tuple(params[name].shape):
            raise InvalidParameterError(
                f"The mask for {name!r} must have shape {tuple(params[name].shape)}. "
                f"Got {tuple(mask.shape)} instead."
            )


@torch.no_grad()
def apply_masks(model: nn.Module, masks: MaskSet) -> None:
    """Zero the masked entries of ``model``'s parameters in place."""
    params = _parameters(model)
    for name, mask in masks.items():
        p = params[name]
        p.mul_(mask.to(device=p.device, dtype=p.dtype))


class MaskHolder:
    """Keep ``masks`` applied while a model trains.

    Two mechanisms, because either alone leaks: a gradient hook zeroes the
    gradient of masked entries (so plain SGD never moves them), and
    :meth:`after_step` re-applies the masks after each optimizer step (momentum
    buffers filled before pruning and decoupled weight decay would otherwise
    move masked weights off zero).

    Use as a context manager so the hooks are always removed.
    """

    def __init__(self, model: nn.Module, masks: MaskSet):
        validate_masks(model, masks)
        self.model = model
        params = _parameters(model)
        self._pairs = [
            (params[n], m.to(device=params[n].device, dtype=params[n].dtype)) for n, m in masks.items()
        ]
        self._handles: list = []

    def __enter__(self) -> "MaskHolder":
        with torch.no_grad():
            for p, m in self._pairs:
                p.mul_(m)
        for p, m in self._pairs:
            self._handles.append(p.register_hook(lambda g, m=m: g * m))
        return self

    @torch.no_grad()
    def after_step(self) -> None:
        for p, m in self._pairs:
            p.mul_(m)

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def sparsity(model: nn.Module, names: list[str] | None = None) -> float:
    """Fraction of exactly-zero entries among the named parameters (all if None)."""
    params = _parameters(model)
    names = list(params) if names is None else names
    total = sum(params[n].numel() for n in names)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    return zeros / max(total, 1)
