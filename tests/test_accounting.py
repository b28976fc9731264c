"""Tests for compress.measure.accounting: parameter, non-zero and byte counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis._validation import InvalidParameterError
from compress.measure.accounting import account, count_nonzero, count_parameters, model_bytes
from compress.models.registry import create_model
from compress.prune.unstructured import l1_unstructured


def _tiny() -> nn.Module:
    # Linear(3, 2): 6 + 2 = 8; Conv2d(1, 2, 2): 2·1·2·2 + 2 = 10; BatchNorm1d(2): 2 + 2 (buffers not counted)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Conv2d(1, 2, 2))


def test_count_parameters_hand_computed():
    assert count_parameters(nn.Linear(3, 2)) == 8
    assert count_parameters(_tiny()) == 8 + 4 + 10


def test_count_parameters_includes_frozen_parameters():
    m = _tiny()
    m[0].weight.requires_grad_(False)
    assert count_parameters(m) == 22


def test_lenet5_classic_parameter_count():
    # Classic LeNet-5 on 32x32x3 (CIFAR): 456 + 2416 + 48120 + 10164 + 850 = 62006.
    assert count_parameters(create_model("lenet5", 10, (3, 32, 32))) == 62006


def test_count_nonzero_hand_computed():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, -3.0]]))
        lin.bias.copy_(torch.tensor([0.0, 0.5]))
    assert count_nonzero(lin) == 4
    assert count_parameters(lin) == 8


def test_model_bytes_fp32_and_bit_widths():
    lin = nn.Linear(3, 2)  # 8 parameters
    assert model_bytes(lin) == 32
    assert model_bytes(lin, bits=16) == 16
    assert model_bytes(lin, bits=8) == 8
    assert model_bytes(lin, bits=4) == 4
    assert model_bytes(lin, bits=3) == 3  # 24 bits
    assert model_bytes(nn.Linear(3, 1), bits=3) == 2  # 12 bits round up to 2 bytes


def test_fp32_to_int8_sparsity_is_four():
    m = create_model("lenet5", 10, (1, 8, 8))
    assert model_bytes(m) == 4 * model_bytes(m, bits=8)
    assert model_bytes(m) == 4 * count_parameters(m)


def test_default_bits_follow_each_tensors_dtype():
    lin = nn.Linear(3, 2).half()
    assert model_bytes(lin) == 16
    assert model_bytes(lin, bits=32) == 32


def test_sparse_bytes_count_values_and_32_bit_indices():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, -3.0]]))
        lin.bias.copy_(torch.tensor([0.0, 0.5]))
    # 4 non-zeros · (32 value bits + 32 index bits) = 256 bits = 32 bytes
    assert model_bytes(lin, sparse=True) == 32
    # 4 · (8 + 32) = 160 bits = 20 bytes
    assert model_bytes(lin, bits=8, sparse=True) == 20


@pytest.mark.parametrize("sparsity", [0.3, 0.7, 0.9])
def test_pruned_model_counts(sparsity):
    torch.manual_seed(0)
    m = create_model("lenet5", 10, (1, 8, 8))
    total = count_parameters(m)
    assert count_nonzero(m) == total
    masks = l1_unstructured(m, sparsity)
    removed = sum(int((mk == 0).sum()) for mk in masks.values())
    assert count_parameters(m) == total  # pruning zeroes, it does not remove entries
    assert count_nonzero(m) == total - removed
    assert model_bytes(m, bits=8, sparse=True) == (total - removed) * 5


def test_sparse_storage_pays_off_only_above_half_sparsity_for_fp32():
    # fp32 value + 32-bit index = 2x per non-zero: sparse < dense iff more than half are zero.
    torch.manual_seed(1)
    low, high = create_model("lenet5", 10, (1, 8, 8)), create_model("lenet5", 10, (1, 8, 8))
    l1_unstructured(low, 0.3)
    l1_unstructured(high, 0.8)
    assert model_bytes(low, sparse=True) > model_bytes(low)
    assert model_bytes(high, sparse=True) < model_bytes(high)


def test_per_parameter_bits_hand_computed():
    lin = nn.Linear(3, 2)  # weight 6 entries, bias 2
    assert model_bytes(lin, bits={"weight": 8}) == 6 + 2 * 4  # bias keeps its float32 width
    assert model_bytes(lin, bits={"weight": 4, "bias": 16}) == 3 + 4
    assert model_bytes(lin, bits={"weight": 8, "bias": 8}) == model_bytes(lin, bits=8)


@pytest.mark.parametrize("bits", [0, -8, 2.5, True, {"weight": 0}])
def test_bad_bits_are_rejected(bits):
    with pytest.raises(InvalidParameterError) as info:
        model_bytes(nn.Linear(3, 2), bits=bits)
    assert str(info.value).startswith("The 'bits' parameter of model_bytes must be a positive integer")


def test_account_summarizes_the_three_counts():
    torch.manual_seed(2)
    m = create_model("lenet5", 10, (1, 8, 8))
    l1_unstructured(m, 0.5)
    summary = account(m)
    assert summary == {"parameters": count_parameters(m), "nonzero": count_nonzero(m), "bytes": model_bytes(m)}
    assert summary["nonzero"] < summary["parameters"] and summary["bytes"] == 4 * summary["parameters"]
    assert account(m, bits=8)["bytes"] == summary["parameters"]
