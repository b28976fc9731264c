"""The ``layer_cka`` artifact kind: linear CKA between every layer of several models on fixed test inputs.

A paper-specific kind (GC's layer-wise CKA), listed in the one kind table
(:data:`compress.build.kinds.KINDS`) like every other: its spec
constructor, builder and label live here. Each model's centered Gram matrices
are computed once (:func:`compress.measure.cka.normalized_grams`) and serve all its
comparisons: corresponding layers for every model pair, all layer pairs for
the first two.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from compress.build.workspace import Kind, Workspace, model_from_payload
from compress.measure.cka import extract_features, normalized_grams
from compress.store.spec import Spec

__all__ = ["LAYER_CKA", "layer_cka_spec"]


def layer_cka_spec(first: Spec, second: Spec, *more: Spec, n_inputs: int, data_seed: int, debiased: bool) -> Spec:
    """Linear CKA of ``first`` vs ``second`` (corresponding layers and all layer pairs) and of every other pair
    among ``first``, ``second`` and ``more`` (corresponding layers), on ``n_inputs`` test inputs drawn with
    ``data_seed``. The payload: ``layers``; ``pd`` (first vs second), ``mp``/``md`` (each of ``more`` vs
    first/second), ``mm`` (pairs of ``more``), ``full`` (first vs second, every layer pair)."""
    return Spec.make("layer_cka", parents=(first, second, *more), n_inputs=n_inputs, data_seed=data_seed,
                     debiased=debiased, version=1)


def _build(ws: Workspace, spec: Spec, parents: list, ctx) -> dict:
    data = ws.dataset(spec)
    device = data.device
    n = min(spec.param("n_inputs"), data.n_test)
    order = torch.randperm(data.n_test, generator=torch.Generator().manual_seed(spec.param("data_seed")))[:n]
    inputs = data.x_test[order.to(device)]
    grams, names = [], None
    for payload in parents:
        feats = extract_features(model_from_payload(payload, device), inputs, "all", device=device)
        names = list(feats)
        grams.append(normalized_grams([feats[k] for k in names], debiased=spec.param("debiased"), device=device))
    gp, gd, gm = grams[0], grams[1], grams[2:]

    def diag(a, b):
        return (a * b).sum(1).cpu()

    def stack(rows):
        return torch.stack(rows) if rows else torch.empty(0, len(names))

    return {
        "layers": names,
        "pd": diag(gp, gd),
        "mp": stack([diag(m, gp) for m in gm]),
        "md": stack([diag(m, gd) for m in gm]),
        "mm": stack([diag(a, b) for a, b in itertools.combinations(gm, 2)]),
        "full": (gp @ gd.T).cpu(),
    }


def _label(spec: Spec, describe: Callable[[Spec], str]) -> str:
    return f"layer CKA of {len(spec.parents)} models ({describe(spec.parents[0])}, …)"


LAYER_CKA = Kind("layer_cka", layer_cka_spec, _build, _label)
