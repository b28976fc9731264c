"""The store's record of build times: what a build's time depends on (:func:`cost_class`), written with every
``built`` line of ``store.log``, and read back (:func:`build_history`) by :mod:`compress.build.estimate`."""
from __future__ import annotations

import json
from pathlib import Path

from compress.store.spec import Spec, model_root

__all__ = ["TRAINING", "build_history", "cost_class", "model_setup", "training_settings"]

#: Kinds that train, and the parameter holding their training settings.
TRAINING = {"train": "train", "distill": "train", "rewind_distill": "train", "channel_prune": "finetune",
            "layer_prune": "finetune", "finetune": "finetune"}


def model_setup(spec: Spec) -> tuple | None:
    """``(arch, dataset, overrides, data_options)`` of the model ``spec`` derives from, or None."""
    root = model_root(spec)
    if root is None:
        return None
    p = dict(root.params)
    return p["arch"], p["dataset"], tuple(p.get("overrides", ())), tuple(p.get("data_options", ()))


def training_settings(spec: Spec) -> dict:
    """The training settings of a kind that trains (:data:`TRAINING`), else empty."""
    return dict(dict(spec.params).get(TRAINING.get(spec.kind, ""), ()) or ())


def cost_class(spec: Spec) -> str:
    """What a build's time depends on: kind, model and data, training length (not seeds)."""
    setup = model_setup(spec)
    t = training_settings(spec)
    parts = [spec.kind]
    if setup is not None:
        arch, dataset, overrides, options = setup
        parts.append(f"{arch}{dict(overrides) or ''}/{dataset}{dict(options) or ''}")
    if t:
        parts.append(f"epochs={t.get('epochs')} batch={t.get('batch_size')}")
    if spec.kind == "layer_cka":
        parts.append(f"models={len(spec.parents)} n={dict(spec.params).get('n_inputs')}")
    return " ".join(parts)


def build_history(log: Path) -> dict[str, list[float]]:
    """``{cost class: [seconds, …]}`` of the builds ``store.log`` records (lines without a class are skipped)."""
    out: dict[str, list[float]] = {}
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and d.get("event") == "built" and isinstance(d.get("class"), str) \
                and isinstance(d.get("seconds"), (int, float)):
            out.setdefault(d["class"], []).append(float(d["seconds"]))
    return out
