"""Structured (channel / neuron) magnitude pruning held as masks on the dense architecture.

Setup of Garcia Caño (2025, GC claims): ResNet-18, structured L-norm pruning,
iterative with fine-tuning, pruned weights frozen, compression level = fraction
of parameters *retained*; distilled models reuse the pruned architecture with
the surviving weights rewound to the teacher's initialisation.

A pruned channel is removed together with every parameter coupled to it, as
found by Torch-Pruning's :class:`~torch_pruning.DependencyGraph`: the conv's
output filter (and bias), the following BatchNorm's weight and bias, the next
layer's input slice, and, across a residual add, the same channel of every
other layer feeding that add. The masks therefore describe a smaller network
exactly: :func:`physically_remove` builds it, and its outputs equal the masked
model's (a masked channel's BN has weight = bias = 0, so it outputs 0, and its
consumers' input slices are masked as well).

Importance of a channel = Torch-Pruning's group magnitude
(``GroupMagnitudeImportance(p, group_reduction="mean", normalizer=None)``):
the mean, over the coupled layers of the group, of ``sum |w|^p`` over that
channel's slice (conv/linear rows or columns, BN weight). ``norm="l1"`` is
p = 1, ``norm="l2"`` is p = 2 (squared L2; same ranking within a layer).

One module though long: coupled-channel discovery, selection and the public
functions all work on the private ``_Structure``; a split would make it public.
"""
from __future__ import annotations

import collections
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from analysis._validation import InvalidParameterError, check_choice, check_in_range, invalid

from compress.prune.masks import MaskSet, apply_masks, validate_masks

__all__ = [
    "NORMS",
    "SCOPES",
    "channel_masks",
    "channel_granularity",
    "effective_parameter_count",
    "retained_fraction",
    "physically_remove",
    "prune_schedule",
    "iterative_channel_prune",
    "rewind_to_init",
]

NORMS = {"l1": 1, "l2": 2}
SCOPES = ("global", "layerwise")

_CONV = nn.modules.conv._ConvNd
_BN = nn.modules.batchnorm._BatchNorm


# --------------------------------------------------------------------------- structure


@dataclass(eq=False)
class _Slice:
    """Entries ``layer_idxs`` along ``dim`` of parameter ``param`` belong to channels ``root_idxs``."""

    param: str
    dim: int
    layer_idxs: torch.Tensor
    root_idxs: torch.Tensor


@dataclass(eq=False)
class _Group:
    root: str  # module whose output channels define the group
    module: nn.Module
    n_channels: int
    importance: torch.Tensor  # raw group magnitude, one per channel


@dataclass(eq=False)
class _Structure:
    """Coupled channel groups of one model and the parameter slices each channel owns."""

    groups: list[_Group]
    # param name -> dim -> [(group index, slice)]
    slices: dict[str, dict[int, list[tuple[int, _Slice]]]]
    shapes: dict[str, tuple[int, ...]]
    dense_count: int
    untouched_count: int  # parameters outside every group
    graph: tp.DependencyGraph = field(repr=False)

    def dim_keeps(self, keeps: Sequence[torch.Tensor]) -> dict[str, dict[int, torch.Tensor]]:
        """Per parameter and dim, the bool vector of surviving indices given per-group keeps."""
        out: dict[str, dict[int, torch.Tensor]] = {}
        for name, dims in self.slices.items():
            out[name] = {}
            for dim, items in dims.items():
                v = torch.ones(self.shapes[name][dim], dtype=torch.bool)
                for g, s in items:
                    v[s.layer_idxs] &= keeps[g][s.root_idxs]
                out[name][dim] = v
        return out

    def count(self, keeps: Sequence[torch.Tensor]) -> int:
        """Parameters left when each group keeps the channels marked True in ``keeps``."""
        total = self.untouched_count
        for name, dims in self.dim_keeps(keeps).items():
            n = 1
            for d, size in enumerate(self.shapes[name]):
                n *= int(dims[d].sum()) if d in dims else size
            total += n
        return total

    def masks(self, keeps: Sequence[torch.Tensor], params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outer-product masks: an entry survives iff every coupled index along every dim survives."""
        out = {}
        for name, dims in self.dim_keeps(keeps).items():
            shape = self.shapes[name]
            m = torch.ones(shape, dtype=torch.bool)
            for d, v in dims.items():
                view = [1] * len(shape)
                view[d] = shape[d]
                m = m & v.view(view)
            p = params[name]
            out[name] = m.to(device=p.device, dtype=p.dtype)
        return out


def _classifier_name(model: nn.Module, example_inputs) -> str | None:
    """Name of the last conv/linear layer executed: the classifier, whose outputs are never pruned."""
    order: list[str] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, _o, n=n: order.append(n))
        for n, m in model.named_modules()
        if isinstance(m, (_CONV, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            _forward(model, example_inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return order[-1] if order else None


def _forward(model: nn.Module, example_inputs):
    if isinstance(example_inputs, (tuple, list)):
        return model(*example_inputs)
    if isinstance(example_inputs, dict):
        return model(**example_inputs)
    return model(example_inputs)


def _layer_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, (_CONV, nn.Linear))]


def _check_ignore(model: nn.Module, ignore: Iterable[str] | None, owner: str) -> list[str]:
    if ignore is None:
        return []
    if isinstance(ignore, str):
        ignore = (ignore,)
    valid = _layer_names(model)
    names = list(ignore)
    for name in names:
        if name not in valid:
            raise invalid(
                "ignore", owner, f"names of conv/linear layers of the model (valid: {', '.join(valid)})", name
            )
    return names


def _slices_of(dep, idxs, root_idxs, name: str, module: nn.Module, owner: str) -> list[_Slice]:
    """Parameter slices touched by one dependency of a group."""
    fn = dep.handler
    li = torch.as_tensor(list(idxs), dtype=torch.long)
    ri = torch.as_tensor(list(root_idxs), dtype=torch.long)
    out_fn = fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
    in_fn = fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels)
    res: list[_Slice] = []
    if isinstance(module, _CONV):
        transposed = bool(module.transposed)
        depthwise = module.groups == module.in_channels == module.out_channels and module.groups > 1
        if depthwise or fn == tp.prune_depthwise_conv_out_channels:
            res.append(_Slice(f"{name}.weight", 0, li, ri))
            if module.bias is not None:
                res.append(_Slice(f"{name}.bias", 0, li, ri))
        elif module.groups != 1:
            raise invalid("model", owner, "free of grouped (non-depthwise) convolutions", name)
        elif out_fn:
            res.append(_Slice(f"{name}.weight", 1 if transposed else 0, li, ri))
            if module.bias is not None:
                res.append(_Slice(f"{name}.bias", 0, li, ri))
        elif in_fn:
            res.append(_Slice(f"{name}.weight", 0 if transposed else 1, li, ri))
    elif isinstance(module, nn.Linear):
        if out_fn:
            res.append(_Slice(f"{name}.weight", 0, li, ri))
            if module.bias is not None:
                res.append(_Slice(f"{name}.bias", 0, li, ri))
        elif in_fn:
            res.append(_Slice(f"{name}.weight", 1, li, ri))
    elif isinstance(module, _BN):
        if module.affine:
            res.append(_Slice(f"{name}.weight", 0, li, ri))
            res.append(_Slice(f"{name}.bias", 0, li, ri))
    elif isinstance(module, nn.LayerNorm):
        if module.elementwise_affine:
            res.append(_Slice(f"{name}.weight", module.weight.dim() - 1, li, ri))
            if module.bias is not None:
                res.append(_Slice(f"{name}.bias", module.bias.dim() - 1, li, ri))
    elif isinstance(module, nn.Module) and any(True for _ in module.parameters(recurse=False)):
        raise invalid(
            "model", owner, "built from Conv/Linear/BatchNorm/LayerNorm layers where channels couple",
            f"{type(module).__name__} at {name!r}",
        )
    return res


def _trace(model: nn.Module, example_inputs, ignored: Sequence[str]) -> tuple[tp.DependencyGraph, list]:
    """Torch-Pruning's dependency graph of ``model`` and its channel groups (``ignored`` layers left out)."""
    modules = dict(model.named_modules())
    was_training = model.training
    try:
        # eval: tracing runs a forward pass, which would otherwise update BN running stats
        model.eval()
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
        return graph, list(graph.get_all_groups(ignored_layers=[modules[n] for n in ignored]))
    finally:
        model.train(was_training)


# Torch-Pruning's ``get_all_groups`` takes ~10 s on a DenseNet-201 (every concat couples its inputs), and an
# iterative schedule traces the same architecture once per level and per seed. The groups depend on the
# architecture only, the importances on the weights: so one traced private copy per architecture is kept, and
# the live weights are loaded into it before its importances are read (the same numbers as a fresh trace;
# tests/test_structured.py compares the two). ``physically_remove`` prunes the graph it traces, so it never
# uses the cache. Least recently used architectures go first.
_TEMPLATES: collections.OrderedDict[tuple, tuple[nn.Module, tp.DependencyGraph, list]] = collections.OrderedDict()
_TEMPLATES_KEPT = 4


def _architecture_key(model: nn.Module, example_inputs, ignored: Sequence[str]) -> tuple | None:
    if not isinstance(example_inputs, torch.Tensor):
        return None  # tuples and dicts of inputs: traced afresh every time
    state = tuple((n, tuple(t.shape), t.dtype, t.device.type) for n, t in model.state_dict().items())
    cls = type(model)
    return (cls.__module__, cls.__qualname__, repr(model), state, tuple(example_inputs.shape),
            example_inputs.dtype, tuple(ignored))


def _traced_template(
    model: nn.Module, example_inputs, ignored: Sequence[str]
) -> tuple[nn.Module, tp.DependencyGraph, list]:
    key = _architecture_key(model, example_inputs, ignored)
    if key is None:
        return (model, *_trace(model, example_inputs, ignored))
    if key not in _TEMPLATES:
        template = copy.deepcopy(model)
        _TEMPLATES[key] = (template, *_trace(template, example_inputs, ignored))
        while len(_TEMPLATES) > _TEMPLATES_KEPT:
            _TEMPLATES.popitem(last=False)
    _TEMPLATES.move_to_end(key)
    template, graph, raw_groups = _TEMPLATES[key]
    with torch.no_grad():
        template.load_state_dict(model.state_dict())
    return template, graph, raw_groups


def _structure(
    model: nn.Module,
    example_inputs,
    *,
    p: int = 1,
    ignore: Sequence[str] = (),
    owner: str = "channel_masks",
    cached: bool = True,
) -> _Structure:
    """Trace ``model`` with Torch-Pruning and collect its channel groups (classifier outputs excluded).

    ``cached``: read the groups off this architecture's traced template (see ``_TEMPLATES``); the
    structure's modules and graph are then the template's, not ``model``'s.
    """
    ignored = list(ignore)
    classifier = _classifier_name(model, example_inputs)
    if classifier is not None and classifier not in ignored:
        ignored.append(classifier)
    if cached:
        model, graph, raw_groups = _traced_template(model, example_inputs, ignored)
    else:
        graph, raw_groups = _trace(model, example_inputs, ignored)
    names = {m: n for n, m in model.named_modules()}
    importance_cls = getattr(tp.importance, "GroupMagnitudeImportance", None) or tp.importance.MagnitudeImportance
    importance = importance_cls(p=p, group_reduction="mean", normalizer=None)
    params = dict(model.named_parameters())
    groups: list[_Group] = []
    slices: dict[str, dict[int, list[tuple[int, _Slice]]]] = {}
    for raw in raw_groups:
        root_module = raw[0].dep.target.module
        n_channels = len(raw[0].idxs)
        gi = len(groups)
        imp = importance(raw)
        if imp is None:  # a group without parameterised layers
            continue
        groups.append(_Group(names[root_module], root_module, n_channels, imp.detach().float().cpu()))
        for item in raw:
            target = item.dep.target.module
            if isinstance(target, nn.Parameter):
                raise invalid("model", owner, "free of bare nn.Parameter tensors in channel groups", "one")
            if target not in names:  # parameter-free ops (add, relu, flatten, ...)
                continue
            for s in _slices_of(item.dep, item.idxs, item.root_idxs, names[target], target, owner):
                slices.setdefault(s.param, {}).setdefault(s.dim, []).append((gi, s))
    shapes = {n: tuple(params[n].shape) for n in slices}
    dense = sum(p_.numel() for p_ in params.values())
    untouched = sum(p_.numel() for n, p_ in params.items() if n not in slices)
    return _Structure(groups, slices, shapes, dense, untouched, graph)


# --------------------------------------------------------------------------- selection


def _allowed(structure: _Structure, within: MaskSet | None) -> list[torch.Tensor]:
    """Channels not already removed by ``within`` (a channel is removed iff its root filter is masked)."""
    allowed = []
    for gi, g in enumerate(structure.groups):
        a = torch.ones(g.n_channels, dtype=torch.bool)
        root = _root_slice(structure, gi)
        if within is not None and root.param in within:
            mask = within[root.param].detach().cpu()
            rows = mask.movedim(root.dim, 0).reshape(mask.shape[root.dim], -1)
            a = torch.zeros(g.n_channels, dtype=torch.bool)
            a[root.root_idxs] = rows[root.layer_idxs].ne(0).any(dim=1)
        allowed.append(a)
    return allowed


def _root_slice(structure: _Structure, gi: int) -> _Slice:
    """The slice of the root layer's own weight along its output dim."""
    name = f"{structure.groups[gi].root}.weight"
    for _dim, items in structure.slices.get(name, {}).items():
        for g, s in items:
            if g == gi:
                return s
    raise InvalidParameterError(
        f"The channel group rooted at {structure.groups[gi].root!r} owns no slice of its weight."
    )


def _closest(count: Callable[[int], int], lo: int, hi: int, target: float, decreasing: bool) -> int:
    """Index in [lo, hi] whose monotone ``count`` is closest to ``target`` (ties: more parameters)."""
    a, b = lo, hi
    # bisect for the boundary index on the >= target side, then take the closer neighbour
    if decreasing:
        if count(lo) <= target:
            return lo
        while a < b:  # invariant: count(a) >= target
            mid = (a + b + 1) // 2
            if count(mid) >= target:
                a = mid
            else:
                b = mid - 1
        cands = [a] + ([a + 1] if a + 1 <= hi else [])
    else:
        if count(hi) <= target:
            return hi
        while a < b:
            mid = (a + b) // 2
            if count(mid) >= target:
                b = mid
            else:
                a = mid + 1
        cands = ([a - 1] if a - 1 >= lo else []) + [a]
    return min(cands, key=lambda i: (abs(count(i) - target), -count(i)))


def _global_keeps(structure: _Structure, allowed: list[torch.Tensor], target: float) -> list[torch.Tensor]:
    scores, owners = [], []
    for gi, (g, a) in enumerate(zip(structure.groups, allowed)):
        imp = g.importance.clone()
        live = imp[a]
        # Norms grow with fan-in and residual groups average more layers, so raw norms of
        # different groups are not comparable; dividing by the group's mean over live channels
        # makes one global threshold a relative one (Torch-Pruning's normalizer="mean").
        scale = live.mean() if live.numel() and live.mean() > 0 else torch.tensor(1.0)
        s = imp / scale
        s[~a] = -torch.inf
        best = int(torch.where(a, s, torch.full_like(s, -torch.inf)).argmax()) if a.any() else 0
        s[best] = torch.inf  # never remove every channel of a group
        scores.append(s)
        owners.append(torch.stack([torch.full((g.n_channels,), gi), torch.arange(g.n_channels)], 1))
    if not scores:
        return []
    flat = torch.cat(scores)
    who = torch.cat(owners)
    order = torch.sort(flat, stable=True).indices
    n_forced = int(torch.isneginf(flat).sum())
    n_max = int((~torch.isposinf(flat)).sum())

    def keeps_for(n: int) -> list[torch.Tensor]:
        keeps = [torch.ones(g.n_channels, dtype=torch.bool) for g in structure.groups]
        for gi, c in who[order[:n]].tolist():
            keeps[gi][c] = False
        return keeps

    cache: dict[int, int] = {}

    def count(n: int) -> int:
        if n not in cache:
            cache[n] = structure.count(keeps_for(n))
        return cache[n]

    return keeps_for(_closest(count, n_forced, n_max, target, decreasing=True))


def _layerwise_keeps(structure: _Structure, allowed: list[torch.Tensor], target: float) -> list[torch.Tensor]:
    ranks = []
    for g, a in zip(structure.groups, allowed):
        s = g.importance.clone()
        s[~a] = -torch.inf
        ranks.append(torch.sort(s, descending=True, stable=True).indices)
    qs = sorted({k / g.n_channels for g in structure.groups for k in range(1, g.n_channels + 1)})

    def keeps_for(i: int) -> list[torch.Tensor]:
        keeps = []
        for g, a, r in zip(structure.groups, allowed, ranks):
            k = int(qs[i] * g.n_channels + 1e-9)
            k = max(1, min(k, int(a.sum()) or 1))
            keep = torch.zeros(g.n_channels, dtype=torch.bool)
            keep[r[:k]] = True
            keeps.append(keep)
        return keeps

    cache: dict[int, int] = {}

    def count(i: int) -> int:
        if i not in cache:
            cache[i] = structure.count(keeps_for(i))
        return cache[i]

    return keeps_for(_closest(count, 0, len(qs) - 1, target, decreasing=False))


# --------------------------------------------------------------------------- public API


def channel_masks(
    model: nn.Module,
    retained_fraction: float,
    *,
    norm: str = "l1",
    scope: str = "global",
    example_inputs,
    ignore: Iterable[str] | None = None,
    within: MaskSet | None = None,
) -> dict[str, torch.Tensor]:
    """Masks removing the weakest channels so that ``retained_fraction`` of the parameters survive.

    Parameters
    ----------
    model : nn.Module
        Read only (traced in eval mode, training flag restored).
    retained_fraction : float
        Target fraction of *effective* parameters kept, in (0, 1]. A removed
        channel also removes every coupled parameter (next layer's input slice,
        BN weight/bias, same channel across a residual add).
    norm : {'l1', 'l2'}
        Group magnitude with p = 1 or 2 (module docstring).
    scope : {'global', 'layerwise'}
        ``global``: one threshold on importances divided by their group's mean
        over live channels (raw norms scale with fan-in and group size, so they
        are not comparable across groups). ``layerwise``: every group keeps the
        same channel fraction q, ``max(1, floor(q * C_g))`` channels.
    example_inputs : Tensor or tuple
        Inputs for tracing (a batch of one is enough).
    ignore : iterable of str, optional
        Conv/linear layers whose output channels are never pruned (their whole
        coupled group is left dense). The final classifier (last conv/linear
        executed) is always ignored.
    within : dict, optional
        Earlier masks; channels they removed stay removed (nested schedules).

    Returns
    -------
    dict
        ``{param_name: 0/1 mask}`` for every parameter with a coupled dim
        (all-ones masks included, so keys do not depend on the level).

    Notes
    -----
    The channel count is searched by bisection to the achievable level closest
    to the target (ties toward more parameters). Global scope steps one channel
    at a time, so ``|achieved - target| <= channel_granularity(model) / 2``
    unless the target lies below the floor of one channel per group (or above
    what ``within`` left). Layerwise steps move several groups at once and are
    coarser; the closest of its levels is returned. Every group keeps >= 1
    channel.
    """
    owner = "channel_masks"
    check_in_range("retained_fraction", owner, retained_fraction, 0.0, 1.0, closed="right")
    check_choice("norm", owner, norm, NORMS)
    check_choice("scope", owner, scope, SCOPES)
    ignored = _check_ignore(model, ignore, owner)
    if within is not None:
        validate_masks(model, within)
    structure = _structure(model, example_inputs, p=NORMS[norm], ignore=ignored, owner=owner)
    if not structure.groups:  # nothing prunable (e.g. a lone classifier)
        return {}
    allowed = _allowed(structure, within)
    target = float(retained_fraction) * structure.dense_count
    if scope == "global":
        keeps = _global_keeps(structure, allowed, target)
    else:
        keeps = _layerwise_keeps(structure, allowed, target)
    return structure.masks(keeps, dict(model.named_parameters()))


def channel_granularity(model: nn.Module, *, example_inputs, ignore: Iterable[str] | None = None) -> float:
    """Largest fraction of the dense parameter count coupled to a single channel.

    Removing one channel never removes more than this, so global
    :func:`channel_masks` lands within half of it of its target. (An entry
    whose two dims belong to the same channel is counted twice: an upper bound.)
    """
    ignored = _check_ignore(model, ignore, "channel_granularity")
    structure = _structure(model, example_inputs, ignore=ignored, owner="channel_granularity")
    per_channel = [torch.zeros(g.n_channels, dtype=torch.long) for g in structure.groups]
    for name, dims in structure.slices.items():
        numel = math.prod(structure.shapes[name])
        for dim, items in dims.items():
            other = numel // structure.shapes[name][dim]
            for g, sl in items:
                per_channel[g] += torch.bincount(sl.root_idxs, minlength=len(per_channel[g])) * other
    step = max((int(c.max()) for c in per_channel), default=0)
    return step / structure.dense_count


def effective_parameter_count(model: nn.Module, masks: MaskSet) -> int:
    """Parameters that survive the masks: unmasked entries plus every unmasked parameter.

    For channel masks this is the parameter count of :func:`physically_remove`'s model.
    """
    validate_masks(model, masks)
    total = 0
    for name, p in model.named_parameters():
        total += int(masks[name].ne(0).sum()) if name in masks else p.numel()
    return total


def retained_fraction(model: nn.Module, masks: MaskSet) -> float:
    """:func:`effective_parameter_count` divided by the dense parameter count."""
    dense = sum(p.numel() for p in model.parameters())
    return effective_parameter_count(model, masks) / max(dense, 1)


def physically_remove(model: nn.Module, masks: MaskSet, example_inputs) -> nn.Module:
    """A deep copy of ``model`` with the masked channels removed by Torch-Pruning.

    The copy's outputs equal the masked model's (eval mode; also in train mode,
    since a removed channel's BN output is exactly 0) and its parameter count
    equals :func:`effective_parameter_count`. ``model`` is not changed.

    Raises
    ------
    InvalidParameterError
        If ``masks`` are not channel masks (not the outer product implied by
        the removed channels) or would remove every channel of a group.
    """
    owner = "physically_remove"
    validate_masks(model, masks)
    pruned = copy.deepcopy(model)
    apply_masks(pruned, masks)
    structure = _structure(pruned, example_inputs, owner=owner, cached=False)
    keeps = _allowed(structure, masks)
    for g, k in zip(structure.groups, keeps):
        if not k.any():
            raise invalid("masks", owner, "masks keeping at least one channel of every group", g.root)
    implied = structure.masks(keeps, dict(pruned.named_parameters()))
    for name, m in masks.items():
        expected = implied.get(name)
        ok = bool(m.ne(0).all()) if expected is None else torch.equal(m.ne(0).cpu(), expected.ne(0).cpu())
        if not ok:
            raise invalid("masks", owner, "channel masks (whole channels and their coupled slices)", name)
    plan = [(g.module, torch.nonzero(~k).flatten().tolist()) for g, k in zip(structure.groups, keeps)]
    graph = structure.graph
    for module, idxs in plan:
        if idxs:
            fn = graph.get_pruner_of_module(module).prune_out_channels
            graph.get_pruning_group(module, fn, idxs).prune()
    return pruned


def prune_schedule(retained_fractions: Iterable[float]) -> tuple[float, ...]:
    """Validate an iterative schedule: each level in (0, 1], strictly decreasing (dense toward sparse)."""
    owner = "prune_schedule"
    levels = list(retained_fractions)
    if not levels:
        raise invalid("retained_fractions", owner, "a non-empty sequence", levels)
    for i, f in enumerate(levels):
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f <= 1.0:
            raise invalid("retained_fractions", owner, "numbers in (0, 1]", f)
        if i and not f < levels[i - 1]:
            raise invalid(
                "retained_fractions", owner,
                f"strictly decreasing (dense toward sparse); it follows {levels[i - 1]!r}", f,
            )
    return tuple(float(f) for f in levels)


def iterative_channel_prune(
    model: nn.Module,
    retained_fractions: Iterable[float],
    *,
    finetune: Callable[[nn.Module, MaskSet], object],
    norm: str = "l1",
    scope: str = "global",
    example_inputs,
    ignore: Iterable[str] | None = None,
) -> Iterator[tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """Prune ``model`` in place level by level, fine-tuning after each step.

    Parameters
    ----------
    retained_fractions : iterable of float
        Schedule, validated by :func:`prune_schedule` before any work.
    finetune : callable
        ``finetune(model, masks)``; must hold the masks (``train(..., callbacks=[HoldMasks(masks)])``,
        :class:`compress.prune.hold.HoldMasks`).

    Yields
    ------
    (retained_fraction, masks, state_dict)
        The scheduled level (the achieved one is ``retained_fraction(model, masks)``)
        and copies of the masks and of the fine-tuned state. Masks are nested:
        a channel removed at one level stays removed.

    Raises
    ------
    RuntimeError
        If ``finetune`` moved a masked weight off zero.
    """
    owner = "iterative_channel_prune"
    levels = prune_schedule(retained_fractions)
    check_choice("norm", owner, norm, NORMS)
    check_choice("scope", owner, scope, SCOPES)
    ignored = _check_ignore(model, ignore, owner)
    if not callable(finetune):
        raise invalid("finetune", owner, "a callable finetune(model, masks)", finetune)
    return _iterate(model, levels, finetune, norm, scope, example_inputs, ignored)


def _iterate(model, levels, finetune, norm, scope, example_inputs, ignored):
    masks = None
    for level in levels:
        masks = channel_masks(
            model, level, norm=norm, scope=scope, example_inputs=example_inputs, ignore=ignored, within=masks
        )
        apply_masks(model, masks)
        finetune(model, masks)
        params = dict(model.named_parameters())
        leaked = sum(int((params[n].detach() * (m == 0)).ne(0).sum()) for n, m in masks.items())
        if leaked:
            raise RuntimeError(
                f"finetune moved {leaked} masked weights off zero at retained fraction {level}; "
                "hold the masks with compress.prune.hold.HoldMasks."
            )
        yield (
            level,
            {n: m.detach().clone() for n, m in masks.items()},
            {k: v.detach().clone() for k, v in model.state_dict().items()},
        )


@torch.no_grad()
def rewind_to_init(model: nn.Module, masks: MaskSet, init_state_dict: Mapping[str, torch.Tensor]) -> None:
    """Reset surviving weights (and all buffers, e.g. BN running stats) to ``init_state_dict``; zero masked ones.

    The distilled-model start of GC: the pruned architecture with its unfrozen
    weights back at the teacher's initial values.
    """
    owner = "rewind_to_init"
    validate_masks(model, masks)
    state = model.state_dict(keep_vars=True)
    for name, tensor in state.items():
        if name not in init_state_dict:
            raise invalid("init_state_dict", owner, f"a state dict with an entry for {name!r}", "no such entry")
        if tuple(init_state_dict[name].shape) != tuple(tensor.shape):
            raise invalid(
                "init_state_dict", owner, f"shape {tuple(tensor.shape)} for {name!r}",
                tuple(init_state_dict[name].shape),
            )
    for name, tensor in state.items():
        tensor.copy_(init_state_dict[name])
    apply_masks(model, masks)
