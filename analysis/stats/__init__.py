"""Statistics: unit tables (units), decision rules (rules), power (power), claim families (family),
evidence records (evidence), two looks (sequential: boundaries and repeated p-values; two_stage: a family over
two looks).

Public names load lazily (``from analysis.stats import X`` imports only the module of X)."""
from __future__ import annotations

from analysis._lazy import lazy_exports

_EXPORTS = {
    "AllOf": "rules",
    "AnyOf": "rules",
    "DESIGN_STATUSES": "evidence",
    "Data": "units",
    "Directional": "rules",
    "Equivalence": "rules",
    "Evidence": "evidence",
    "FORMS": "evidence",
    "FamilySettings": "family",
    "GroupDifference": "rules",
    "GroupsDiffer": "rules",
    "MAX_UNITS": "power",
    "Measurement": "family",
    "NonInferiority": "rules",
    "Outcome": "rules",
    "PowerModel": "power",
    "Look": "two_stage",
    "Rule": "rules",
    "SPENDING": "sequential",
    "SharedModelError": "units",
    "TARGET_POWER": "power",
    "Trend": "rules",
    "TwoStage": "sequential",
    "UNIT_GRID": "power",
    "UnitTable": "units",
    "VERDICTS": "evidence",
    "column_key": "units",
    "decide_family": "family",
    "design_status": "family",
    "first_look": "two_stage",
    "group_sizes": "power",
    "holm": "family",
    "instance_id": "evidence",
    "jsonable": "evidence",
    "power_at_units": "power",
    "second_look": "two_stage",
    "verdict_from": "family",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
