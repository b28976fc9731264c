"""Tests for compress.prune.structure: per-layer mask sparsity and the MH-6 checks.

Models are registry ones with an FC head: LeNet-5 (conv2 → 5×5 pool → flatten
→ fc1 with 25 columns per channel, then fc2, fc3) and VGG-11 (global pool, one
Linear: one column per channel). Masks come from the project's own pruning:
global L1 unstructured (:func:`compress.prune.unstructured.l1_unstructured`) and L1
channel pruning (:func:`compress.prune.structured.channel_masks`). The coupled
reduction is checked against Torch-Pruning's physical removal.
"""
from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
from torch import nn

from analysis._validation import InvalidParameterError
from compress.prune.structure import (
    CoupledColumns,
    channel_pruning_spares_linear,
    layer_sparsity,
    pruning_structure,
    weight_pruning_thins_every_layer,
)
from compress.models.registry import create_model
from compress.prune.structured import channel_masks, physically_remove
from compress.prune.unstructured import l1_unstructured

SHAPES = {"lenet5": (1, 8, 8), "vgg11": (3, 8, 8)}
WIDTHS = {"lenet5": 1.0, "vgg11": 0.25}


def make(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, 10, SHAPES[name], width=WIDTHS[name]).eval()


def inputs(name: str) -> torch.Tensor:
    return torch.randn(1, *SHAPES[name], generator=torch.Generator().manual_seed(1))


def linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


@functools.lru_cache(maxsize=None)
def _channel_case(name: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Conv-only channel pruning (the paper's §3.3): Linear outputs ignored, half the parameters kept."""
    model = make(name)
    masks = channel_masks(model, 0.5, example_inputs=inputs(name), ignore=linear_names(model))
    return model, masks


def channel_case(name: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    model, masks = _channel_case(name)
    return model, {k: v.clone() for k, v in masks.items()}


# --------------------------------------------------------------------------- layer_sparsity


def test_layer_sparsity_of_global_l1_pruning():
    model = make("lenet5")
    masks = l1_unstructured(model, 0.5)
    records = layer_sparsity(model, masks)
    assert [(r.name, r.kind) for r in records] == [
        ("conv1", "conv"), ("conv2", "conv"), ("fc1", "linear"), ("fc2", "linear"), ("fc3", "linear"),
    ]
    for r in records:
        mask = masks[f"{r.name}.weight"]
        assert r.weights == mask.numel()
        assert r.masked == int((mask == 0).sum())
        assert r.sparsity == pytest.approx(r.masked / r.weights)
    total = sum(r.weights for r in records)
    assert sum(r.masked for r in records) == round(0.5 * total)  # global pruning hits the sparsity exactly
    assert set(dataclasses.asdict(records[0])) == {"name", "kind", "weights", "masked", "sparsity"}


def test_a_layer_without_a_mask_is_unmasked():
    model = make("lenet5")
    masks = l1_unstructured(model, 0.5)
    del masks["fc3.weight"]
    fc3 = layer_sparsity(model, masks)[-1]
    assert (fc3.name, fc3.masked, fc3.sparsity) == ("fc3", 0, 0.0)


def test_layer_sparsity_rejects_masks_naming_no_parameter():
    model = make("lenet5")
    with pytest.raises(InvalidParameterError, match="'fc9.weight'"):
        layer_sparsity(model, {"fc9.weight": torch.ones(3)})


# --------------------------------------------------------------------------- weight pruning


def test_global_l1_weight_pruning_thins_every_layer():
    model = make("lenet5")
    check = weight_pruning_thins_every_layer(model, l1_unstructured(model, 0.5))
    assert check.holds and check.violations == ()
    assert check.method == "weight" and all(r.sparsity > 0 for r in check.layers)


def test_a_layer_left_untouched_by_global_pruning_is_reported():
    # A genuine refutation of the kind CLAIMS.md warns of: fc3's weights are so large that
    # global pruning at 10 % takes all its cuts elsewhere.
    model = make("lenet5")
    with torch.no_grad():
        model.fc3.weight.mul_(1e3)
    check = weight_pruning_thins_every_layer(model, l1_unstructured(model, 0.1))
    assert not check.holds
    assert len(check.violations) == 1 and "'fc3'" in check.violations[0] and "linear" in check.violations[0]


def test_unpruned_masks_violate_for_every_layer():
    model = make("lenet5")
    check = weight_pruning_thins_every_layer(model, l1_unstructured(model, 0.0))
    assert len(check.violations) == len(check.layers) == 5


# --------------------------------------------------------------------------- channel pruning


@pytest.mark.parametrize("name, conv, head, per_channel", [
    ("lenet5", "conv2", "fc1", 25),          # 5×5 pool then flatten
    ("vgg11", "features.25", "classifier.0", 1),  # global pool
])
def test_conv_channel_pruning_spares_linear_and_reports_the_coupling(name, conv, head, per_channel):
    model, masks = channel_case(name)
    check = channel_pruning_spares_linear(model, masks, example_inputs=inputs(name))
    assert check.holds, check.violations
    assert check.method == "channel"

    removed = int((masks[f"{conv}.weight"].flatten(1) == 0).all(1).sum())  # the last conv's removed filters
    assert removed > 0
    head_module = dict(model.named_modules())[head]
    assert check.coupled == CoupledColumns(
        conv=conv, linear=head, channels=dict(model.named_modules())[conv].out_channels,
        channels_removed=removed, columns_removed=removed * per_channel,
        parameters_removed=removed * per_channel * head_module.out_features,
    )
    # the coupled columns are exactly what the masks zero in the head, and what physical removal removes
    head_record = next(r for r in check.layers if r.name == head)
    assert head_record.masked == check.coupled.parameters_removed
    small = physically_remove(model, masks, inputs(name))
    assert dict(small.named_modules())[head].in_features == head_module.in_features - check.coupled.columns_removed
    assert all(r.masked == 0 for r in check.layers if r.kind == "linear" and r.name != head)


def test_conv_layers_are_thinned_by_channel_pruning():
    model, masks = channel_case("lenet5")
    check = channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    assert any(r.sparsity > 0 for r in check.layers if r.kind == "conv")


def test_a_mask_on_a_linear_layer_under_channel_pruning_is_a_violation():
    model, masks = channel_case("lenet5")
    assert "fc2.weight" not in masks and "fc3.weight" not in masks  # no coupled dim: left out
    masks["fc3.weight"] = torch.ones_like(model.fc3.weight)
    masks["fc3.weight"][0, 0] = 0.0            # a stray classifier weight
    masks["fc2.weight"] = torch.ones_like(model.fc2.weight)
    masks["fc2.weight"][3, :] = 0.0            # a whole hidden unit
    check = channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    assert not check.holds
    assert len(check.violations) == 2
    fc2, fc3 = sorted(check.violations, key=lambda v: v.split("'")[1])
    assert "'fc2'" in fc2 and "120 masked weights" in fc2 and "whole output units removed: 1" in fc2
    assert "'fc3'" in fc3 and "1 masked weights" in fc3


def test_masking_the_head_beyond_the_coupled_columns_is_a_violation():
    model, masks = channel_case("lenet5")
    check = channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    kept_column = int(masks["fc1.weight"].ne(0).any(0).nonzero()[0])
    masks["fc1.weight"][:, kept_column] = 0.0
    again = channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    assert again.coupled == check.coupled  # the coupling comes from the conv's channels
    assert len(again.violations) == 1 and "'fc1'" in again.violations[0]
    assert f"{model.fc1.out_features} masked weights" in again.violations[0]


def test_channel_pruning_of_hidden_linear_units_is_reported():
    # Without ignoring them, the project's channel pruning also removes hidden FC units (neurons):
    # the check reports those layers and the Linear layers whose inputs they feed (coupled columns).
    model = make("lenet5")
    masks = channel_masks(model, 0.3, example_inputs=inputs("lenet5"))
    check = channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    pruned_units = {n for n in ("fc1", "fc2") if (masks[f"{n}.weight"] == 0).all(1).any()}
    assert pruned_units, "the case needs a pruned hidden unit"
    consumer = {"fc1": "fc2", "fc2": "fc3"}
    assert {v.split("'")[1] for v in check.violations} == pruned_units | {consumer[n] for n in pruned_units}


def test_a_model_without_conv_has_no_coupling():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    masks = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    check = channel_pruning_spares_linear(model, masks, example_inputs=torch.randn(1, 6))
    assert check.holds and check.coupled is None


def test_the_check_restores_the_training_flag():
    model, masks = channel_case("lenet5")
    model.train()
    channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))
    assert model.training
    model.eval()


# --------------------------------------------------------------------------- dispatch


def test_pruning_structure_dispatches_by_method():
    model = make("lenet5")
    weight_masks = l1_unstructured(model, 0.5)
    assert pruning_structure(model, weight_masks, method="weight") == weight_pruning_thins_every_layer(
        model, weight_masks
    )
    model, masks = channel_case("lenet5")
    got = pruning_structure(model, masks, method="channel", example_inputs=inputs("lenet5"))
    assert got == channel_pruning_spares_linear(model, masks, example_inputs=inputs("lenet5"))


def test_pruning_structure_names_a_bad_method_and_missing_inputs():
    model = make("lenet5")
    with pytest.raises(InvalidParameterError, match="'method'.*'weight', 'channel'. Got 'filter' instead"):
        pruning_structure(model, {}, method="filter")
    with pytest.raises(InvalidParameterError, match="'example_inputs'.*Got None instead"):
        pruning_structure(model, {}, method="channel")
