"""Training: the loop and its callback protocol (loop), distillers (distill), SimKD students
(simkd), the distillation callback (callbacks).

Public names load lazily (``from compress.training import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "AUGMENTS": "loop",
    "Batch": "loop",
    "CRDKD": "distill",
    "Callback": "loop",
    "DISTILLERS": "distill",
    "Distill": "callbacks",
    "Distiller": "distill",
    "FEATURE_CACHE_BYTES": "callbacks",
    "FitNetsKD": "distill",
    "HintonKD": "distill",
    "KDConfig": "distill",
    "MWCodeKD": "distill",
    "OPTIMIZERS": "loop",
    "REGRESSORS": "distill",
    "SCHEDULES": "loop",
    "SimKD": "distill",
    "SimKDProjector": "simkd",
    "SimKDStudent": "simkd",
    "TrainConfig": "loop",
    "TrainResult": "loop",
    "accuracy": "loop",
    "build_simkd_student": "simkd",
    "check_bottleneck": "simkd",
    "check_hint_pair": "distill",
    "feature_shape": "simkd",
    "hint_shapes": "distill",
    "hinton_kd_loss": "distill",
    "make_distiller": "distill",
    "predict": "loop",
    "simkd_student": "simkd",
    "soft_kl": "distill",
    "train": "loop",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
