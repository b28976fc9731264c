"""Measurements of a model: CKA (cka), latency (latency), Grad-CAM (gradcam), parameter and byte
accounting (accounting).

Public names load lazily (``from compress.measure import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_LAYER_TYPES": "cka",
    "Int8Unavailable": "latency",
    "LatencyRecord": "latency",
    "LogRatio": "latency",
    "MinibatchCKA": "cka",
    "account": "accounting",
    "center_gram": "cka",
    "cka_matrix": "cka",
    "count_nonzero": "accounting",
    "count_parameters": "accounting",
    "extract_features": "cka",
    "grad_cam": "gradcam",
    "gram_linear": "cka",
    "hardware_description": "latency",
    "int8_inductor": "latency",
    "last_conv_layer": "gradcam",
    "layerwise_cka": "cka",
    "linear_cka": "cka",
    "log_ratio": "latency",
    "measure_latency": "latency",
    "model_bytes": "accounting",
    "normalized_grams": "cka",
    "upsample_and_scale": "gradcam",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
