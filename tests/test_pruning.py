"""Tests for compress.pruning: exact sparsity, smallest magnitudes first, plain state_dicts."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from compress._validation import InvalidParameterError
from compress.models import create_model
from compress.pruning import SCOPES, l1_unstructured, prunable_weights

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
@given(ratio=st.floats(0.0, 0.999), seed=st.integers(0, 1000))
@example(ratio=0.0, seed=0)
@example(ratio=0.5, seed=0)
@example(ratio=0.999, seed=0)
def test_global_hits_exact_sparsity(ratio, seed):
    model = _small(seed)
    n = sum(w.numel() for w in _weights(model).values())
    masks = l1_unstructured(model, ratio, scope="global")
    zeros = sum(_zeros(w) for w in _weights(model).values())
    assert zeros == round(ratio * n)
    assert sum(int((m == 0).sum()) for m in masks.values()) == zeros


@FAST
@given(ratio=st.floats(0.0, 0.999), seed=st.integers(0, 1000))
@example(ratio=0.3, seed=0)
def test_layerwise_hits_exact_sparsity_in_every_layer(ratio, seed):
    model = _small(seed)
    l1_unstructured(model, ratio, scope="layerwise")
    for name, w in _weights(model).items():
        assert _zeros(w) == round(ratio * w.numel()), name


def test_layerwise_and_global_differ_when_one_layer_is_small_in_magnitude():
    # fc1's weights are 100x smaller: global pruning takes almost all of them first.
    g, lw = _small(0, fc1_scale=0.01), _small(0, fc1_scale=0.01)
    l1_unstructured(g, 0.3, scope="global")
    l1_unstructured(lw, 0.3, scope="layerwise")
    n_fc1 = g.fc1.weight.numel()
    assert _zeros(lw.fc1.weight) == round(0.3 * n_fc1)
    assert _zeros(g.fc1.weight) > _zeros(lw.fc1.weight)
    assert _zeros(g.conv.weight) < _zeros(lw.conv.weight) or _zeros(g.fc2.weight) < _zeros(lw.fc2.weight)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_global_removes_the_smallest_magnitudes(ratio):
    model = _small(1)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, ratio, scope="global")
    removed = torch.cat([before[k][m == 0].abs() for k, m in masks.items()])
    kept = torch.cat([before[k][m == 1].abs() for k, m in masks.items()])
    assert removed.numel() > 0 and kept.numel() > 0
    assert removed.max() <= kept.min()


@pytest.mark.parametrize("ratio", [0.2, 0.6])
def test_layerwise_removes_the_smallest_magnitudes_per_layer(ratio):
    model = _small(2)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, ratio, scope="layerwise")
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


def test_ratio_zero_changes_nothing_and_returns_all_ones_masks():
    model = _small(4)
    before = {k: v.clone() for k, v in _weights(model).items()}
    masks = l1_unstructured(model, 0.0)
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())
    assert all(bool((m == 1).all()) for m in masks.values())


def test_pruning_again_sets_total_sparsity_not_compounded():
    # The ratio is of all N weights; the zeros from the first call are the
    # smallest magnitudes, so the second call removes them plus the next ones.
    model = _small(5)
    n = sum(w.numel() for w in _weights(model).values())
    l1_unstructured(model, 0.3)
    l1_unstructured(model, 0.5)
    assert sum(_zeros(w) for w in _weights(model).values()) == round(0.5 * n)


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1, float("nan"), "0.5", None, True])
def test_bad_ratio_names_the_value(ratio):
    with pytest.raises(InvalidParameterError) as info:
        l1_unstructured(_small(), ratio)
    msg = str(info.value)
    assert msg.startswith("The 'ratio' parameter of l1_unstructured must be ")
    assert msg.endswith(f"Got {ratio!r} instead.")


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
