"""analysis: similarity, statistics, CKA, plots, report and findings (arrays and tensors in; no compress imports).

Public names are re-exported here lazily (from analysis import X imports only
the submodule that defines X), so importing one part does not pull in the rest
(e.g. torch-pruning or matplotlib) and python -m analysis.<module> stays clean.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Baseline": "findings",
    "BaselineError": "findings",
    "Change": "findings",
    "Comparison": "findings",
    "DEFAULT_LAYER_TYPES": "cka",
    "DESIGN_KINDS": "stats",
    "DISTANCES": "similarity",
    "DPI": "plots",
    "DesignCheck": "stats",
    "EXPECTABLE_VERDICTS": "findings",
    "Evidence": "stats",
    "FORMAT_VERSION": "findings",
    "MinibatchCKA": "cka",
    "PAPERS": "report",
    "REGRESSION_STATUSES": "report",
    "RUN_KEYS": "report",
    "ReportError": "report",
    "ReportSchemaError": "report",
    "SCHEMA_VERSION": "report",
    "SUMMARY_KEYS": "findings",
    "TestResult": "stats",
    "VERDICTS": "findings",
    "VERDICT_COLOURS": "plots",
    "adjust_family": "stats",
    "all_of": "compound",
    "bootstrap_ci": "stats",
    "build_report": "report",
    "center_gram": "cka",
    "check_report_dir": "report",
    "cka_matrix": "cka",
    "compare": "findings",
    "compare_reports": "report",
    "default_perplexity": "landscape",
    "design_check": "stats",
    "difference_test": "stats",
    "directional_test": "stats",
    "disagreement": "similarity",
    "equivalence_test": "stats",
    "expected_outcome": "findings",
    "extract_features": "cka",
    "forest_rows": "report",
    "format_number": "report",
    "format_p": "report",
    "functional_distance": "similarity",
    "functional_landscape": "landscape",
    "gram_linear": "cka",
    "holm": "stats",
    "js_divergence": "similarity",
    "kl_divergence": "similarity",
    "layerwise_cka": "cka",
    "linear_cka": "cka",
    "load_baseline": "findings",
    "load_report": "report",
    "main": "report",
    "new_staging_dir": "report",
    "paper_of": "report",
    "pivot_tables": "report",
    "plot_accuracy_deviation": "plots",
    "plot_forest": "plots",
    "plot_heatmap": "plots",
    "plot_hybrid_tree": "plots",
    "plot_landscape": "plots",
    "plot_trend": "plots",
    "publish_report": "report",
    "render_compare_html": "report",
    "render_compare_markdown": "report",
    "render_html": "report",
    "render_markdown": "report",
    "softmax": "similarity",
    "trend_test": "stats",
    "verdict_from": "stats",
    "write_baseline": "findings",
    "write_compare": "report",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
