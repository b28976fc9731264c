"""analysis: similarity, statistics, CKA, plots, report and findings (arrays and tensors in; no compress imports).

Public names are re-exported here lazily (from analysis import X imports only
the submodule that defines X), so importing one part does not pull in the rest
(e.g. torch-pruning or matplotlib) and python -m analysis.<module> stays clean.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "AllOf": "rules",
    "AnyOf": "rules",
    "Baseline": "findings",
    "BaselineError": "findings",
    "Change": "findings",
    "Comparison": "findings",
    "DEFAULT_LAYER_TYPES": "cka",
    "DISTANCES": "similarity",
    "DPI": "plots",
    "Directional": "rules",
    "EXPECTABLE_VERDICTS": "findings",
    "Equivalence": "rules",
    "Evidence": "evidence",
    "FORMAT_VERSION": "findings",
    "FORMS": "evidence",
    "FamilySettings": "family",
    "GroupDifference": "rules",
    "GroupsDiffer": "rules",
    "Measurement": "family",
    "MinibatchCKA": "cka",
    "NonInferiority": "rules",
    "Outcome": "rules",
    "PAPERS": "report",
    "PowerModel": "power",
    "REGRESSION_STATUSES": "report",
    "RUN_KEYS": "report",
    "ReportError": "report",
    "ReportSchemaError": "report",
    "Rule": "rules",
    "SCHEMA_VERSION": "report",
    "SharedModelError": "units",
    "Trend": "rules",
    "UnitTable": "units",
    "VERDICTS": "evidence",
    "VERDICT_COLOURS": "plots",
    "build_report": "report",
    "center_gram": "cka",
    "check_report_dir": "report",
    "check_writable": "findings",
    "cka_matrix": "cka",
    "compare": "findings",
    "compare_reports": "report",
    "decide_family": "family",
    "default_perplexity": "landscape",
    "disagreement": "similarity",
    "extract_features": "cka",
    "forest_rows": "report",
    "format_number": "report",
    "format_p": "report",
    "functional_distance": "similarity",
    "functional_landscape": "landscape",
    "gram_linear": "cka",
    "holm": "family",
    "instance_id": "evidence",
    "item_outcome": "findings",
    "js_divergence": "similarity",
    "jsonable": "evidence",
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
    "plot_landscape": "plots",
    "plot_trend": "plots",
    "publish_report": "report",
    "render_compare_html": "report",
    "render_compare_markdown": "report",
    "render_html": "report",
    "render_markdown": "report",
    "softmax": "similarity",
    "verdict_from": "family",
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
