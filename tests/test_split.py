"""Tests for compress.models.split: every registry model as head(encoder(x)), sharing the model's modules."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis._validation import InvalidParameterError
from compress.models.registry import create_model, list_models
from compress.models.split import split_model

SHAPES = {"cifar": (3, 32, 32), "digits": (1, 8, 8)}


def _models():
    """The registry, tv_vgg11_bn (a 4096-wide head: seconds per build on one core) marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n == "tv_vgg11_bn" else n for n in list_models()]


def _model(name: str, in_shape, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    overrides = {} if name.startswith("tv_") else {"width": 0.25}
    return create_model(name, 10, in_shape, **overrides)


def _x(in_shape, n: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, *in_shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", _models())
def test_split_is_the_model_exactly_in_both_modes(name, shape):
    in_shape = SHAPES[shape]
    model = _model(name, in_shape)
    split = split_model(model)
    x = _x(in_shape, n=2)
    model.eval()
    assert torch.equal(split.head(split.encoder(x)), model(x))
    model.train()  # batch statistics; the heads' dropout draws the same numbers from the same seed
    torch.manual_seed(5)
    whole = model(x)
    torch.manual_seed(5)
    assert torch.equal(split.head(split.encoder(x)), whole)


@pytest.mark.parametrize("name", _models())
def test_split_shares_every_parameter_once_and_names_the_feature_module(name):
    in_shape = SHAPES["digits"]
    model = _model(name, in_shape).eval()
    split = split_model(model)
    enc, head = [id(p) for p in split.encoder.parameters()], [id(p) for p in split.head.parameters()]
    assert not set(enc) & set(head)
    assert sorted(enc + head) == sorted(id(p) for p in model.parameters())  # the model's own tensors: no copy, none left out
    seen = {}
    module = dict(model.named_modules())[split.feature_module]
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    x = _x(in_shape, n=2)
    model(x)
    handle.remove()
    assert torch.equal(seen["out"], split.encoder(x))
    assert seen["out"].dim() == 4


def test_split_of_an_unknown_model_names_the_supported_classes():
    with pytest.raises(InvalidParameterError) as info:
        split_model(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    msg = str(info.value)
    assert msg.startswith("The 'model' parameter of split_model must be a registry model")
    for cls in ("CifarResNet", "CifarVGG", "MobileNetV1", "MobileNetV2", "LeNet5"):
        assert cls in msg
    assert msg.endswith("Got 'Sequential' instead.")


@pytest.mark.parametrize("name", [n for n in list_models() if n.startswith("tv_")])
def test_a_thin_torchvision_model_splits_like_the_full_one(name):
    """The paper profile's dry run trains torchvision models at a fraction of their width (a subclass where
    torchvision fixes the widths): they split exactly, at the same feature module."""
    in_shape = SHAPES["cifar"]
    torch.manual_seed(0)
    thin = create_model(name, 10, in_shape, width=0.125).eval()
    split = split_model(thin)
    x = _x(in_shape, n=2)
    assert torch.equal(split.head(split.encoder(x)), thin(x))
    with torch.device("meta"):
        full = create_model(name, 10, in_shape)
    assert split.feature_module == split_model(full).feature_module
