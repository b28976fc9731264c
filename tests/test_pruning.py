"""Tests for compress.prune.unstructured: exact sparsity, smallest magnitudes first, plain state_dicts."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
from compress.models.registry import create_model
from compress.prune.unstructured import SCOPES, TARGETS, l1_unstructured, prunable_weights

FAST = settings(max_examples=25, deadline=None)


class _Small(nn.Module):
    """Conv + two linears of different sizes (so global and layer-wise pruning differ) + a norm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.fc1 = nn.Linear(12, 10)
        self.fc2 = nn.Linear(10, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def _small(seed: int = 0, fc1_scale: float = 1.0) -> _Small:
    torch.manual_seed(seed)
    m = _Small()
    with torch.no_grad():
        m.fc1.weight.mul_(fc1_scale)
    return m


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{n}.weight": m.weight.detach() for n, m in prunable_weights(model)}


def _zeros(t: torch.Tensor) -> int:
    return int((t == 0).sum())


def test_prunable_weights_are_conv_and_linear_only():
    assert [n for n, _ in prunable_weights(_small())] == ["conv", "fc1", "fc2"]


@FAST
@given(sparsity=st.floats(0.0, 0.999), seed=st.integers(0, 1000))
@example(sparsity=0.0, seed=0)
@example(sparsity=0.5, seed=0)
@example(sparsity=0.999, seed=0)
def test_global_hits_exact_sparsity(sparsity, seed):
    model = _small(seed)
    n = sum(w.numel() for w in _weights(model).values())
    masks = l1_unstructured(model, sparsity, scope="global")
    zeros = sum(_zeros(w) for w in _weights(model).values())
    assert zeros == round(sparsity * n)
    assert sum(int((m == 0).sum()) for m in masks.values()) == zeros


@FAST
@given(sparsity=st.floats(0.0, 0.999), seed=st.integers(0, 1000))
@example(sparsity=0.3, seed=0)
def test_layerwise_hits_exact_sparsity_in_every_layer(sparsity, seed):
    model = _small(seed)
    l1_unstructured(model, sparsity, scope="layerwise")
    for name, w in _weights(model).items():
        assert _zeros(w) == round(sparsity * w.numel()), name


def test_layerwise_and_global_differ_when_one_layer_is_small_in_magnitude():
    # fc1's weights are 100x smaller: global pruning takes almost all of them first.
    g, lw = _small(0, fc1_scale=0.01), _small(0, fc1_scale=0.01)
    l1_unstructured(g, 0.3, scope="global")
    l1_unstructured(lw, 0.3, scope="layerwise")
    n_fc1 = g.fc1.weight.numel()
    assert _zeros(lw.fc1.weight) == round(0.3 * n_fc1)
    assert _zeros(g.fc1.weight) > _zeros(lw.fc1.weight)
    assert _zeros(g.conv.weight) < _zeros(lw.conv.weight) or _zeros(g.fc2.weight) < _zeros(lw.fc2.weight)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_global_removes_the_smallest_magnitudes(sparsity):
    model = _small(1)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, sparsity, scope="global")
    removed = torch.cat([before[k][m == 0].abs() for k, m in masks.items()])
    kept = torch.cat([before[k][m == 1].abs() for k, m in masks.items()])
    assert removed.numel() > 0 and kept.numel() > 0
    assert removed.max() <= kept.min()


@pytest.mark.parametrize("sparsity", [0.2, 0.6])
def test_layerwise_removes_the_smallest_magnitudes_per_layer(sparsity):
    model = _small(2)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, sparsity, scope="layerwise")
    for k, m in masks.items():
        assert before[k][m == 0].abs().max() <= before[k][m == 1].abs().min(), k


@pytest.mark.parametrize("scope", SCOPES)
def test_masks_match_zeros_and_kept_weights_are_unchanged(scope):
    model = _small(3)
    before = {k: v.clone() for k, v in _weights(model).items()}
    bias_before = model.fc1.bias.detach().clone()
    masks = l1_unstructured(model, 0.4, scope=scope)
    after = _weights(model)
    assert set(masks) == set(after)
    for k, m in masks.items():
        assert m.shape == after[k].shape
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(after[k] == 0, m == 0)
        assert torch.equal(after[k], before[k] * m)
    assert torch.equal(model.fc1.bias, bias_before)  # biases are not pruned


@pytest.mark.parametrize("scope", SCOPES)
def test_state_dict_loads_into_fresh_model(scope):
    model = create_model("lenet5", 10, (1, 8, 8))
    l1_unstructured(model, 0.5, scope=scope)
    sd = model.state_dict()
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in sd)
    assert not any(hasattr(m, "weight_orig") for _, m in prunable_weights(model))
    fresh = create_model("lenet5", 10, (1, 8, 8))
    assert set(fresh.state_dict()) == set(sd)
    fresh.load_state_dict(sd)  # strict
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(fresh.eval()(x), model.eval()(x))
    assert isinstance(model.fc1.weight, nn.Parameter)


def test_sparsity_zero_changes_nothing_and_returns_all_ones_masks():
    model = _small(4)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, 0.0)
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())
    assert all(bool((m == 1).all()) for m in masks.values())


def test_pruning_again_sets_total_sparsity_not_compounded():
    # The sparsity is of all N weights; the zeros from the first call are the
    # smallest magnitudes, so the second call removes them plus the next ones.
    model = _small(5)
    n = sum(w.numel() for w in _weights(model).values())
    l1_unstructured(model, 0.3)
    l1_unstructured(model, 0.5)
    assert sum(_zeros(w) for w in _weights(model).values()) == round(0.5 * n)


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1, float("nan"), "0.5", None, True])
def test_bad_sparsity_names_the_value(sparsity):
    with pytest.raises(InvalidParameterError) as info:
        l1_unstructured(_small(), sparsity)
    msg = str(info.value)
    assert msg.startswith("The 'sparsity' parameter of l1_unstructured must be ")
    assert msg.endswith(f"Got {sparsity!r} instead.")


def test_bad_scope_names_the_value_and_the_valid_ones():
    with pytest.raises(InvalidParameterError) as info:
        l1_unstructured(_small(), 0.5, scope="channel")
    msg = str(info.value)
    assert "'scope' parameter of l1_unstructured" in msg
    assert "'global', 'layerwise'" in msg and "Got 'channel' instead." in msg


def test_bad_input_leaves_model_untouched():
    model = _small(6)
    before = {k: v.clone() for k, v in _weights(model).items()}
    with pytest.raises(InvalidParameterError):
        l1_unstructured(model, 0.5, scope="nope")
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


# ----------------------------------------------------------------------------- all_arrays (the MW paper's code)


def _arrays(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every floating parameter and buffer: what Keras' get_weights() returns for this model."""
    out = dict(model.named_parameters())
    out.update((n, b) for n, b in model.named_buffers() if b.is_floating_point())
    return {n: t.detach() for n, t in out.items()}


def _with_stats(seed: int = 0) -> _Small:
    """A _Small whose BatchNorm arrays are not their init values (1, 0; 0, 1), as after training: no exact zeros."""
    m = _small(seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.bn.weight.copy_(torch.rand(3, generator=g) + 0.5)
        m.bn.bias.copy_(torch.rand(3, generator=g) - 0.5)
        m.bn.running_mean.copy_(torch.rand(3, generator=g) - 0.5)
        m.bn.running_var.copy_(torch.rand(3, generator=g) * 0.01 + 1e-4)  # small variances, as deep in a network
    return m.eval()


def test_all_arrays_counts_biases_norms_and_running_statistics():
    names = set(_arrays(_small()))
    assert {"conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "fc2.bias"} <= names
    assert "bn.num_batches_tracked" not in names  # an integer counter, not a Keras weight


@FAST
@given(sparsity=st.floats(0.0, 0.999), seed=st.integers(0, 1000))
@example(sparsity=0.5, seed=0)
@example(sparsity=0.9, seed=0)
def test_all_arrays_zeroes_exactly_round_s_n_of_all_entries(sparsity, seed):
    model = _with_stats(seed)
    n = sum(t.numel() for t in _arrays(model).values())
    assert sum(_zeros(t) for t in _arrays(model).values()) == 0
    masks = l1_unstructured(model, sparsity, targets="all_arrays")
    after = _arrays(model)
    assert sum(_zeros(t) for t in after.values()) == round(sparsity * n)
    assert all(torch.equal(masks[k] == 0, after[k] == 0) for k in masks)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9])
def test_all_arrays_global_removes_the_smallest_magnitudes_everywhere(sparsity):
    model = _with_stats(1)
    before = {n: t.clone() for n, t in _arrays(model).items()}
    n = sum(t.numel() for t in before.values())
    masks = l1_unstructured(model, sparsity, targets="all_arrays")
    after = _arrays(model)
    cut = torch.cat([before[k][after[k] == 0].abs() for k in after])
    kept = torch.cat([before[k][after[k] != 0].abs() for k in after])
    assert cut.numel() == round(sparsity * n)  # no exact zeros before pruning, so zeros = removed entries
    assert cut.max() <= kept.min()
    # Masks for parameters only, matching their zeros; buffers are zeroed in place.
    assert set(masks) == set(dict(model.named_parameters()))
    assert all(torch.equal(masks[k] == 0, after[k] == 0) for k in masks)
    if sparsity == 0.9:
        assert _zeros(after["bn.running_var"]) > 0  # BN statistics are pruned too (the paper code's behaviour)


def test_all_arrays_layerwise_prunes_each_array_by_the_same_fraction():
    model = _with_stats(2)
    before = {n: t.clone() for n, t in _arrays(model).items()}
    l1_unstructured(model, 0.5, scope="layerwise", targets="all_arrays")
    for name, t in _arrays(model).items():
        assert _zeros(t) == round(0.5 * t.numel()), name
        assert before[name][t == 0].abs().max() <= before[name][t != 0].abs().min(), name


def test_all_arrays_ties_are_broken_by_position():
    # Every |value| equal: exactly round(s·N) still go, the first ones in model order.
    model = _small(0)
    with torch.no_grad():
        for t in _arrays(model).values():
            t.fill_(0.5)
    l1_unstructured(model, 0.25, targets="all_arrays")
    flat = torch.cat([t.flatten() for t in _arrays(model).values()])
    k = round(0.25 * flat.numel())
    assert torch.all(flat[:k] == 0) and torch.all(flat[k:] == 0.5)


def test_zeroed_running_variance_makes_batchnorm_divide_by_sqrt_eps():
    bn = nn.BatchNorm1d(1).eval()
    with torch.no_grad():
        bn.running_var.zero_()
    x = torch.tensor([[1e-3]])
    with torch.no_grad():
            assert float(bn(x)) == pytest.approx(1e-3 / math.sqrt(bn.eps), rel=1e-4)


def test_weights_and_all_arrays_differ_and_targets_are_checked():
    a, b = _with_stats(3), _with_stats(3)
    l1_unstructured(a, 0.5)
    l1_unstructured(b, 0.5, targets="all_arrays")
    assert torch.equal(a.fc1.bias, _with_stats(3).fc1.bias) and not torch.equal(b.bn.running_mean, a.bn.running_mean)
    assert TARGETS == ("weights", "all_arrays")
    with pytest.raises(InvalidParameterError) as info:
        l1_unstructured(_small(), 0.5, targets="everything")
    assert str(info.value) == ("The 'targets' parameter of l1_unstructured must be one of 'weights', 'all_arrays'. "
                               "Got 'everything' instead.")
