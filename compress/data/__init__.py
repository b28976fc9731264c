"""Datasets held in memory (datasets) and the colour jitter of a test split (jitter).

Public names load lazily (``from compress.data import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "CHANNEL_STATS": "datasets",
    "DatasetNotFoundError": "datasets",
    "InMemoryDataset": "datasets",
    "JITTER_DEFAULTS": "jitter",
    "check_available": "datasets",
    "check_jitter": "jitter",
    "colour_jitter": "jitter",
    "dataset_options": "datasets",
    "dataset_shape": "datasets",
    "expected_paths": "datasets",
    "list_datasets": "datasets",
    "load_dataset": "datasets",
    "pixel_stats": "datasets",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
