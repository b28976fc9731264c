"""The models of Malihi & Heidemann's ten teacher→student pairs (CLAIMS.md "MH", Table 1) at CIFAR-100 size.

Every model of the pairs builds for 100 classes and 3×32×32 inputs and takes
an SGD step; every pair makes a SimKD student (:func:`compress.training.simkd.simkd_student`).
Split exactness of each model is :mod:`tests.test_split`'s (it runs over the
registry). "MobileNet" is MobileNet-V1: the paper's 0.42×10^7 parameters are
V1's 4.2 M. Models are built once per module (the largest, ResNet-152, takes
about a second on one core).
"""
from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from compress.measure.accounting import count_parameters
from compress.models.registry import create_model
from compress.training.simkd import simkd_student

IN_SHAPE = (3, 32, 32)
NUM_CLASSES = 100
#: Table 1's pairs, (teacher, student).
PAIRS = [("tv_resnet101", "tv_resnet50"), ("tv_resnet152", "tv_resnet34"), ("tv_resnet101", "tv_resnet18"),
         ("tv_densenet169", "mobilenet_v1"), ("tv_densenet161", "tv_densenet169"),
         ("tv_densenet161", "tv_densenet201"), ("tv_efficientnet_b1", "tv_efficientnet_b0"),
         ("tv_efficientnet_b3", "tv_efficientnet_b2"), ("tv_efficientnet_b3", "mobilenet_v1"),
         ("tv_efficientnet_b5", "tv_efficientnet_b4")]
MODELS = sorted({name for pair in PAIRS for name in pair})
#: MobileNet-V1 at 1000 classes (Howard et al. 2017, Table 1: 4.2 M): the trainable parameters
#: of Keras's ``MobileNet(alpha=1.0)`` (4,253,864 in all less 21,888 BN moving statistics).
MOBILENET_V1_IMAGENET_PARAMS = 4_231_976


def _build(name: str, num_classes: int = NUM_CLASSES) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes, IN_SHAPE)


@pytest.fixture(scope="module")
def paper_model():
    """``paper_model(name)``: the registry model ``name`` (100 classes, 3×32×32, seed 0), built once per module."""
    built: dict[str, nn.Module] = {}

    def get(name: str) -> nn.Module:
        if name not in built:
            built[name] = _build(name)
        return built[name]

    return get


def _cifar_batch(n: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *IN_SHAPE, generator=gen), torch.randint(0, NUM_CLASSES, (n,), generator=gen)


@pytest.mark.parametrize("name", MODELS)
def test_paper_model_takes_one_sgd_step_on_cifar100_shaped_data(name, paper_model):
    # A copy: one step on batch 2 blows up the 1×1-map BatchNorms of the ImageNet ResNets (gradients ~1e5),
    # which would leave the shared model's eval outputs NaN.
    model = copy.deepcopy(paper_model(name)).train()
    x, y = _cifar_batch()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(loss)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert sum(changed) >= 0.5 * len(changed)


@pytest.mark.parametrize(("teacher", "student"), PAIRS)
def test_paper_pair_makes_a_simkd_student(teacher, student, paper_model):
    composite = simkd_student(paper_model(student), paper_model(teacher), IN_SHAPE).eval()
    with torch.no_grad():
        out = composite(_cifar_batch()[0])
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()


@pytest.mark.parametrize(("teacher", "student"), PAIRS)
def test_paper_teacher_is_larger_than_its_student(teacher, student):
    with torch.device("meta"):
        assert count_parameters(_build(teacher)) > count_parameters(_build(student))


@pytest.mark.parametrize("name", MODELS)
def test_imagenet_parameter_count_matches_the_reference(name):
    # The paper's Table 1 counts are ImageNet (1000-class) sizes; torchvision records its models' counts.
    with torch.device("meta"):
        ours = count_parameters(_build(name, num_classes=1000))
    if name == "mobilenet_v1":
        expected = MOBILENET_V1_IMAGENET_PARAMS
    else:
        weights = torchvision.models.get_model_weights(name.removeprefix("tv_"))
        expected = weights.IMAGENET1K_V1.meta["num_params"]
    assert ours == expected
