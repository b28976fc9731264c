"""Quantization-aware training: :class:`FakeQuant`, the callback of :func:`compress.training.loop.train` that
fake-quantizes conv/linear weights in the forward pass with straight-through gradients."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from analysis._validation import check_choice, invalid
from compress.quant.schemes import QUANT_SCOPES, fake_quant_weight, quant_layers
from compress.training.loop import Callback

__all__ = ["FakeQuant"]


class _StraightThroughQuant(nn.Module):
    """Parametrization: per-output-channel symmetric fake quantization, identity gradient."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        # The scale is computed from the detached weight and every value lies inside the
        # clamp range, so torch's fake-quantize backward passes the gradient through unchanged.
        return fake_quant_weight(weight, self.bits).to(weight.dtype)


class FakeQuant(Callback):
    """Quantization-aware training: fake-quantize weights in the forward pass (straight-through gradients).

    Every conv/linear weight (``scope="conv+linear"``) or every linear weight
    (``scope="linear"``) is re-parametrized (``torch.nn.utils.parametrize``)
    as :func:`compress.quant.schemes.fake_quant_weight` of a float latent weight:
    per output channel, symmetric, ``bits`` bits. The optimizer updates the
    latent weights; the gradient reaches them unchanged through the rounding.
    At the end the parametrizations are removed and the weights left on the
    quantization grid (the quantized model is what training produced).

    Parameters
    ----------
    bits : int
        In [2, 16].
    scope : {'conv+linear', 'linear'}
    """

    def __init__(self, bits: int, scope: str = "conv+linear"):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
            raise invalid("bits", "FakeQuant", "an integer in [2, 16]", bits)
        check_choice("scope", "FakeQuant", scope, QUANT_SCOPES)
        self.bits, self.scope = bits, scope
        self._layers: list[nn.Module] = []

    def on_train_start(self, model, x, config) -> None:
        self._layers = [m for _, m in quant_layers(model, self.scope)]
        for m in self._layers:
            parametrize.register_parametrization(m, "weight", _StraightThroughQuant(self.bits))

    def on_train_end(self) -> None:
        for m in self._layers:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        self._layers = []
