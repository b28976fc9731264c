"""Tests for compress.prune.structured: channel masks, their accounting, physical removal, schedules.

The coupling checks use hand-written lists of which ResNet-18 slices share a
channel (independent of Torch-Pruning's tracing), and the parameter counts of
the plain net are computed by hand from its layer shapes.
"""
from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
from compress.models.registry import create_model
from compress.prune.masks import MaskHolder, apply_masks
from compress.prune.structured import (
    channel_granularity,
    channel_masks,
    effective_parameter_count,
    iterative_channel_prune,
    physically_remove,
    prune_schedule,
    retained_fraction,
    rewind_to_init,
)

RESNET_SHAPE = (1, 8, 8)
PLAIN_SHAPE = (3, 6, 6)


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN affine params and running stats, so removal must carry them correctly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def make_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _randomize_bn(create_model("resnet18", 10, RESNET_SHAPE, width=0.25), seed).eval()


def make_plain(seed: int = 0) -> nn.Module:
    """Conv+BN, conv with bias and no BN, a hidden linear layer (neurons), a classifier."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=True),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1, bias=True),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 16),
        nn.ReLU(),
        nn.Linear(16, 4),
    )
    return _randomize_bn(net, seed).eval()


@functools.lru_cache(maxsize=None)
def _cached_resnet() -> nn.Module:
    return make_resnet(0)


@functools.lru_cache(maxsize=None)
def _resnet_granularity() -> float:
    return channel_granularity(_cached_resnet(), example_inputs=resnet_inputs())


def resnet_inputs(n: int = 1) -> torch.Tensor:
    return torch.randn(n, *RESNET_SHAPE, generator=torch.Generator().manual_seed(1))


def plain_inputs(n: int = 1) -> torch.Tensor:
    return torch.randn(n, *PLAIN_SHAPE, generator=torch.Generator().manual_seed(2))


def _rows(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Per index along ``dim``: True if any entry of that channel's slice is kept."""
    return mask.movedim(dim, 0).reshape(mask.shape[dim], -1).ne(0).any(1)


def _assert_whole_channels(mask: torch.Tensor) -> None:
    """A kept entry iff its output channel and its input channel are both kept (outer product)."""
    if mask.dim() < 2:
        return
    rows, cols = _rows(mask, 0), _rows(mask, 1)
    view_r = [-1] + [1] * (mask.dim() - 1)
    view_c = [1, -1] + [1] * (mask.dim() - 2)
    assert torch.equal(mask.ne(0), (rows.view(view_r) & cols.view(view_c)).expand_as(mask))


# Channels that must share one keep/remove decision in the CIFAR ResNet-18: (param, dim).
def _resnet_coupled_sets() -> list[list[tuple[str, int]]]:
    sets = []
    stream_in: list[tuple[str, int]] = [("conv1.weight", 0), ("bn1.weight", 0), ("bn1.bias", 0)]
    for stage in range(1, 5):
        stream = [] if stage > 1 else list(stream_in)
        for block in range(2):
            p = f"layer{stage}.{block}"
            # inner channel of the block: conv1 rows, bn1, conv2 input columns
            sets.append([(f"{p}.conv1.weight", 0), (f"{p}.bn1.weight", 0), (f"{p}.bn1.bias", 0), (f"{p}.conv2.weight", 1)])
            stream += [(f"{p}.conv2.weight", 0), (f"{p}.bn2.weight", 0), (f"{p}.bn2.bias", 0)]
            if stage > 1 and block == 0:
                stream += [(f"{p}.downsample.0.weight", 0), (f"{p}.downsample.1.weight", 0), (f"{p}.downsample.1.bias", 0)]
        # consumers of the residual stream: next blocks' conv1 / downsample inputs, or fc
        stream += [(f"layer{stage}.1.conv1.weight", 1)]
        if stage == 1:
            stream += [("layer1.0.conv1.weight", 1)]
        if stage < 4:
            stream += [(f"layer{stage + 1}.0.conv1.weight", 1), (f"layer{stage + 1}.0.downsample.0.weight", 1)]
        else:
            stream += [("fc.weight", 1)]
        sets.append(stream)
    return sets


# --------------------------------------------------------------------------- the traced-template cache


@pytest.mark.parametrize("make, inputs", [(make_resnet, resnet_inputs), (make_plain, plain_inputs)])
def test_a_cached_trace_gives_the_masks_and_importances_of_a_fresh_one(make, inputs):
    """The cache keeps an architecture's groups, never its weights: the masks are those of a fresh trace."""
    from compress.prune import structured

    for seed in (3, 4):  # the second model finds the first one's template and must not see its weights
        model = make(seed)
        with torch.no_grad():  # weights unlike the first model's: stale importances would change the masks
            for prm in model.parameters():
                prm.mul_(torch.rand(prm.shape, generator=torch.Generator().manual_seed(seed)) + 0.1)
        cached = structured._structure(model, inputs(), p=2)
        fresh = structured._structure(model, inputs(), p=2, cached=False)
        assert [g.root for g in cached.groups] == [g.root for g in fresh.groups]
        for a, b in zip(cached.groups, fresh.groups):
            assert torch.equal(a.importance, b.importance), a.root
        assert cached.shapes == fresh.shapes and cached.dense_count == fresh.dense_count
        for level in (0.7, 0.3):
            got = channel_masks(model, level, norm="l2", example_inputs=inputs())
            structured._TEMPLATES.clear()
            again = channel_masks(model, level, norm="l2", example_inputs=inputs())
            assert got.keys() == again.keys() and all(torch.equal(got[k], again[k]) for k in got)
    assert all(t is not model for t, _, _ in structured._TEMPLATES.values())  # the caller's model is never traced


# --------------------------------------------------------------------------- structure of the masks


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_masks_remove_whole_channels_and_their_coupled_slices(scope):
    model = _cached_resnet()
    masks = channel_masks(model, 0.4, scope=scope, example_inputs=resnet_inputs())
    n_removed = 0
    for coupled in _resnet_coupled_sets():
        keeps = [_rows(masks[name], dim) for name, dim in coupled]
        for (name, _), keep in zip(coupled, keeps):
            assert torch.equal(keep, keeps[0]), f"{name} is not pruned with {coupled[0][0]}"
        assert keeps[0].any(), "a whole group was removed"
        n_removed += int((~keeps[0]).sum())
    assert n_removed > 0
    # the classifier's outputs are never pruned, its bias is not masked
    assert bool(_rows(masks["fc.weight"], 0).all())
    assert "fc.bias" not in masks
    # a channel's slice is all zero or all kept, in every conv and linear weight
    for m in masks.values():
        _assert_whole_channels(m)


def test_global_and_layerwise_distribute_channels_differently():
    model = _cached_resnet()
    x = resnet_inputs()
    fractions = {}
    for scope in ("global", "layerwise"):
        masks = channel_masks(model, 0.5, scope=scope, example_inputs=x)
        fractions[scope] = {
            n: float(_rows(masks[n], 0).float().mean())
            for n in masks
            if n.endswith("conv1.weight") and n.startswith("layer")
        }
    # layerwise: k = floor(q * C) in every group, so a 2C-channel group keeps 2k or 2k + 1
    lw = _layerwise_counts(channel_masks(model, 0.5, scope="layerwise", example_inputs=x))
    for c, k in lw.items():
        if 2 * c in lw:
            assert lw[2 * c] in (2 * k, 2 * k + 1)
    assert len(set(fractions["global"].values())) > 1
    assert fractions["global"] != fractions["layerwise"]


def _layerwise_counts(masks) -> dict[int, int]:
    counts: dict[int, int] = {}
    for name, m in masks.items():
        if name.endswith("conv1.weight") and name.startswith("layer"):
            keep = _rows(m, 0)
            c, k = keep.numel(), int(keep.sum())
            assert counts.setdefault(c, k) == k, "same-width groups keep different channel counts"
    return counts


@settings(max_examples=4, deadline=None)
@given(target=st.floats(0.1, 0.9))
def test_global_retained_fraction_is_within_half_a_channel_of_target(target):
    model = _cached_resnet()
    x = resnet_inputs()
    masks = channel_masks(model, target, scope="global", example_inputs=x)
    tolerance = _resnet_granularity() / 2
    assert abs(retained_fraction(model, masks) - target) <= tolerance + 1e-12
    assert tolerance < 0.01  # the resolution is fine on this model


@pytest.mark.parametrize("target", [0.15, 0.5, 0.85])
def test_layerwise_retained_fraction_is_near_target(target):
    model = _cached_resnet()
    masks = channel_masks(model, target, scope="layerwise", example_inputs=resnet_inputs())
    # layerwise levels move every group at once (16-channel groups step by 1/16 of a channel fraction)
    assert abs(retained_fraction(model, masks) - target) < 0.06


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_the_largest_norm_channels_are_kept(norm):
    model = make_plain()
    strong = [1, 4, 6]
    with torch.no_grad():
        for c in range(8):
            model[0].weight[c] *= 100.0 if c in strong else 0.01
    masks = channel_masks(model, 0.6, norm=norm, scope="layerwise", example_inputs=plain_inputs())
    kept = torch.nonzero(_rows(masks["0.weight"], 0)).flatten().tolist()
    assert kept
    if len(kept) <= len(strong):
        assert set(kept) <= set(strong)
    else:
        assert set(strong) <= set(kept)


def test_full_retention_keeps_everything_and_tiny_targets_keep_one_channel_per_group():
    model = _cached_resnet()
    x = resnet_inputs()
    full = channel_masks(model, 1.0, example_inputs=x)
    assert all(bool(m.eq(1).all()) for m in full.values())
    assert retained_fraction(model, full) == 1.0
    for scope in ("global", "layerwise"):
        tiny = channel_masks(model, 1e-6, scope=scope, example_inputs=x)
        for coupled in _resnet_coupled_sets():
            assert int(_rows(tiny[coupled[0][0]], coupled[0][1]).sum()) == 1


# --------------------------------------------------------------------------- accounting, by hand


def _plain_count(k1: int, k2: int, k3: int) -> int:
    """Parameters of make_plain with k1, k2 conv channels and k3 hidden neurons kept."""
    conv0 = 3 * k1 * 9 + k1
    bn = 2 * k1
    conv3 = k1 * k2 * 9 + k2
    lin = k2 * k3 + k3
    head = k3 * 4 + 4
    return conv0 + bn + conv3 + lin + head


def test_granularity_and_effective_count_match_hand_counts():
    model = make_plain()
    x = plain_inputs()
    dense = _plain_count(8, 12, 16)
    assert dense == sum(p.numel() for p in model.parameters())
    # biggest single channel: conv0 row (27 + bias) + BN (2) + conv3 input column (12 * 9)
    assert channel_granularity(model, example_inputs=x) == pytest.approx((28 + 2 + 108) / dense)
    for target in (0.8, 0.45, 0.2):
        masks = channel_masks(model, target, example_inputs=x)
        k1 = int(_rows(masks["0.weight"], 0).sum())
        k2 = int(_rows(masks["3.weight"], 0).sum())
        k3 = int(_rows(masks["7.weight"], 0).sum())
        assert effective_parameter_count(model, masks) == _plain_count(k1, k2, k3)
        assert retained_fraction(model, masks) == pytest.approx(_plain_count(k1, k2, k3) / dense)
        # coupled slices of the plain net
        assert torch.equal(_rows(masks["1.weight"], 0), _rows(masks["0.weight"], 0))
        assert torch.equal(_rows(masks["3.weight"], 1), _rows(masks["0.weight"], 0))
        assert torch.equal(_rows(masks["7.weight"], 1), _rows(masks["3.weight"], 0))
        assert torch.equal(_rows(masks["9.weight"], 1), _rows(masks["7.weight"], 0))
        assert torch.equal(masks["3.bias"].ne(0), _rows(masks["3.weight"], 0))
        for m in masks.values():
            _assert_whole_channels(m)


# --------------------------------------------------------------------------- physical removal


@pytest.mark.parametrize(
    "make, inputs", [(make_resnet, resnet_inputs), (make_plain, plain_inputs)], ids=["resnet18", "plain"]
)
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_physical_removal_matches_the_masked_model(make, inputs, scope):
    model = make()
    x = inputs(16)
    masks = channel_masks(model, 0.35, scope=scope, example_inputs=x[:1])
    apply_masks(model, masks)
    dense_before = sum(p.numel() for p in model.parameters())
    small = physically_remove(model, masks, x[:1])
    assert sum(p.numel() for p in model.parameters()) == dense_before  # original untouched
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small == effective_parameter_count(model, masks) < dense_before
    with torch.no_grad():
        model.eval(), small.eval()
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=0)
        # train mode too: a removed channel's BN output is exactly 0 with batch statistics as well
        model_t, small_t = copy.deepcopy(model).train(), copy.deepcopy(small).train()
        torch.testing.assert_close(small_t(x), model_t(x), atol=1e-5, rtol=0)


def test_physical_removal_rejects_masks_that_are_not_channel_masks():
    model = make_plain()
    x = plain_inputs()
    masks = channel_masks(model, 0.6, example_inputs=x)
    kept_row = int(torch.nonzero(_rows(masks["3.weight"], 0))[0])
    kept_col = int(torch.nonzero(_rows(masks["3.weight"], 1))[0])
    assert masks["3.weight"][kept_row, kept_col, 0, 0] == 1
    masks["3.weight"][kept_row, kept_col, 0, 0] = 0.0  # one weight, not a channel
    with pytest.raises(InvalidParameterError, match="'3.weight'"):
        physically_remove(model, masks, x)


# --------------------------------------------------------------------------- holding and rewinding


def _sgd_step(model, opt, x, y):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_masks_hold_through_sgd_with_momentum_and_weight_decay_only_with_the_holder():
    model = make_resnet().train()
    x = resnet_inputs(8)
    y = torch.arange(8) % 10
    masks = channel_masks(model, 0.5, example_inputs=x[:1])
    held, free = model, copy.deepcopy(model)
    opts = {}
    for key, m in (("held", held), ("free", free)):
        opts[key] = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        _sgd_step(m, opts[key], x, y)  # dense step: fills the momentum buffers
        apply_masks(m, masks)
    before = {n: p.detach().clone() for n, p in held.named_parameters()}
    with MaskHolder(held, masks) as holder:
        for _ in range(5):
            _sgd_step(held, opts["held"], x, y)
            holder.after_step()
    for _ in range(5):
        _sgd_step(free, opts["free"], x, y)
    held_p, free_p = dict(held.named_parameters()), dict(free.named_parameters())
    leaked = 0
    for name, mask in masks.items():
        off = mask == 0
        assert bool(held_p[name].detach()[off].eq(0).all()), name
        leaked += int(free_p[name].detach()[off].ne(0).sum())
    assert leaked > 0, "without the holder momentum should have moved pruned weights"
    moved = sum(int(held_p[n].detach().ne(before[n]).sum()) for n in before)
    assert moved > 0


def test_rewind_restores_init_on_kept_entries_and_zeros_the_rest():
    model = make_resnet().train()
    init = copy.deepcopy(model.state_dict())
    x = resnet_inputs(8)
    y = torch.arange(8) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        _sgd_step(model, opt, x, y)  # also moves BN running stats
    masks = channel_masks(model, 0.4, example_inputs=x[:1])
    apply_masks(model, masks)
    rewind_to_init(model, masks, init)
    for name, p in model.named_parameters():
        if name in masks:
            keep = masks[name] != 0
            assert torch.equal(p.detach()[keep], init[name][keep])
            assert bool(p.detach()[~keep].eq(0).all())
        else:
            assert torch.equal(p.detach(), init[name])
    for name, b in model.named_buffers():
        assert torch.equal(b, init[name]), name


def test_rewind_names_a_missing_state_entry():
    model = make_plain()
    init = copy.deepcopy(model.state_dict())
    del init["1.running_var"]
    with pytest.raises(InvalidParameterError, match="1.running_var"):
        rewind_to_init(model, {}, init)


# --------------------------------------------------------------------------- iterative schedule


def _finetune_held(model, masks):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = resnet_inputs(8)
    y = torch.arange(8) % 10
    model.train()
    with MaskHolder(model, masks) as holder:
        for _ in range(2):
            _sgd_step(model, opt, x, y)
            holder.after_step()
    model.eval()


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_schedule_gives_nested_masks_at_each_level(scope):
    model = make_resnet()
    levels = (0.8, 0.5, 0.3)
    steps = list(
        iterative_channel_prune(
            model, levels, finetune=_finetune_held, scope=scope, example_inputs=resnet_inputs()
        )
    )
    assert [s[0] for s in steps] == list(levels)
    achieved = [retained_fraction(model, s[1]) for s in steps]
    assert all(a > b for a, b in zip(achieved, achieved[1:]))
    for target, a in zip(levels, achieved):
        assert abs(a - target) < 0.06
    for (_, outer, _), (_, inner, _) in zip(steps, steps[1:]):
        for name in outer:
            assert bool((inner[name] <= outer[name]).all()), f"{name} regrew a pruned channel"
    for _, masks, state in steps:
        for name, m in masks.items():
            assert bool(state[name][m == 0].eq(0).all())
    # the yielded copies are independent of the live model
    assert not torch.equal(steps[0][2]["conv1.weight"], model.state_dict()["conv1.weight"])


def test_iterative_schedule_refuses_a_finetune_that_lets_masks_leak():
    def leaky(model, masks):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)

    gen = iterative_channel_prune(make_plain(), (0.5,), finetune=leaky, example_inputs=plain_inputs())
    with pytest.raises(RuntimeError, match="HoldMasks"):
        next(gen)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "schedule, bad",
    [((0.0,), "0.0"), ((0.9, 1.5), "1.5"), ((0.3, 0.5), "0.5"), ((0.5, 0.5), "0.5"), ((0.8, -0.1), "-0.1")],
)
def test_bad_schedules_name_the_bad_value(schedule, bad):
    with pytest.raises(InvalidParameterError, match=rf"Got {bad} instead"):
        prune_schedule(schedule)
    # validated before any work: no call to finetune, no iteration needed
    with pytest.raises(InvalidParameterError, match=rf"Got {bad} instead"):
        iterative_channel_prune(make_plain(), schedule, finetune=_finetune_held, example_inputs=plain_inputs())


def test_good_schedule_is_returned_as_floats():
    assert prune_schedule([1, 0.5, 0.25]) == (1.0, 0.5, 0.25)


def test_unknown_layer_names_are_named_with_the_valid_ones():
    model = _cached_resnet()
    with pytest.raises(InvalidParameterError, match=r"'fcx'") as info:
        channel_masks(model, 0.5, example_inputs=resnet_inputs(), ignore=("fc", "fcx"))
    assert "layer1.0.conv1" in str(info.value) and "fc" in str(info.value)
    with pytest.raises(InvalidParameterError, match=r"'nope'"):
        iterative_channel_prune(model, (0.5,), finetune=_finetune_held, example_inputs=resnet_inputs(), ignore=["nope"])


def test_ignored_layers_keep_their_group_dense():
    model = _cached_resnet()
    masks = channel_masks(model, 0.3, example_inputs=resnet_inputs(), ignore=("layer3.1.conv1",))
    assert bool(_rows(masks["layer3.1.conv1.weight"], 0).all())
    assert "layer3.1.bn1.weight" not in masks  # the ignored group is not masked at all
    assert bool(_rows(masks["layer3.1.conv2.weight"], 1).all())
    assert not bool(_rows(masks["layer3.0.conv1.weight"], 0).all())


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"retained_fraction": 0.0}, "retained_fraction"),
        ({"retained_fraction": 1.5}, "retained_fraction"),
        ({"norm": "l3"}, "norm"),
        ({"scope": "local"}, "scope"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, param):
    args = {"retained_fraction": 0.5, **kwargs}
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of channel_masks"):
        channel_masks(make_plain(), args.pop("retained_fraction"), example_inputs=plain_inputs(), **args)


def test_effective_count_rejects_masks_for_unknown_parameters():
    model = make_plain()
    with pytest.raises(InvalidParameterError, match="nope.weight"):
        effective_parameter_count(model, {"nope.weight": torch.ones(1)})
    assert math.isclose(retained_fraction(model, {}), 1.0)


def test_a_model_without_prunable_channels_gets_no_masks():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    assert channel_masks(model, 0.5, scope="layerwise", example_inputs=torch.randn(1, 12)) == {}
