"""torchvision's ImageNet architectures (the ``tv_`` models), adapted to small inputs and a width multiplier.

Built with ``weights=None`` (nothing is ever downloaded). Only the first conv
(for the input channels) and pools that would shrink a 1-pixel map to 0
(VGG's, DenseNet's transitions; replaced by ``nn.Identity``) change, so 8×8
inputs work. They take a ``width`` too, default 1 (torchvision's model,
unchanged): the same classes, modules and module names with every channel
count scaled — ResNet's planes (through its own ``_make_layer``), DenseNet's
growth rate and stem, EfficientNet's width multiplier, MobileNet-V2's, VGG's
convolution widths and classifier — so a thin copy of a paper model runs every
code path the full one does (the paper profile's dry run) at a fraction of its size.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from compress.models.sizing import can_downsample, check_width, conv_size, no_inplace, scale_channels

ModelFn = Callable[..., nn.Module]

__all__ = ["TorchvisionDenseNet", "tv_resnet18", "tv_resnet34", "tv_resnet50", "tv_resnet101", "tv_resnet152", "tv_mobilenet_v2", "tv_vgg11_bn", "tv_vgg11", "tv_vgg16", "tv_vgg19", "tv_densenet161", "tv_densenet169", "tv_densenet201", "tv_efficientnet_b0", "tv_efficientnet_b1", "tv_efficientnet_b2", "tv_efficientnet_b3", "tv_efficientnet_b4", "tv_efficientnet_b5"]


# --------------------------------------------------------------------------- torchvision (ImageNet)


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one taking ``in_channels`` (same geometry, torchvision init)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            break
    if module.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name), attr, new)


def _skip_small_pools(features: nn.Sequential, size: tuple[int, int]) -> None:
    """Replace VGG max-pools that would shrink a <2-pixel map to 0 by ``nn.Identity``.

    torchvision's VGG pools five times, which fails below 32 px inputs; its
    convs are 3×3 pad 1, so only the pools change the size.
    """
    for i, m in enumerate(features):
        if isinstance(m, nn.MaxPool2d):
            if can_downsample(size):
                size = (size[0] // 2, size[1] // 2)
            else:
                features[i] = nn.Identity()


def _skip_small_transition_pools(features: nn.Sequential, size: tuple[int, int]) -> None:
    """Replace DenseNet transition pools that would shrink a <2-pixel map to 0 by ``nn.Identity``.

    torchvision's DenseNet quarters the input in its stem (7×7 stride-2 conv and
    3×3 stride-2 max-pool, both padded, so a 1-pixel map stays 1) and halves it
    in each transition's 2×2 average pool: 28 px inputs go 7 → 3 → 1 → 0.
    """
    size = conv_size(conv_size(size, 2), 2)
    for name, module in features.named_children():
        if name.startswith("transition"):
            if can_downsample(size):
                size = (size[0] // 2, size[1] // 2)
            else:
                module.pool = nn.Identity()


class TorchvisionDenseNet(torchvision.models.DenseNet):
    """torchvision's DenseNet with its final ReLU and pool as modules (``relu``, ``avgpool``).

    torchvision's ``forward`` applies ``F.relu(..., inplace=True)`` to the output
    of ``features``: a forward hook on ``features`` (or ``features.norm5``)
    would see that output overwritten, and no module would output the last
    feature map. Same parameters, initialisation and arithmetic otherwise.
    """

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.relu(self.features(x))), 1))


# (growth_rate, block_config, num_init_features) of torchvision's densenet161/169/201.
_DENSENET_CFGS: dict[str, tuple[int, tuple[int, int, int, int], int]] = {
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}


def _tv_densenet(name: str, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    growth_rate, block_config, num_init_features = _DENSENET_CFGS[name]
    width = check_width(width, f"tv_{name}")
    model = TorchvisionDenseNet(scale_channels(growth_rate, width), block_config, scale_channels(num_init_features, width),
                                num_classes=num_classes)
    _replace_first_conv(model, in_shape[0])
    _skip_small_transition_pools(model.features, in_shape[1:])
    return no_inplace(model)


def _torchvision(builder: ModelFn, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    model = builder(weights=None, num_classes=num_classes)
    _replace_first_conv(model, in_shape[0])
    return no_inplace(model)


class _ScaledTorchvisionResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage's planes × ``width`` (its own ``_make_layer`` builds the stages).

    torchvision fixes the planes (64, 128, 256, 512) in ``__init__``; scaling them where ``_make_layer`` receives
    them keeps every module, name and block of the definition. The stem and the classifier, built around the
    fixed 64 and 512, are rebuilt at the scaled widths with torchvision's initialisation.
    """

    def __init__(self, block, layers, *, num_classes: int, width: float):
        self._width = width
        super().__init__(block, layers, num_classes=num_classes)
        stem = scale_channels(64, width)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = self._norm_layer(stem)
        self.fc = nn.Linear(scale_channels(512, width) * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # the first stage: its input is the (scaled) stem
            self.inplanes = scale_channels(64, self._width)
        return super()._make_layer(block, scale_channels(planes, self._width), blocks, stride, dilate)


_TV_RESNETS = {"resnet18": ("BasicBlock", [2, 2, 2, 2]), "resnet34": ("BasicBlock", [3, 4, 6, 3]),
               "resnet50": ("Bottleneck", [3, 4, 6, 3]), "resnet101": ("Bottleneck", [3, 4, 23, 3]),
               "resnet152": ("Bottleneck", [3, 8, 36, 3])}


def _tv_resnet(name: str, num_classes: int, in_shape: tuple[int, int, int], width: float) -> nn.Module:
    width = check_width(width, f"tv_{name}")
    if width == 1.0:
        return _torchvision(getattr(torchvision.models, name), num_classes, in_shape)
    block_name, layers = _TV_RESNETS[name]
    model = _ScaledTorchvisionResNet(getattr(torchvision.models.resnet, block_name), layers,
                                     num_classes=num_classes, width=width)
    _replace_first_conv(model, in_shape[0])
    return no_inplace(model)


# (width_mult, depth_mult, dropout) of torchvision's efficientnet_b0 ... b5 builders.
_EFFICIENTNETS = {"b0": (1.0, 1.0, 0.2), "b1": (1.0, 1.1, 0.2), "b2": (1.1, 1.2, 0.3), "b3": (1.2, 1.4, 0.3),
                  "b4": (1.4, 1.8, 0.4), "b5": (1.6, 2.2, 0.4)}


def _tv_efficientnet(variant: str, num_classes: int, in_shape: tuple[int, int, int], width: float) -> nn.Module:
    width = check_width(width, f"tv_efficientnet_{variant}")
    if width == 1.0:
        return _torchvision(getattr(torchvision.models, f"efficientnet_{variant}"), num_classes, in_shape)
    # torchvision builds an EfficientNet's blocks only through its private _efficientnet_conf (the public
    # builders fix the width); the block table stays torchvision's, only the width multiplier is scaled.
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    width_mult, depth_mult, dropout = _EFFICIENTNETS[variant]
    setting, last_channel = _efficientnet_conf(f"efficientnet_{variant}", width_mult=width_mult * width,
                                               depth_mult=depth_mult)
    model = EfficientNet(setting, dropout, last_channel=last_channel, num_classes=num_classes)
    _replace_first_conv(model, in_shape[0])
    return no_inplace(model)


def _tv_vgg_scaled(cfg: str, num_classes: int, in_shape: tuple[int, int, int], width: float,
                   batch_norm: bool) -> nn.Module:
    """torchvision's VGG class and ``make_layers`` at ``width``; the classifier's three layers rebuilt to the
    scaled features and hidden width (torchvision fixes 512·7·7 → 4096 → 4096), initialised as torchvision does."""
    from torchvision.models.vgg import VGG, cfgs, make_layers

    scaled = [v if v == "M" else scale_channels(int(v), width) for v in cfgs[cfg]]
    model = VGG(make_layers(scaled, batch_norm=batch_norm), num_classes=num_classes)
    hidden, last = scale_channels(4096, width), scaled[-2]
    for index, (fan_in, fan_out) in zip((0, 3, 6), ((last * 7 * 7, hidden), (hidden, hidden), (hidden, num_classes))):
        layer = nn.Linear(fan_in, fan_out)
        nn.init.normal_(layer.weight, 0, 0.01)
        nn.init.constant_(layer.bias, 0)
        model.classifier[index] = layer
    _replace_first_conv(model, in_shape[0])
    return no_inplace(model)


def tv_resnet18(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-18, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet18", num_classes, in_shape, width)


def tv_resnet34(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-34, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet34", num_classes, in_shape, width)


def tv_resnet50(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-50, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet50", num_classes, in_shape, width)


def tv_resnet101(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-101, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet101", num_classes, in_shape, width)


def tv_resnet152(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-152, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet152", num_classes, in_shape, width)


def tv_mobilenet_v2(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision MobileNet-V2, ImageNet definition (stride-2 stem, stride 32), no weights."""
    width = check_width(width, "tv_mobilenet_v2")
    if width == 1.0:
        return _torchvision(torchvision.models.mobilenet_v2, num_classes, in_shape)
    return _torchvision(lambda **kw: torchvision.models.mobilenet_v2(width_mult=width, **kw), num_classes, in_shape)


def tv_vgg11_bn(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-11-BN, ImageNet definition (4096-wide head), no weights."""
    return _tv_vgg(torchvision.models.vgg11_bn, num_classes, in_shape, width, "A", batch_norm=True)


def _tv_vgg(builder: ModelFn, num_classes: int, in_shape: tuple[int, int, int], width: float, cfg: str, *,
            batch_norm: bool = False) -> nn.Module:
    width = check_width(width, f"tv_{builder.__name__}")
    model = (_torchvision(builder, num_classes, in_shape) if width == 1.0
             else _tv_vgg_scaled(cfg, num_classes, in_shape, width, batch_norm))
    _skip_small_pools(model.features, in_shape[1:])
    return model


def tv_vgg11(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-11 (no BatchNorm: the SH paper's model), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg11, num_classes, in_shape, width, "A")


def tv_vgg16(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-16 (no BatchNorm), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg16, num_classes, in_shape, width, "D")


def tv_vgg19(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-19 (no BatchNorm), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg19, num_classes, in_shape, width, "E")


def tv_densenet161(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-161, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet161", num_classes, in_shape, width)


def tv_densenet169(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-169, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet169", num_classes, in_shape, width)


def tv_densenet201(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-201, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet201", num_classes, in_shape, width)


def tv_efficientnet_b0(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B0, ImageNet definition (stride 32, dropout 0.2), no weights."""
    return _tv_efficientnet("b0", num_classes, in_shape, width)


def tv_efficientnet_b1(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B1, ImageNet definition (stride 32, dropout 0.2), no weights."""
    return _tv_efficientnet("b1", num_classes, in_shape, width)


def tv_efficientnet_b2(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B2, ImageNet definition (stride 32, dropout 0.3), no weights."""
    return _tv_efficientnet("b2", num_classes, in_shape, width)


def tv_efficientnet_b3(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B3, ImageNet definition (stride 32, dropout 0.3), no weights."""
    return _tv_efficientnet("b3", num_classes, in_shape, width)


def tv_efficientnet_b4(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B4, ImageNet definition (stride 32, dropout 0.4), no weights."""
    return _tv_efficientnet("b4", num_classes, in_shape, width)


def tv_efficientnet_b5(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B5, ImageNet definition (stride 32, dropout 0.4), no weights."""
    return _tv_efficientnet("b5", num_classes, in_shape, width)
