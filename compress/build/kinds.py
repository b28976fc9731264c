"""The one table of artifact kinds: every kind, by name, with its spec constructor, builder and label.

=================  =========================================
``train`` … ``rewind_distill``   :mod:`compress.build.recipes` (models trained, pruned, quantized, evaluated)
``layer_cka``      :mod:`compress.build.layer_cka` (GC's layer-wise CKA)
``sensitivity`` … ``eval_jitter``   :mod:`compress.build.sh_recipes` (the SH paper)
=================  =========================================

The modules define their kinds (:class:`~compress.build.workspace.Kind`
records); this module lists them, so which kinds exist does not depend on
what was imported. :func:`register_kind` adds one of your own.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from analysis._validation import invalid
from compress.build import layer_cka, recipes, sh_recipes
from compress.build.workspace import Builder, Kind, Workspace, single_threaded_on_cpu
from compress.store.spec import Spec

__all__ = ["KINDS", "label", "make_builders", "register_kind"]

#: Every artifact kind, by name.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    recipes.TRAIN, recipes.DISTILL, recipes.PRUNE, recipes.QUANTIZE, recipes.EVAL, recipes.CHANNEL_PRUNE,
    recipes.REWIND_DISTILL,
    layer_cka.LAYER_CKA,
    sh_recipes.SENSITIVITY, sh_recipes.LAYER_PRUNE, sh_recipes.FINETUNE, sh_recipes.GRADCAM, sh_recipes.EVAL_JITTER,
)}


def register_kind(name: str, *, spec: Callable[..., Spec], build: Builder,
                  label: Callable[[Spec, Callable[[Spec], str]], str]) -> Kind:
    """Add a kind of your own to :data:`KINDS` (see :class:`Kind`); :func:`make_builders` will serve it.

    The built-in kinds are listed above, not registered: this is for an extension (a new paper's kind, a test).

    Raises
    ------
    InvalidParameterError
        If ``name`` is empty or already registered, or a part is not callable.
    """
    if not isinstance(name, str) or not name:
        raise invalid("name", "register_kind", "a non-empty str", name)
    if name in KINDS:
        raise invalid("name", "register_kind", f"a kind not registered yet (registered: {', '.join(KINDS)})", name)
    for part, fn in (("spec", spec), ("build", build), ("label", label)):
        if not callable(fn):
            raise invalid(part, "register_kind", "a callable", fn)
    KINDS[name] = kind = Kind(name, spec, build, label)
    return kind


def make_builders(ws: Workspace) -> dict:
    """The lookup table kind → builder for :class:`compress.store.ArtifactStore`, one per kind of :data:`KINDS`.

    The builders share ``ws``'s dataset cache; their progress lines name specs with :func:`label`.
    """
    ws = dataclasses.replace(ws, describe=label)
    return {name: single_threaded_on_cpu(functools.partial(kind.build, ws), ws) for name, kind in KINDS.items()}


def label(spec: Spec) -> str:
    """Short human name of a spec for progress lines, e.g. ``distill resnet18/digits init 0 seed 24 hinton
    teacher_weight=0.5 temperature=3.0`` or ``prune 90%→70%→50% (l1) of rewind-distill 90% of train
    resnet18/digits init 0 seed 0``. A spec of a kind not in the table lists its parameters."""
    kind = KINDS.get(spec.kind)
    return kind.label(spec, label) if kind is not None else _parameters_label(spec)


def _parameters_label(spec: Spec) -> str:
    p = " ".join(f"{k}={v}" for k, v in spec.params if k != "recipe")
    return f"{spec.kind} {p}" + (f" of {label(spec.parents[0])}" if spec.parents else "")
