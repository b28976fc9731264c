"""Hand-built, realistic report inputs: Evidence records, a run block and a regression block.

Records are made through :class:`analysis.stats.evidence.Evidence` itself, so they
carry every key of the schema the report renders. :func:`records` covers each
case the report must show: supported / refuted / inconclusive / error, not
asserted, a compound rule with parts, the three design statuses (decided with
low design power, inconclusive and powered, inconclusive and underpowered with
the units it needs), cannot decide, fragile,
conditional on a shared base, a number claim without a test, two scales in
one claim, figures shared by instances and by claims, paper-table rows.
"""
from __future__ import annotations

import math

from analysis.stats.evidence import Evidence

ENVIRONMENT = {"torch": "2.4.1", "numerics": "pinned", "cpu_capability": "AVX2", "threads": 1, "device": "cpu"}
LOG_MARGIN = math.log(0.8)
POWER_DETAIL = {"method": "simulation from the measured per-unit covariance", "simulations": 400,
                "level": 0.0125, "family_size": 4, "mde_factor": 0.8, "sd": {"log ratio": 0.11}}
DEVIATION_DATA = "data: paper MNIST, CIFAR-10; ours scikit-learn digits, 8x8 (embedded, no download)"
DEVIATION_EPOCHS = "training: paper 25 epochs; ours 15 epochs (CPU budget)"


def _part(name: str, **fields) -> dict:
    part = {"name": name, "form": "non-inferiority", "test": "one-sided t on the per-unit mean log ratio",
            "p_support": 0.004, "p_refute": 0.99, "effect": 0.12, "effect_name": "mean log distance ratio S/I",
            "scale": "log ratio", "ci": [0.05, 0.19], "ci_level": 0.9, "reference": 0.0, "margin": [LOG_MARGIN, None],
            "effect_of_interest": LOG_MARGIN, "statistic": 3.1, "estimate": 0.12, "se": 0.04, "df": 7,
            "n": {"units": 8}, "decided": True, "values": [0.1, 0.15, 0.08, 0.2, 0.11, 0.09, 0.14, 0.13]}
    part.update(fields)
    return part


def evidence(claim_id: str = "MW-1", params: dict | None = None, **fields) -> dict:
    """``Evidence.to_dict()`` of a supported non-inferiority instance on a log-ratio scale, with ``fields`` changed."""
    base = dict(
        sentence="Self-distilled students are as functionally dissimilar to the teacher as independent models.",
        verdict="supported", form="non-inferiority", test="one-sided t on the per-unit mean log ratio",
        unit="base model B_i with its own independent I_i", statistic=3.1, p_value=0.004, p_adjusted=0.012,
        p_refute=0.99, p_refute_adjusted=1.0, decided_by="support", alpha=0.05, effect=0.12,
        effect_name="mean log distance ratio S/I", scale="log ratio", ci=(0.05, 0.19), ci_level=0.9, reference=0.0,
        margin=(LOG_MARGIN, None), effect_of_interest=LOG_MARGIN, n={"units": 8}, power=0.91, mde=-0.17,
        design_status="decided", units_needed=6,
        power_detail=dict(POWER_DETAIL), stability=0.96, deviations=[DEVIATION_DATA, DEVIATION_EPOCHS],
        parts=[_part("S/I")], replicates={"units": [f"B{i}" for i in range(8)], "values": {"S/I": [0.1] * 8}},
        paper_value="landscapes only", ours_value={"student": 0.0043, "independent": 0.0254}, figures=[], notes=[],
        environment=dict(ENVIRONMENT), details={},
    )
    base.update(fields)
    return Evidence(claim_id=claim_id, params=dict(params or {"exp": "digits-lenet5"}), **base).to_dict()


def records(figure: str, shared_figure: str) -> list[dict]:
    """Every case the report shows; ``figure`` is drawn for two MW-1 instances, ``shared_figure`` for MW-1 and GC-2."""
    return [
        evidence("MW-1", {"exp": "digits-lenet5", "α": 0.1}, figures=[figure, shared_figure]),
        evidence("MW-1", {"exp": "digits-lenet5", "α": 0.9}, verdict="refuted", decided_by="refute", effect=-0.31,
                 ci=(-0.42, -0.25), p_value=0.99, p_adjusted=1.0, p_refute=0.0004, p_refute_adjusted=0.0016,
                 figures=[figure], stability=0.55, fragile=True),
        evidence("MW-1", {"exp": "digits-lenet5", "α": 0.5}, verdict="inconclusive", decided_by=None, effect=-0.05,
                 ci=(-0.3, 0.2), p_value=0.21, p_adjusted=0.42, p_refute=0.64, p_refute_adjusted=0.77, power=0.41,
                 mde=-0.4, design_status="inconclusive-underpowered", units_needed=23, underpowered=True,
                 stability=0.7, fragile=True),
        # Decided with a design of low power at the effect of interest: never labelled underpowered.
        evidence("MW-1", {"exp": "digits-lenet5", "α": 0.3}, power=0.12, units_needed=140),
        # Inconclusive although the design had power: the effect lies at the margin.
        evidence("MW-3", {"exp": "digits-lenet5", "bits": 4}, verdict="inconclusive", decided_by=None, form="equivalence",
                 margin=(LOG_MARGIN, -LOG_MARGIN), effect_of_interest=-LOG_MARGIN, effect=0.2, ci=(0.1, 0.3),
                 p_value=0.3, p_adjusted=0.3, p_refute=0.4, p_refute_adjusted=0.4, power=0.93, mde=0.15,
                 design_status="inconclusive-powered", units_needed=5),
        evidence("MW-1", {"exp": "digits-lenet5", "α": 0.7}, verdict="supported", asserted=False,
                 not_asserted_reason="extension beyond the paper's α values", effect=0.08, ci=(0.01, 0.16),
                 p_adjusted=None, p_refute_adjusted=None, p_value=0.03, p_refute=0.97),
        # Two scales in one claim: accuracy deviation in points beside a log ratio.
        evidence("MW-3", {"exp": "digits-lenet5", "bits": 8}, form="equivalence", effect=-0.6, ci=(-1.1, -0.1),
                 scale="points", effect_name="accuracy deviation", margin=(-2.0, 2.0), reference=0.0,
                 effect_of_interest=2.0, mde=1.4, test="TOST on per-unit accuracy deviations"),
        evidence("MW-3", {"exp": "digits-lenet5", "bits": 16}, form="equivalence", margin=(LOG_MARGIN, -LOG_MARGIN),
                 effect_of_interest=-LOG_MARGIN, mde=0.15, conditional_on="teacher B_0",
                 test="TOST on the per-unit mean log ratio"),
        evidence("MW-4", {"exp": "digits-lenet5"}, verdict="inconclusive", decided_by=None, form="directional",
                 n={"units": 1}, power=0.0, mde=None, cannot_decide=True, underpowered=True,
                 design_status="inconclusive-underpowered", units_needed=None, effect=0.02, ci=None, ci_level=None,
                 p_value=1.0, p_adjusted=1.0, p_refute=1.0, p_refute_adjusted=1.0, stability=None,
                 power_detail={**POWER_DETAIL, "mde": "none: one unit cannot reach α"}),
        Evidence.from_error("MW-9", {"exp": "digits-mobilenet"}, "training diverged: loss is NaN after epoch 3",
                            sentence="Pruned MobileNets collapse.").to_dict(),
        # A compound rule (MW-3-like): two parts, the second decides.
        evidence("GC-2", {"exp": "digits-resnet18"}, form="universal", test="all of: prune≥KD (t); KD≥prune (t)",
                 unit="seed", effect=1.3, ci=(0.4, 2.2), scale="points", effect_name="accuracy difference",
                 margin=None, reference=0.0, effect_of_interest=1.0, mde=1.2, figures=[shared_figure],
                 deviations=["setup: paper ResNet-18 on CIFAR-10; ours ResNet-18 at 1/8 width on digits"],
                 parts=[_part("pruned then distilled", p_support=0.001, p_refute=0.999, effect=2.0, ci=[1.0, 3.0],
                              scale="points", margin=None, effect_of_interest=1.0, decided=False),
                        _part("distilled then pruned", p_support=0.008, p_refute=0.99, effect=1.3, ci=[0.4, 2.2],
                              scale="points", margin=None, effect_of_interest=1.0, decided=True)],
                 details={"table_rows": [
                     {"table": "GC Table 2: accuracy (%)", "row": "digits-resnet18", "column": "pruned",
                      "ours": 91.234, "paper": 93.1, "format": ".1f", "note": "paper: CIFAR-10"},
                     {"table": "GC Table 2: accuracy (%)", "row": "digits-resnet18", "column": "distilled",
                      "ours": 92.5, "paper": None, "format": ".1f"}]}),
        # A number claim: no test, no p, no power.
        evidence("GC-5", {"exp": "digits-resnet18"}, form="number", test="within ±1 point of the paper",
                 statistic=None, p_value=None, p_adjusted=None, p_refute=None, p_refute_adjusted=None,
                 decided_by=None, effect=None, effect_name="", scale="", ci=None, ci_level=None, reference=None,
                 margin=None, unit="model", n={"units": 1},
                 effect_of_interest=None, power=None, mde=None, power_detail={}, stability=None, parts=[],
                 paper_value=0.7, ours_value=0.71, asserted=False, not_asserted_reason="the profile is not the "
                 "paper's setup", notes=["Training health: all models trained."]),
    ]


def run(**changes) -> dict:
    """A run block with every key the glue gives, a baseline from another environment and two deviations."""
    block = {
        "profile": "ci", "profile_path": "claims/profiles/ci.toml", "profile_hash": "0123abcd4567ef89",
        "description": "the embedded dataset on CPU; minutes on two cores", "alpha": 0.05, "device": "cpu",
        "wall_time_s": 81.5, "artifacts": {"built": 4, "loaded": 17},
        "environment": {**ENVIRONMENT, "numpy": "2.1.0", "matplotlib": "3.9.2"},
        "baseline": {"path": "claims/findings/ci.json", "recorded": "2026-11-01T12:00:00+00:00",
                     "environment": {**ENVIRONMENT, "torch": "2.3.0", "cpu_capability": "AVX512", "numpy": "2.1.0"},
                     "differences": ["torch 2.3.0 → 2.4.1", "cpu_capability AVX512 → AVX2"]},
        "deviations": [
            {"claims": "MW-*", "setting": "data", "paper": "MNIST, CIFAR-10", "ours": "scikit-learn digits, 8x8",
             "why": "embedded, no download"},
            {"claims": "MW-3, MW-4", "setting": "quantization", "paper": "TFLite float16", "ours": "simulated",
             "why": "no TFLite here"}],
        "seeds": {"mw.base_seeds": [0, 1, 2, 3], "gc.seeds": [7, 8]},
        "stability_resamples": 200, "power_simulations": 400,
        "threads_per_worker": 1,
    }
    block.update(changes)
    return block


def regression() -> dict:
    """A regression block: a robust change and a shift (fail), a fragile flip (reported), one removed."""
    return {
        "summary": "5 supported, 3 known not supported, 1 changed, 1 shifted, 1 fragile flip, 1 removed",
        "instances": {
            "MW-1[digits-lenet5,α=0.1]": {"baseline_verdict": "supported", "status": "unchanged", "failed": False,
                                         "shift_p": 0.4, "shift_p_adjusted": 0.8, "line": "unchanged"},
            "MW-1[digits-lenet5,α=0.9]": {"baseline_verdict": "supported", "status": "changed", "failed": True,
                                         "shift_p": 0.001, "shift_p_adjusted": 0.004,
                                         "line": "robust change supported → refuted"},
            "MW-1[digits-lenet5,α=0.5]": {"baseline_verdict": "supported", "status": "fragile-flip", "failed": False,
                                         "shift_p": 0.3, "shift_p_adjusted": 0.9,
                                         "line": "fragile flip supported → inconclusive, reported only"},
            "GC-2[digits-resnet18]": {"baseline_verdict": "supported", "status": "shifted", "failed": True,
                                      "shift_p": 0.002, "shift_p_adjusted": 0.006,
                                      "line": "GC-2[digits-resnet18]: effect shifted 1.9 → 1.3"},
            "MW-2[digits-lenet5]": {"baseline_verdict": "supported", "status": "removed", "failed": False,
                                    "shift_p": None, "shift_p_adjusted": None,
                                    "line": "MW-2[digits-lenet5]: removed (supported → —)"},
        },
        "removed": ["MW-2[digits-lenet5]"],
    }
