"""Pruning: masks (masks), unstructured L1 (unstructured), structured channels (structured),
per-layer allocation (per_layer), structure checks (structure), pruning while training (hold).

Public names load lazily (``from compress.prune import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "CoupledColumns": "structure",
    "HoldMasks": "hold",
    "LAYER_SCOPES": "per_layer",
    "LayerSparsity": "structure",
    "METHODS": "per_layer",
    "MaskHolder": "masks",
    "MaskSet": "masks",
    "NORMS": "structured",
    "PRUNING_METHODS": "structure",
    "SCOPES": "structured",
    "StructureCheck": "structure",
    "TARGETS": "unstructured",
    "allocatable": "per_layer",
    "allocate": "per_layer",
    "apply_masks": "masks",
    "channel_granularity": "structured",
    "channel_masks": "structured",
    "channel_pruning_spares_linear": "structure",
    "check_layers": "per_layer",
    "effective_parameter_count": "structured",
    "iterative_channel_prune": "structured",
    "l1_unstructured": "unstructured",
    "layer_mask": "per_layer",
    "layer_masks": "per_layer",
    "layer_sparsity": "structure",
    "physically_remove": "structured",
    "prunable_layers": "per_layer",
    "prunable_weights": "unstructured",
    "prune_schedule": "structured",
    "pruning_structure": "structure",
    "remove_zeroed_units": "per_layer",
    "retained_fraction": "structured",
    "rewind_to_init": "structured",
    "sensitivity": "per_layer",
    "sparsity": "masks",
    "validate_masks": "masks",
    "weight_pruning_thins_every_layer": "structure",
    "weight_sparsity": "per_layer",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
