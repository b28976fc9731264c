"""compress: models, data, training, pruning, distillation, quantization and the artifact store.

No pytest; from analysis only its validation helpers (analysis/_validation.py: one
message format for both libraries; tests/test_layering.py holds the rule).

Public names are re-exported here lazily (from compress import X imports only
the submodule that defines X), so importing one part does not pull in the rest
(e.g. torch-pruning or matplotlib) and python -m compress.<module> stays clean.
"""
from __future__ import annotations

import importlib

from . import numerics as _numerics

# Before anything imports torch through compress: pin the CPU kernel dispatch so that a
# spec gives the same bytes on any x86-64 CPU (compress/numerics.py says why and how).
_numerics.pin_cpu_dispatch()

_EXPORTS = {
    "AUGMENTS": "training",
    "ArtifactStore": "store",
    "ArtifactWarning": "store",
    "BITS": "quantize",
    "BasicBlock": "models",
    "Batch": "training",
    "Bottleneck": "models",
    "BuildContext": "store",
    "CHANNEL_STATS": "data",
    "Callback": "training",
    "CifarResNet": "models",
    "CifarVGG": "models",
    "DEVICES": "runtime",
    "DISTILLERS": "distill",
    "DatasetNotFoundError": "data",
    "Distill": "callbacks",
    "Distiller": "distill",
    "FakeQuant": "callbacks",
    "HintonKD": "distill",
    "HoldMasks": "callbacks",
    "InMemoryDataset": "data",
    "KDConfig": "distill",
    "KINDS": "recipes",
    "Kind": "recipes",
    "LockTimeout": "store",
    "LeNet5": "models",
    "MWCodeKD": "distill",
    "MaskHolder": "masks",
    "MaskSet": "masks",
    "MobileNetV1": "models",
    "NORMS": "structured",
    "OPTIMIZERS": "training",
    "Progress": "progress",
    "QUANT_SCOPES": "quantize",
    "SCHEDULES": "training",
    "SCHEMES": "quantize",
    "SCOPES": "pruning",
    "STORE_FORMAT_VERSION": "spec",
    "Spec": "spec",
    "TARGETS": "pruning",
    "StoreError": "store",
    "TrainConfig": "training",
    "TrainResult": "training",
    "Workspace": "recipes",
    "account": "accounting",
    "accuracy": "training",
    "apply_masks": "masks",
    "attach_activation_quant": "quantize",
    "calibrate": "quantize",
    "cap_threads": "runtime",
    "channel_granularity": "structured",
    "channel_masks": "structured",
    "check_store_root": "store",
    "check_available": "data",
    "count_nonzero": "accounting",
    "count_parameters": "accounting",
    "cpu_build": "numerics",
    "create_model": "models",
    "distill_spec": "recipes",
    "effective_parameter_count": "structured",
    "emit": "progress",
    "environment": "numerics",
    "eval_spec": "recipes",
    "expected_paths": "data",
    "fake_quant_weight": "quantize",
    "format_seconds": "progress",
    "hinton_kd_loss": "distill",
    "iterative_channel_prune": "structured",
    "l1_unstructured": "pruning",
    "label": "recipes",
    "list_datasets": "data",
    "list_models": "models",
    "load_dataset": "data",
    "make_builders": "recipes",
    "make_distiller": "distill",
    "model_bytes": "accounting",
    "model_from_payload": "recipes",
    "model_info": "models",
    "physically_remove": "structured",
    "pin_cpu_dispatch": "numerics",
    "predict": "training",
    "prunable_weights": "pruning",
    "prune_schedule": "structured",
    "prune_spec": "recipes",
    "quant_layers": "quantize",
    "quantize": "quantize",
    "quantize_spec": "recipes",
    "register_kind": "recipes",
    "register_model": "models",
    "resolve_device": "runtime",
    "retained_fraction": "structured",
    "rewind_to_init": "structured",
    "set_sink": "progress",
    "soft_kl": "distill",
    "sparsity": "masks",
    "storage_bits": "quantize",
    "train": "training",
    "train_spec": "recipes",
    "validate_masks": "masks",
    "worker_index": "runtime",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
