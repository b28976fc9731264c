"""Pruning while training: :class:`HoldMasks`, the callback of :func:`compress.training.loop.train` that keeps
masked weights at zero (iterative pruning, fine-tuning, rewinding)."""
from __future__ import annotations

from contextlib import ExitStack

from torch import nn

from compress.prune.masks import MaskHolder, MaskSet, apply_masks, validate_masks
from compress.training.loop import Callback

__all__ = ["HoldMasks"]


class HoldMasks(Callback):
    """Hold ``masks`` fixed while training: masked weights stay exactly zero.

    Applies the masks at the start, zeroes masked gradients and re-applies the
    masks after every optimizer step, so neither momentum nor weight decay
    moves a masked weight (:class:`compress.prune.masks.MaskHolder`). A frozen
    parameter (``requires_grad`` False: SimKD's reused teacher head) gets no
    gradient and no optimizer step, so zeroing it at the start holds it.
    """

    def __init__(self, masks: MaskSet):
        self.masks = masks
        self._stack = ExitStack()
        self._holder: MaskHolder | None = None

    def on_train_start(self, model, x, config) -> None:
        validate_masks(model, self.masks)
        apply_masks(model, self.masks)
        # MaskHolder hooks gradients, which a frozen parameter has none of (the hook cannot even be registered).
        trainable = {n: m for n, m in self.masks.items() if _requires_grad(model, n)}
        self._holder = self._stack.enter_context(MaskHolder(model, trainable))

    def after_step(self) -> None:
        self._holder.after_step()

    def on_train_end(self) -> None:
        self._stack.close()
        self._holder = None


def _requires_grad(model: nn.Module, name: str) -> bool:
    """Whether the parameter ``name`` (plain name, also while parametrized) requires gradients."""
    module, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(module), attr).requires_grad
