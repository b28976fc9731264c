"""Model registry: CIFAR-style variants of the usual architectures, plus torchvision's.

Every architecture is a short function registered with :func:`register_model`;
:func:`create_model` is the one entry point (timm style). The non-``tv_``
models are *CIFAR-style variants*: a 3×3 stride-1 stem, no stem max-pool, and
adaptive average pooling before the classifier, so one definition serves
sklearn digits (1×8×8), MNIST (1×28×28) and CIFAR (3×32×32). Each takes a
``width`` channel multiplier so small profiles can train narrow networks.

Spatial rule, shared by every CIFAR-style model: a downsampling step (stride-2
conv or 2×2 max-pool) is applied only while both spatial dims of the map are
at least 2; otherwise it becomes stride 1 (or an ``nn.Identity`` in place of
the pool, so module indices do not depend on the input size). A 2×2 pool on a
1-pixel map would give 0 pixels, and a stride-2 conv there only wastes compute.

The ``tv_`` models are torchvision's ImageNet definitions, built with
``weights=None`` (nothing is ever downloaded). Only the first conv (for the
input channels) and pools that would shrink a 1-pixel map to 0 (VGG's,
DenseNet's transitions; replaced by ``nn.Identity``) change, so 8×8 inputs work.
They take a ``width`` too, default 1 (torchvision's model, unchanged): the same
classes, modules and module names with every channel count scaled — ResNet's
planes (through its own ``_make_layer``), DenseNet's growth rate and stem,
EfficientNet's width multiplier, MobileNet-V2's, VGG's convolution widths and
classifier — so a thin copy of a paper model runs every code path the full one
does (the paper profile's dry run) at a fraction of its size.

All activations are out-of-place and no activation module is reused within a
block: forward hooks that keep a module's output (CKA, activation statistics)
would otherwise see it overwritten by a later in-place ReLU.

One module though long: most of it is the short registered architecture
functions and their classes, the registry that tests parametrize over.
"""
from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import nn
from torchvision.ops import Conv2dNormActivation

from analysis._validation import (
    InvalidParameterError,
    check_choice,
    check_in_range,
    invalid,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "CifarVGG",
    "ClassicVGG",
    "LeNet5",
    "MobileNetV1",
    "TorchvisionDenseNet",
    "create_model",
    "list_models",
    "model_structure",
    "model_info",
    "register_model",
]

ModelFn = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFn] = {}
_REQUIRED = ("num_classes", "in_shape")


# --------------------------------------------------------------------------- registry


def register_model(fn: ModelFn) -> ModelFn:
    """Register ``fn`` under its ``__name__``.

    ``fn`` must take keyword-only ``num_classes`` and ``in_shape``; its other
    keyword-only arguments are the overrides :func:`create_model` accepts. The
    first line of its docstring is the model's :func:`model_info`.
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise InvalidParameterError(f"A model named {name!r} is already registered.")
    params = inspect.signature(fn).parameters
    for required in _REQUIRED:
        if required not in params or params[required].kind is not inspect.Parameter.KEYWORD_ONLY:
            raise InvalidParameterError(
                f"The model function {name!r} must take a keyword-only {required!r} argument."
            )
    if not (fn.__doc__ or "").strip():
        raise InvalidParameterError(f"The model function {name!r} needs a one-line docstring.")
    _REGISTRY[name] = fn
    return fn


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(_REGISTRY)


def _lookup(name: str, owner: str) -> ModelFn:
    check_choice("name", owner, name, list_models())
    return _REGISTRY[name]


def _allowed_overrides(fn: ModelFn) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _REQUIRED
    ]


def model_info(name: str) -> str:
    """Return a one-line description of the registered model ``name``."""
    fn = _lookup(name, "model_info")
    return (fn.__doc__ or "").strip().splitlines()[0]


def _check_num_classes(num_classes: object) -> int:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise invalid("num_classes", "create_model", "an int >= 1", num_classes)
    return int(num_classes)


def _check_in_shape(in_shape: object) -> tuple[int, int, int]:
    ok = (
        isinstance(in_shape, Sequence)
        and not isinstance(in_shape, str)
        and len(in_shape) == 3
        and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in in_shape
        )
    )
    if not ok:
        raise invalid(
            "in_shape", "create_model", "a (channels, height, width) tuple of 3 ints >= 1", in_shape
        )
    return tuple(int(d) for d in in_shape)  # type: ignore[return-value]


def create_model(
    name: str, num_classes: int, in_shape: tuple[int, int, int], **overrides: object
) -> nn.Module:
    """Build the registered model ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    num_classes : int
        Number of output logits, >= 1.
    in_shape : tuple of int
        ``(channels, height, width)`` of one input example (a list is accepted).
    **overrides
        Keyword-only options of the model function, e.g. ``width=0.25`` for
        the CIFAR-style models; ``tv_`` models take none.

    Returns
    -------
    torch.nn.Module
        A freshly initialised model (in training mode) mapping
        ``(batch, *in_shape)`` to ``(batch, num_classes)``. Initialisation
        draws only from torch's global RNG, so ``torch.manual_seed`` fixes it.

    Raises
    ------
    InvalidParameterError
        Unknown ``name`` (the message lists the known names), unknown override
        (the message lists the allowed ones), or a bad value.
    """
    fn = _lookup(name, "create_model")
    num_classes = _check_num_classes(num_classes)
    in_shape = _check_in_shape(in_shape)
    allowed = _allowed_overrides(fn)
    for key in overrides:
        if key not in allowed:
            expected = (
                "one of " + ", ".join(repr(k) for k in allowed)
                if allowed
                else f"absent ({name} takes no overrides)"
            )
            raise invalid("override", f"create_model({name!r})", expected, key)
    return fn(num_classes=num_classes, in_shape=in_shape, **overrides)


def model_structure(name: str, num_classes: int, in_shape: tuple[int, int, int], **overrides: object) -> nn.Module:
    """:func:`create_model` on the ``meta`` device: modules, names and parameter shapes, no values.

    For checks before any training (a profile's parameter counts, layer names,
    hint-layer shapes): it skips the initialisation (seconds for a paper-size model
    such as ``tv_vgg11``; the paper profile's checks take 3 s instead of 14 s) and
    leaves torch's RNG as it was. Raises as :func:`create_model`.
    """
    import torch

    with torch.device("meta"):
        return create_model(name, num_classes, in_shape, **overrides)


# --------------------------------------------------------------------------- shared helpers


def _check_width(width: object, owner: str) -> float:
    # Type first: check_in_range compares before it checks the type.
    if isinstance(width, bool) or not isinstance(width, numbers.Real):
        raise invalid("width", owner, "a number in (0, inf)", width)
    check_in_range("width", owner, float(width), 0.0, math.inf)
    return float(width)


def _scaled(channels: int, width: float) -> int:
    """Channels times ``width``, rounded, at least 1."""
    return max(1, round(channels * width))


def _divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` (>= divisor), never more than 10 % down.

    Same rule as torchvision's ``_make_divisible`` (private there), so
    MobileNet-V1 and -V2 round widths alike.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _can_downsample(size: tuple[int, int]) -> bool:
    """The module docstring's spatial rule: downsample only while both dims >= 2."""
    return min(size) >= 2


def _conv_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Map size after a 'same'-padded conv (3×3 pad 1, or 1×1 pad 0) with ``stride``."""
    return (-(-size[0] // stride), -(-size[1] // stride))


def _init_cifar(model: nn.Module) -> None:
    """torchvision-ResNet init: Kaiming-normal convs, BN at identity, default Linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _no_inplace(model: nn.Module) -> nn.Module:
    """Make every activation/dropout out-of-place (see the module docstring)."""
    for m in model.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return model


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
        c1, c2, f1, f2 = (_scaled(c, width) for c in (6, 16, 120, 84))
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
        if _can_downsample(size):
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
        planes = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_ch, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.inplanes = planes[0]
        size = (h, w)
        for i, (p, n) in enumerate(zip(planes, layers)):
            stride = 2 if i > 0 and _can_downsample(size) else 1
            size = _conv_size(size, stride)
            setattr(self, f"layer{i + 1}", self._make_layer(block, p, n, stride))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        _init_cifar(self)

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
            if min(size) // 2 >= min_map and _can_downsample(size):
                layers.append(nn.MaxPool2d(2))
                size = (size[0] // 2, size[1] // 2)
            else:
                layers.append(nn.Identity())
        else:
            out = _scaled(int(v), width)
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
        _init_cifar(self)

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
        channels = _divisible(32 * width)
        layers: list[nn.Module] = [Conv2dNormActivation(in_ch, channels, 3, 1, inplace=False)]
        for out, stride in _MOBILENET_V1_CFG:
            stride = stride if _can_downsample(size) else 1
            size = _conv_size(size, stride)
            out = _divisible(out * width)
            layers.append(nn.Sequential(
                Conv2dNormActivation(channels, channels, 3, stride, groups=channels, inplace=False),
                Conv2dNormActivation(channels, out, 1, inplace=False),
            ))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(channels, num_classes))
        _init_cifar(self)

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
        s = s if _can_downsample(size) else 1
        size = _conv_size(size, s)
        setting.append([t, c, n, s])
    model = torchvision.models.MobileNetV2(
        num_classes=num_classes, width_mult=width, inverted_residual_setting=setting
    )
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_ch, stem.out_channels, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return _no_inplace(model)


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
            if _can_downsample(size):
                size = (size[0] // 2, size[1] // 2)
            else:
                features[i] = nn.Identity()


def _skip_small_transition_pools(features: nn.Sequential, size: tuple[int, int]) -> None:
    """Replace DenseNet transition pools that would shrink a <2-pixel map to 0 by ``nn.Identity``.

    torchvision's DenseNet quarters the input in its stem (7×7 stride-2 conv and
    3×3 stride-2 max-pool, both padded, so a 1-pixel map stays 1) and halves it
    in each transition's 2×2 average pool: 28 px inputs go 7 → 3 → 1 → 0.
    """
    size = _conv_size(_conv_size(size, 2), 2)
    for name, module in features.named_children():
        if name.startswith("transition"):
            if _can_downsample(size):
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
    width = _check_width(width, f"tv_{name}")
    model = TorchvisionDenseNet(_scaled(growth_rate, width), block_config, _scaled(num_init_features, width),
                                num_classes=num_classes)
    _replace_first_conv(model, in_shape[0])
    _skip_small_transition_pools(model.features, in_shape[1:])
    return _no_inplace(model)


def _torchvision(builder: ModelFn, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    model = builder(weights=None, num_classes=num_classes)
    _replace_first_conv(model, in_shape[0])
    return _no_inplace(model)


class _ScaledTorchvisionResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage's planes × ``width`` (its own ``_make_layer`` builds the stages).

    torchvision fixes the planes (64, 128, 256, 512) in ``__init__``; scaling them where ``_make_layer`` receives
    them keeps every module, name and block of the definition. The stem and the classifier, built around the
    fixed 64 and 512, are rebuilt at the scaled widths with torchvision's initialisation.
    """

    def __init__(self, block, layers, *, num_classes: int, width: float):
        self._width = width
        super().__init__(block, layers, num_classes=num_classes)
        stem = _scaled(64, width)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.bn1 = self._norm_layer(stem)
        self.fc = nn.Linear(_scaled(512, width) * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # the first stage: its input is the (scaled) stem
            self.inplanes = _scaled(64, self._width)
        return super()._make_layer(block, _scaled(planes, self._width), blocks, stride, dilate)


_TV_RESNETS = {"resnet18": ("BasicBlock", [2, 2, 2, 2]), "resnet34": ("BasicBlock", [3, 4, 6, 3]),
               "resnet50": ("Bottleneck", [3, 4, 6, 3]), "resnet101": ("Bottleneck", [3, 4, 23, 3]),
               "resnet152": ("Bottleneck", [3, 8, 36, 3])}


def _tv_resnet(name: str, num_classes: int, in_shape: tuple[int, int, int], width: float) -> nn.Module:
    width = _check_width(width, f"tv_{name}")
    if width == 1.0:
        return _torchvision(getattr(torchvision.models, name), num_classes, in_shape)
    block_name, layers = _TV_RESNETS[name]
    model = _ScaledTorchvisionResNet(getattr(torchvision.models.resnet, block_name), layers,
                                     num_classes=num_classes, width=width)
    _replace_first_conv(model, in_shape[0])
    return _no_inplace(model)


# (width_mult, depth_mult, dropout) of torchvision's efficientnet_b0 ... b5 builders.
_EFFICIENTNETS = {"b0": (1.0, 1.0, 0.2), "b1": (1.0, 1.1, 0.2), "b2": (1.1, 1.2, 0.3), "b3": (1.2, 1.4, 0.3),
                  "b4": (1.4, 1.8, 0.4), "b5": (1.6, 2.2, 0.4)}


def _tv_efficientnet(variant: str, num_classes: int, in_shape: tuple[int, int, int], width: float) -> nn.Module:
    width = _check_width(width, f"tv_efficientnet_{variant}")
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
    return _no_inplace(model)


def _tv_vgg_scaled(cfg: str, num_classes: int, in_shape: tuple[int, int, int], width: float,
                   batch_norm: bool) -> nn.Module:
    """torchvision's VGG class and ``make_layers`` at ``width``; the classifier's three layers rebuilt to the
    scaled features and hidden width (torchvision fixes 512·7·7 → 4096 → 4096), initialised as torchvision does."""
    from torchvision.models.vgg import VGG, cfgs, make_layers

    scaled = [v if v == "M" else _scaled(int(v), width) for v in cfgs[cfg]]
    model = VGG(make_layers(scaled, batch_norm=batch_norm), num_classes=num_classes)
    hidden, last = _scaled(4096, width), scaled[-2]
    for index, (fan_in, fan_out) in zip((0, 3, 6), ((last * 7 * 7, hidden), (hidden, hidden), (hidden, num_classes))):
        layer = nn.Linear(fan_in, fan_out)
        nn.init.normal_(layer.weight, 0, 0.01)
        nn.init.constant_(layer.bias, 0)
        model.classifier[index] = layer
    _replace_first_conv(model, in_shape[0])
    return _no_inplace(model)


# --------------------------------------------------------------------------- registered models


@register_model
def lenet5(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """LeNet-5 (conv1, conv2, fc1-fc3; ReLU), padding adapted so 8×8 inputs work."""
    return LeNet5(num_classes=num_classes, in_shape=in_shape, width=_check_width(width, "lenet5"))


@register_model
def resnet18(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-18, CIFAR-style (3×3 stride-1 stem, no max-pool), BasicBlock [2, 2, 2, 2]."""
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_shape=in_shape,
                       width=_check_width(width, "resnet18"))


@register_model
def resnet34(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-34, CIFAR-style (3×3 stride-1 stem, no max-pool), BasicBlock [3, 4, 6, 3]."""
    return CifarResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_shape=in_shape,
                       width=_check_width(width, "resnet34"))


@register_model
def resnet50(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """ResNet-50, CIFAR-style (3×3 stride-1 stem, no max-pool), Bottleneck [3, 4, 6, 3]."""
    return CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_shape=in_shape,
                       width=_check_width(width, "resnet50"))


@register_model
def vgg11(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-11 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg11"], num_classes=num_classes, in_shape=in_shape,
                    width=_check_width(width, "vgg11"))


@register_model
def vgg16(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-16 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg16"], num_classes=num_classes, in_shape=in_shape,
                    width=_check_width(width, "vgg16"))


@register_model
def vgg19(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """VGG-19 with BatchNorm, CIFAR-style (global average pool, one Linear classifier)."""
    return CifarVGG(_VGG_CFGS["vgg19"], num_classes=num_classes, in_shape=in_shape,
                    width=_check_width(width, "vgg19"))


def _classic_vgg(name: str, num_classes: int, in_shape: tuple[int, int, int], width: float, fc_width: int | None,
                 batch_norm: bool, min_map: int) -> nn.Module:
    width = _check_width(width, name)
    if fc_width is None:
        fc_width = _scaled(4096, width)
    if isinstance(fc_width, bool) or not isinstance(fc_width, int) or fc_width < 1:
        raise invalid("fc_width", name, "a positive int (the classifier's hidden units)", fc_width)
    if isinstance(min_map, bool) or not isinstance(min_map, int) or min_map < 1:
        raise invalid("min_map", name, "a positive int (pools never bring the map below it)", min_map)
    check_choice("batch_norm", name, batch_norm, (False, True))
    return ClassicVGG(_VGG_CFGS[name.removesuffix("_fc")], num_classes=num_classes, in_shape=in_shape, width=width,
                      fc_width=fc_width, batch_norm=batch_norm, min_map=min_map)


@register_model
def vgg11_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-11 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg11_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


@register_model
def vgg16_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-16 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg16_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


@register_model
def vgg19_fc(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0, fc_width: int | None = None,
             batch_norm: bool = False, min_map: int = 1) -> nn.Module:
    """VGG-19 in torchvision's layout with the three-layer classifier (hidden 4096·width), any input size."""
    return _classic_vgg("vgg19_fc", num_classes, in_shape, width, fc_width, batch_norm, min_map)


@register_model
def mobilenet_v1(*, num_classes: int, in_shape: tuple[int, int, int],
                 width: float = 1.0) -> nn.Module:
    """MobileNet-V1, CIFAR-style (stride-1 stem, overall stride 16), widths in multiples of 8."""
    return MobileNetV1(num_classes=num_classes, in_shape=in_shape,
                       width=_check_width(width, "mobilenet_v1"))


@register_model
def mobilenet_v2(*, num_classes: int, in_shape: tuple[int, int, int],
                 width: float = 1.0) -> nn.Module:
    """MobileNet-V2 (torchvision's blocks), CIFAR-style (stride-1 stem, overall stride 8)."""
    return _cifar_mobilenet_v2(num_classes, in_shape, _check_width(width, "mobilenet_v2"))


@register_model
def tv_resnet18(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-18, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet18", num_classes, in_shape, width)


@register_model
def tv_resnet34(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-34, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet34", num_classes, in_shape, width)


@register_model
def tv_resnet50(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-50, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet50", num_classes, in_shape, width)


@register_model
def tv_resnet101(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-101, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet101", num_classes, in_shape, width)


@register_model
def tv_resnet152(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision ResNet-152, ImageNet definition (7×7 stride-2 stem + max-pool), no weights."""
    return _tv_resnet("resnet152", num_classes, in_shape, width)


@register_model
def tv_mobilenet_v2(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision MobileNet-V2, ImageNet definition (stride-2 stem, stride 32), no weights."""
    width = _check_width(width, "tv_mobilenet_v2")
    if width == 1.0:
        return _torchvision(torchvision.models.mobilenet_v2, num_classes, in_shape)
    return _torchvision(lambda **kw: torchvision.models.mobilenet_v2(width_mult=width, **kw), num_classes, in_shape)


@register_model
def tv_vgg11_bn(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-11-BN, ImageNet definition (4096-wide head), no weights."""
    return _tv_vgg(torchvision.models.vgg11_bn, num_classes, in_shape, width, "A", batch_norm=True)


def _tv_vgg(builder: ModelFn, num_classes: int, in_shape: tuple[int, int, int], width: float, cfg: str, *,
            batch_norm: bool = False) -> nn.Module:
    width = _check_width(width, f"tv_{builder.__name__}")
    model = (_torchvision(builder, num_classes, in_shape) if width == 1.0
             else _tv_vgg_scaled(cfg, num_classes, in_shape, width, batch_norm))
    _skip_small_pools(model.features, in_shape[1:])
    return model


@register_model
def tv_vgg11(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-11 (no BatchNorm: the SH paper's model), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg11, num_classes, in_shape, width, "A")


@register_model
def tv_vgg16(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-16 (no BatchNorm), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg16, num_classes, in_shape, width, "D")


@register_model
def tv_vgg19(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision VGG-19 (no BatchNorm), ImageNet definition, no weights."""
    return _tv_vgg(torchvision.models.vgg19, num_classes, in_shape, width, "E")


@register_model
def tv_densenet161(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-161, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet161", num_classes, in_shape, width)


@register_model
def tv_densenet169(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-169, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet169", num_classes, in_shape, width)


@register_model
def tv_densenet201(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision DenseNet-201, ImageNet definition, 1-pixel transition pools skipped."""
    return _tv_densenet("densenet201", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b0(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B0, ImageNet definition (stride 32, dropout 0.2), no weights."""
    return _tv_efficientnet("b0", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b1(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B1, ImageNet definition (stride 32, dropout 0.2), no weights."""
    return _tv_efficientnet("b1", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b2(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B2, ImageNet definition (stride 32, dropout 0.3), no weights."""
    return _tv_efficientnet("b2", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b3(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B3, ImageNet definition (stride 32, dropout 0.3), no weights."""
    return _tv_efficientnet("b3", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b4(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B4, ImageNet definition (stride 32, dropout 0.4), no weights."""
    return _tv_efficientnet("b4", num_classes, in_shape, width)


@register_model
def tv_efficientnet_b5(*, num_classes: int, in_shape: tuple[int, int, int], width: float = 1.0) -> nn.Module:
    """torchvision EfficientNet-B5, ImageNet definition (stride 32, dropout 0.4), no weights."""
    return _tv_efficientnet("b5", num_classes, in_shape, width)
