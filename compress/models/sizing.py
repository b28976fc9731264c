"""What every architecture shares: the width multiplier, channel rounding, the spatial rule, CIFAR init.

Spatial rule, shared by every CIFAR-style model: a downsampling step (stride-2
conv or 2×2 max-pool) is applied only while both spatial dims of the map are
at least 2 (:func:`can_downsample`); otherwise it becomes stride 1 (or an
``nn.Identity`` in place of the pool, so module indices do not depend on the
input size).
"""
from __future__ import annotations

import math
import numbers

from torch import nn

from analysis._validation import check_in_range, invalid

__all__ = ["can_downsample", "check_width", "conv_size", "init_cifar", "make_divisible", "no_inplace", "scale_channels"]



def check_width(width: object, owner: str) -> float:
    # Type first: check_in_range compares before it checks the type.
    if isinstance(width, bool) or not isinstance(width, numbers.Real):
        raise invalid("width", owner, "a number in (0, inf)", width)
    check_in_range("width", owner, float(width), 0.0, math.inf)
    return float(width)


def scale_channels(channels: int, width: float) -> int:
    """Channels times ``width``, rounded, at least 1."""
    return max(1, round(channels * width))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` (>= divisor), never more than 10 % down.

    Same rule as torchvision's ``_make_divisible`` (private there), so
    MobileNet-V1 and -V2 round widths alike.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def can_downsample(size: tuple[int, int]) -> bool:
    """The module docstring's spatial rule: downsample only while both dims >= 2."""
    return min(size) >= 2


def conv_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Map size after a 'same'-padded conv (3×3 pad 1, or 1×1 pad 0) with ``stride``."""
    return (-(-size[0] // stride), -(-size[1] // stride))


def init_cifar(model: nn.Module) -> None:
    """torchvision-ResNet init: Kaiming-normal convs, BN at identity, default Linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def no_inplace(model: nn.Module) -> nn.Module:
    """Make every activation/dropout out-of-place (see the module docstring)."""
    for m in model.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return model
