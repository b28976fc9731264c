"""Fault injection for the end-to-end test of the findings gate (``pytest claims -p fault_broken_teacher``).

Every MW knowledge-distillation student learns from an *untrained* copy of
its teacher (the base's architecture and initial weights, zero epochs): a
deliberately broken experiment. The gate must fail on it, whether or not a
verdict happens to flip (CLAIMS.md, Robustness).
"""
from __future__ import annotations

import dataclasses

import compress.build.designs as designs
from compress.training.loop import TrainConfig

_real_distill_spec = designs.distill_spec


def _untrained(teacher):
    p = dict(teacher.params)
    config = dataclasses.replace(TrainConfig(**dict(p["train"])), epochs=0)
    return designs.train_spec(p["arch"], p["dataset"], init_seed=p["init_seed"], seed=p["seed"], train=config,
                         data_seed=p["data_seed"], overrides=p["overrides"], data_options=p["data_options"])


def _broken_distill_spec(teacher, **kwargs):
    return _real_distill_spec(_untrained(teacher), **kwargs)


designs.distill_spec = _broken_distill_spec
