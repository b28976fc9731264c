"""Split a registry model into an encoder (input → last feature map) and a head (feature map → logits).

Feature distillers need the boundary between a network's convolutional body
and its classifier: SimKD (:mod:`compress.training.simkd`) trains a student encoder
against the teacher's last feature map and reuses the teacher's head.

:func:`split_model` returns a :class:`ModelSplit` whose ``encoder`` and
``head`` are ``nn.Sequential`` containers around the model's *own* modules (no
copies, the model's attribute names kept), so ``head(encoder(x))`` is
``model(x)`` bit for bit and training the encoder trains the model. Where a
model's ``forward`` applies a function rather than a module (``torch.relu``,
``torch.flatten``, torchvision MobileNet-V2's functional pooling), the split
holds the equivalent parameter-free module (``nn.ReLU``, ``nn.Flatten``,
``nn.AdaptiveAvgPool2d``). ``feature_module`` names the module of the model
(as in ``model.named_modules()``) whose output is the encoder's output, for
forward hooks on the unsplit model.

Boundaries, per class (every architecture of :func:`compress.models.registry.list_models`):

========================  ==============================================  ====================================
class (registry names)    encoder (ends at ``feature_module``)            head
========================  ==============================================  ====================================
CifarResNet (resnet*)     conv1, bn1, ReLU, layer1-4 (``layer4``)          avgpool, flatten, fc
ResNet (tv_resnet*)       conv1, bn1, relu, maxpool, layer1-4 (``layer4``) avgpool, flatten, fc
CifarVGG (vgg*), VGG      features (``features``)                         avgpool, flatten, classifier
ClassicVGG (vgg*_fc)      features (``features``)                         avgpool, flatten, classifier
MobileNetV1               features (``features``)                         avgpool, flatten, classifier
MobileNetV2               features (``features``)                         global avg pool, flatten, classifier
EfficientNet              features (``features``)                         avgpool, flatten, classifier
TorchvisionDenseNet       features, relu (``relu``)                       avgpool, flatten, classifier
LeNet5 (lenet5)           conv1, ReLU, pool1, conv2, ReLU, pool2           avgpool(5), flatten, fc1, ReLU, fc2,
                          (``pool2``)                                     ReLU, fc3
========================  ==============================================  ====================================

A head's dropout (torchvision's MobileNet-V2, EfficientNet and VGG
classifiers) is part of the head: in train mode it drops, as in the unsplit
model. EfficientNet's stochastic depth is in its encoder.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from analysis._validation import invalid

from compress.models.cifar import CifarResNet, CifarVGG, ClassicVGG, LeNet5, MobileNetV1
from compress.models.imagenet import TorchvisionDenseNet

__all__ = ["SPLITTABLE", "ModelSplit", "split_model", "splitter_of"]


@dataclass(frozen=True)
class ModelSplit:
    """A model as ``head(encoder(x))``; both share the model's modules.

    Attributes
    ----------
    encoder : nn.Sequential
        Input → last feature map ``[N, C, H, W]``.
    head : nn.Sequential
        Feature map → logits ``[N, num_classes]``.
    feature_module : str
        Name in ``model.named_modules()`` of the module whose output is the encoder's output.
    """

    encoder: nn.Sequential
    head: nn.Sequential
    feature_module: str


def _seq(**modules: nn.Module) -> nn.Sequential:
    return nn.Sequential(OrderedDict(modules))


def _cifar_resnet(m: CifarResNet) -> ModelSplit:
    encoder = _seq(conv1=m.conv1, bn1=m.bn1, relu=nn.ReLU(), layer1=m.layer1, layer2=m.layer2,
                   layer3=m.layer3, layer4=m.layer4)
    return ModelSplit(encoder, _seq(avgpool=m.avgpool, flatten=nn.Flatten(1), fc=m.fc), "layer4")


def _tv_resnet(m: torchvision.models.ResNet) -> ModelSplit:
    encoder = _seq(conv1=m.conv1, bn1=m.bn1, relu=m.relu, maxpool=m.maxpool, layer1=m.layer1,
                   layer2=m.layer2, layer3=m.layer3, layer4=m.layer4)
    return ModelSplit(encoder, _seq(avgpool=m.avgpool, flatten=nn.Flatten(1), fc=m.fc), "layer4")


def _features_pool_classifier(m: nn.Module) -> ModelSplit:
    """CifarVGG, MobileNetV1, torchvision VGG and EfficientNet: ``classifier(flatten(avgpool(features(x))))``."""
    head = _seq(avgpool=m.avgpool, flatten=nn.Flatten(1), classifier=m.classifier)
    return ModelSplit(_seq(features=m.features), head, "features")


def _mobilenet_v2(m: torchvision.models.MobileNetV2) -> ModelSplit:
    # torchvision pools functionally (adaptive_avg_pool2d to 1×1); the module computes the same.
    head = _seq(avgpool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(1), classifier=m.classifier)
    return ModelSplit(_seq(features=m.features), head, "features")


def _tv_densenet(m: TorchvisionDenseNet) -> ModelSplit:
    head = _seq(avgpool=m.avgpool, flatten=nn.Flatten(1), classifier=m.classifier)
    return ModelSplit(_seq(features=m.features, relu=m.relu), head, "relu")


def _lenet5(m: LeNet5) -> ModelSplit:
    encoder = _seq(conv1=m.conv1, relu1=nn.ReLU(), pool1=m.pool1, conv2=m.conv2, relu2=nn.ReLU(), pool2=m.pool2)
    head = _seq(avgpool=m.avgpool, flatten=nn.Flatten(1), fc1=m.fc1, relu3=nn.ReLU(), fc2=m.fc2, relu4=nn.ReLU(),
                fc3=m.fc3)
    return ModelSplit(encoder, head, "pool2")


#: Model class → its splitter; the classes :func:`split_model` accepts (the registry's, all of them).
SPLITTABLE: dict[type[nn.Module], Callable[[nn.Module], ModelSplit]] = {
    CifarResNet: _cifar_resnet,
    torchvision.models.ResNet: _tv_resnet,
    CifarVGG: _features_pool_classifier,
    ClassicVGG: _features_pool_classifier,
    torchvision.models.VGG: _features_pool_classifier,
    MobileNetV1: _features_pool_classifier,
    torchvision.models.MobileNetV2: _mobilenet_v2,
    torchvision.models.EfficientNet: _features_pool_classifier,
    TorchvisionDenseNet: _tv_densenet,
    LeNet5: _lenet5,
}


def splitter_of(model: nn.Module):
    """The splitter of ``model``'s class, or of the nearest base class that has one (a thin torchvision ResNet
    is a subclass of torchvision's); None when there is none."""
    return next((SPLITTABLE[cls] for cls in type(model).__mro__ if cls in SPLITTABLE), None)


def split_model(model: nn.Module) -> ModelSplit:
    """Split ``model`` into encoder and head sharing its modules (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A model built by :func:`compress.models.registry.create_model` (its class is in :data:`SPLITTABLE`).

    Returns
    -------
    ModelSplit
        ``head(encoder(x))`` equals ``model(x)`` exactly, in the same mode.

    Raises
    ------
    InvalidParameterError
        For a model of another class (the message names the supported ones).
    """
    splitter = splitter_of(model)
    if splitter is None:
        names = ", ".join(cls.__name__ for cls in SPLITTABLE)
        raise invalid("model", "split_model",
                      f"a registry model (compress.models.registry.create_model) of class {names}", type(model).__name__)
    return splitter(model)
