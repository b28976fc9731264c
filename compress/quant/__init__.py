"""Quantization: simulated post-training schemes and their calibration (schemes), quantization-aware
training (qat).

Public names load lazily (``from compress.quant import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "BITS": "schemes",
    "FakeQuant": "qat",
    "QUANT_SCOPES": "schemes",
    "SCHEMES": "schemes",
    "attach_activation_quant": "schemes",
    "calibrate": "schemes",
    "fake_quant_weight": "schemes",
    "quant_layers": "schemes",
    "quantize": "schemes",
    "storage_bits": "schemes",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
