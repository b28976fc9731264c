"""Measurements on arrays: representation similarity (similarity), efficiency breakpoints
(efficiency), functional landscapes (landscape), saliency-map similarity (saliency).

Public names load lazily (``from analysis.measure import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "BREAKPOINT_RULE_FORMS": "efficiency",
    "Breakpoint": "efficiency",
    "BreakpointRule": "efficiency",
    "DEFAULT_BREAKPOINT_RULE": "efficiency",
    "DISTANCES": "similarity",
    "SSIM_SETTINGS": "saliency",
    "default_perplexity": "landscape",
    "disagreement": "similarity",
    "find_breakpoint": "efficiency",
    "functional_distance": "similarity",
    "functional_landscape": "landscape",
    "js_divergence": "similarity",
    "kl_divergence": "similarity",
    "log_pe": "efficiency",
    "normalized_efficiency": "efficiency",
    "parameters_at_accuracy": "efficiency",
    "parse_breakpoint_rule": "efficiency",
    "performance_efficiency": "efficiency",
    "softmax": "similarity",
    "ssim_per_image": "saliency",
    "ssim_settings": "saliency",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
