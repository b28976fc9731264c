"""The CIFAR-style architectures: LeNet-5, ResNets, VGGs (with BN, or classic with FC layers), MobileNets.

*CIFAR-style variants*: a 3×3 stride-1 stem, no stem max-pool, and adaptive
average pooling before the classifier, so one definition serves sklearn
digits (1×8×8), MNIST (1×28×28) and CIFAR (3×32×32). Each takes a ``width``
channel multiplier so small profiles can train narrow networks; every
downsampling step follows the spatial rule of :mod:`compress.models.sizing`.

All activations are out-of-place and no activation module is reused within a
block: forward hooks that keep a module's output (CKA, activation statistics)
would otherwise see it overwritten by a later in-place ReLU.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import nn
from torchvision.ops import Conv2dNormActivation

from analysis._validation import check_choice, invalid
from compress.models.sizing import (can_downsample, check_width, conv_size, init_cifar, make_divisible, no_inplace,
                                    scale_channels)

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "CifarVGG", "ClassicVGG", "LeNet5", "MobileNetV1", "lenet5", "resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "vgg19", "vgg11_fc", "vgg16_fc", "vgg19_fc", "mobilenet_v1", "mobilenet_v2"]


# --------------------------------------------------------------------------- LeNet-5


class LeNet5(nn.Module):
    """LeNet-5 (ReLU, max-pool) whose padding adapts to the input size.

    Each 5×5 conv pads 2 ('same') when its input is smaller than in the classic
    network (32 px for ``conv1``, 14 px for ``conv2``) and 0 otherwise. That
    gives exactly the classic LeNet-5 on CIFAR (32 px) and the classic padded
    MNIST variant (28 px), while an 8×8 digit goes 8→8→4→4→2 instead of
    failing at ``conv2``. The pooling before ``fc1`` is adaptive to 5×5 (not
    global), so ``fc1`` keeps its classic 400 inputs and the fully connected
    layers keep their share of the weights (an identity on 28/32 px inputs).
    """

    def __init__(self, *, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        in_ch, h, w = in_shape
        c1, c2, f1, f2 = (scale_channels(c, width) for c in (6, 16, 120, 84))
        size = (h, w)
        pad1 = 0 if min(size) >= 32 else 2
        self.conv1 = nn.Conv2d(in_ch, c1, 5, padding=pad1)
        size = (size[0] + 2 * pad1 - 4, size[1] + 2 * pad1 - 4)
        self.pool1, size = self._pool(size)
        pad2 = 0 if min(size) >= 14 else 2
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=pad2)
        size = (size[0] + 2 * pad2 - 4, size[1] + 2 * pad2 - 4)
        self.pool2, size = self._pool(size)
        self.avgpool = nn.AdaptiveAvgPool2d(5)
        self.fc1 = nn.Linear(c2 * 25, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, num_classes)

    @staticmethod
    def _pool(size: tuple[int, int]) -> tuple[nn.Module, tuple[int, int]]:
        if can_downsample(size):
            return nn.MaxPool2d(2), (size[0] // 2, size[1] // 2)
        return nn.Identity(), size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.flatten(self.avgpool(x), 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


# --------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """ResNet basic block with torchvision's module names (conv1, bn1, conv2, bn2, downsample)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet bottleneck (stride on the 3×3 conv, as torchvision's v1.5), torchvision names."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + identity)


class CifarResNet(nn.Module):
    """ResNet: 3×3 stride-1 stem, no max-pool; stages 2-4 downsample by the spatial rule."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int,
        in_shape: tuple[int, int, int],
        width: float = 1.0,
    ):
        super().__init__()
        in_ch, h, w = in_shape
        planes = [scale_channels(c, width) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_ch, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.inplanes = planes[0]
        size = (h, w)
        for i, (p, n) in enumerate(zip(planes, layers)):
            stride = 2 if i > 0 and can_downsample(size) else 1
            size = conv_size(size, stride)
            setattr(self, f"layer{i + 1}", self._make_layer(block, p, n, stride))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        init_cifar(self)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------- VGG

_VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def _vgg_features(cfg: Sequence[int | str], in_shape: tuple[int, int, int], width: float, *, batch_norm: bool,
                  min_map: int = 1) -> tuple[nn.Sequential, int]:
    """VGG's ``features`` (conv 3×3, [BatchNorm], ReLU per number; max-pool per 'M') and its output channels.

    A pool follows the spatial rule, and becomes ``nn.Identity`` too where it would bring the map below
    ``min_map`` pixels.
    """
    channels, h, w = in_shape
    size = (h, w)
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            if min(size) // 2 >= min_map and can_downsample(size):
                layers.append(nn.MaxPool2d(2))
                size = (size[0] // 2, size[1] // 2)
            else:
                layers.append(nn.Identity())
        else:
            out = scale_channels(int(v), width)
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
    return nn.Sequential(*layers), channels


class CifarVGG(nn.Module):
    """VGG with BatchNorm; ``features`` (pools follow the spatial rule), global pool, one Linear."""

    def __init__(self, cfg: Sequence[int | str], *, num_classes: int,
                 in_shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        self.features, channels = _vgg_features(cfg, in_shape, width, batch_norm=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(channels, num_classes))
        init_cifar(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class ClassicVGG(nn.Module):
    """VGG in torchvision's layout with its real three-layer classifier, at any width and input size.

    ``features`` is torchvision's ``make_layers`` sequence (conv, [BatchNorm],
    ReLU, max-pool 'M'), so module names are torchvision's (VGG-11 without
    BatchNorm: ``features.0, .3, .6, .8, .11, .13, .16, .18``); ``avgpool``
    pools to ``pool_size`` squared; ``classifier`` is Linear(c·p², h), ReLU,
    Dropout, Linear(h, h), ReLU, Dropout, Linear(h, classes)
    (``classifier.0/.3/.6``): most parameters live there, as in the real VGG
    (≈ 93 % of VGG-11's with a 100-class head). A max-pool that would bring
    the map below ``min_map`` pixels becomes ``nn.Identity`` (so a Grad-CAM
    on 8×8 digits can keep an 8×8 last map). Initialisation as torchvision's
    VGG: Kaiming-normal (fan-out) convs, N(0, 0.01) linears, zero biases.
    """

    def __init__(self, cfg: Sequence[int | str], *, num_classes: int, in_shape: tuple[int, int, int],
                 width: float = 1.0, fc_width: int = 4096, batch_norm: bool = False, min_map: int = 1,
                 pool_size: int = 7, dropout: float = 0.5):
        super().__init__()
        self.features, channels = _vgg_features(cfg, in_shape, width, batch_norm=batch_norm, min_map=min_map)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool_size * pool_size, fc_width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --------------------------------------------------------------------------- MobileNets

# (out_channels, stride) of each depthwise-separable block; CIFAR strides.
_MOBILENET_V1_CFG = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                     (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """MobileNet-V1: 3×3 stride-1 stem, 13 depthwise-separable blocks, global pool, Linear."""

    def __init__(self, *, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        in_ch, h, w = in_shape
        size = (h, w)
        channels = make_divisible(32 * width)
        layers: list[nn.Module] = [Conv2dNormActivation(in_ch, channels, 3, 1, inplace=False)]
        for out, stride in _MOBILENET_V1_CFG:
            stride = stride if can_downsample(size) else 1
            size = conv_size(size, stride)
            out = make_divisible(out * width)
            layers.append(nn.Sequential(
                Conv2dNormActivation(channels, channels, 3, stride, groups=channels, inplace=False),
                Conv2dNormActivation(channels, out, 1, inplace=False),
            ))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(channels, num_classes))
        init_cifar(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _cifar_mobilenet_v2(
    num_classes: int, in_shape: tuple[int, int, int], width: float
) -> nn.Module:
    """torchvision's MobileNetV2 with CIFAR strides: stride-1 stem and stride-1 second stage."""
    in_ch, h, w = in_shape
    size = (h, w)
    setting = []
    # [expansion t, channels c, repeats n, stride s]; torchvision's has s=2 for c=24.
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
                       [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
        s = s if can_downsample(size) else 1
        size = conv_size(size, s)
        setting.append([t, c, n, s])
    model = torchvision.models.MobileNetV2(
        num_classes=num_classes, width_mult=width, inverted_residual_setting=setting
    )
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_ch, stem.out_channels, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return no_inplace(model)


# --------------------------------------------------------------------------- the architectures (listed in compress.models.registry)


def lenet5(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """LeNet-5 (conv1, conv2, fc1-fc3; ReLU), padding adapted so 8×8 inputs work."""
    return LeNet5(num_classes=num_classes, in_shape=in_shape, width=check_width(width, "lenet5"))


def resnet18(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-18, CIFAR-style (3×3 stride-1 stem, no max-pool), BasicBlock [2, 2, 2, 2]."""
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_shape=in_shape,
                       width=check_width(width, "resnet18"))


def resnet34(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-34, CIFAR-style (3×3 stride-1 stem, no max-pool), BasicBlock [3, 4, 6, 3]."""
    return CifarResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_shape=in_shape,
                       width=check_width(width, "resnet34"))


def resnet50(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-50, CIFAR-style (3×3 stride-1 stem, no max-pool), Bottleneck [3, 4, 6, 3]."""
    return CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_shape=in_shape,
                       width=check_width(width, "resnet50"))


def vgg11(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-11 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg11"], num_classes=num_classes, in_shape=in_shape,
                    width=check_width(width, "vgg11"))


def vgg16(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-16 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg16"], num_classes=num_classes, in_shape=in_shape,
                    width=check_width(width, "vgg16"))


def vgg19(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-19 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg19"], num_classes=num_classes, in_shape=in_shape,
                    width=check_width(width, "vgg19"))


def _classic_vgg(name: str, num_classes: int, in_shape: tuple[int, int, int], width: float, fc_width: int | None,
                 batch_norm: bool, min_map: int) -> nn.Module:
    width = check_width(width, name)
    if fc_width is None:
        fc_width = scale_channels(4096, width)
    if isinstance(fc_width, bool) or not isinstance(fc_width, int) or fc_width < 1:
        raise invalid("fc_width", name, "a positive int (the classifier's hidden units)", fc_width)
    if isinstance(min_map, bool) or not isinstance(min_map, int) or min_map < 1:
        raise invalid("min_map", name, "a positive int (pools never bring the map below it)", min_map)
    check_choice("batch_norm", name, batch_norm, (False, True))
    return ClassicVGG(_VGG_CFGS[name.removesuffix("_fc")], num_classes=num_classes, in_shape=in_shape, width=width,
                      fc_width=fc_width, batch_norm=batch_norm, min_map=min_map)


def vgg11_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-11 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg11_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


def vgg16_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-16 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg16_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


def vgg19_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-19 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg19_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


def mobilenet_v1(*, num_classes: int, in_shape: tuple[int, int, int],
                 width: float = 1.0) -> nn.Module:
    """MobileNet-V1, CIFAR-style (stride-1 stem, overall stride 16), widths in multiples of 8."""
    return MobileNetV1(num_classes=num_classes, in_shape=in_shape,
                       width=check_width(width, "mobilenet_v1"))


def mobilenet_v2(*, num_classes: int, in_shape: tuple[int, int, int],
                 width: float = 1.0) -> nn.Module:
    """MobileNet-V2 (torchvision's blocks), CIFAR-style (stride-1 stem, overall stride 8)."""
    return _cifar_mobilenet_v2(num_classes, in_shape, check_width(width, "mobilenet_v2"))
