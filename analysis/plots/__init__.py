"""Figures of the report: curves (curves), charts (charts), Grad-CAM panels (cams), on a shared
style (style).

Public names load lazily (``from analysis.plots import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "DPI": "style",
    "KINDS": "style",
    "OTHER": "style",
    "VERDICT_COLOURS": "style",
    "as_vector": "style",
    "check_path": "style",
    "kind_of": "style",
    "natural_key": "style",
    "new_figure": "style",
    "plot_accuracy_deviation": "curves",
    "plot_cam_overlays": "cams",
    "plot_forest": "charts",
    "plot_grouped_bars": "charts",
    "plot_heatmap": "charts",
    "plot_hybrid_tree": "charts",
    "plot_landscape": "curves",
    "plot_layer_sparsity": "charts",
    "plot_pruning_curves": "curves",
    "plot_trend": "curves",
    "save": "style",
    "series_colours": "style",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
