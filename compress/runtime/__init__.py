"""Where and how code runs: devices and threads (devices), CPU numerics modes (numerics), progress
lines (progress).

Public names load lazily (``from compress.runtime import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MODE": "numerics",
    "DEVICES": "devices",
    "MODES": "numerics",
    "MODE_VARIABLE": "numerics",
    "NumericsWarning": "numerics",
    "PORTABLE_SETTINGS": "numerics",
    "Progress": "progress",
    "cap_threads": "devices",
    "cpu_build": "numerics",
    "differences": "numerics",
    "emit": "progress",
    "environment": "numerics",
    "format_seconds": "progress",
    "mode": "numerics",
    "pin_cpu_dispatch": "numerics",
    "resolve_device": "devices",
    "set_sink": "progress",
    "worker_index": "devices",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
