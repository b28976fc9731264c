"""The artifact store: specs and their keys (spec), the store (artifacts), its on-disk files (files),
the build-time record it keeps (history).

Public names load lazily (``from compress.store import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "ArtifactStore": "artifacts",
    "ArtifactWarning": "artifacts",
    "BuildContext": "artifacts",
    "LockTimeout": "artifacts",
    "STORE_FORMAT_VERSION": "artifacts",
    "Spec": "artifacts",
    "StoreError": "artifacts",
    "TRAINING": "history",
    "build_history": "history",
    "check_store_root": "artifacts",
    "cost_class": "history",
    "model_setup": "history",
    "training_settings": "history",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
