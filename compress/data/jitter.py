"""Seeded per-image colour jitter of normalized image batches (a colour-shifted copy of a test set).

Robustness to colour (claim SH-8) is measured as accuracy on a colour-jittered
copy of the test set divided by clean accuracy. :func:`colour_jitter` makes that
copy: it maps normalized images back to pixels in [0, 1] (with the constants of
:func:`compress.data.datasets.pixel_stats`), applies torchvision's brightness, contrast,
saturation and hue adjustments with one random set of factors per image, and
normalizes again. The factors come from a seeded CPU ``torch.Generator`` and the
arithmetic runs on the CPU, so a seed gives the same bytes on every device.

:data:`JITTER_DEFAULTS` is ``torchvision.transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)``,
the colour augmentation common in CIFAR distillation recipes (e.g. CRD's).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from analysis._validation import check_in_range, invalid

from compress.runtime.numerics import cpu_build

__all__ = ["JITTER_DEFAULTS", "check_jitter", "colour_jitter"]

#: Jitter strengths of torchvision's ``ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)``,
#: the colour augmentation of common CIFAR knowledge-distillation recipes (CRD and its successors).
JITTER_DEFAULTS: dict[str, float] = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}

_FACTORS = ("brightness", "contrast", "saturation")  # each draws a factor in [max(0, 1 - b), 1 + b]
_MAX_HUE = 0.5  # a hue shift of 0.5 is half the colour wheel; torchvision's adjust_hue accepts [-0.5, 0.5]


def check_jitter(params: Mapping[str, object], *, owner: str = "check_jitter") -> dict[str, float]:
    """Validate jitter strengths and fill in the missing ones from :data:`JITTER_DEFAULTS`.

    Parameters
    ----------
    params : Mapping
        Any of ``brightness``, ``contrast``, ``saturation`` (each a number in
        ``[0, inf)``) and ``hue`` (a number in ``[0, 0.5]``).
    owner : str, default "check_jitter"
        Name used in error messages.

    Returns
    -------
    dict
        All four strengths, in the order brightness, contrast, saturation, hue.

    Raises
    ------
    InvalidParameterError
        An unknown key (the message lists the valid ones) or a value out of range.
    """
    if not isinstance(params, Mapping):
        raise invalid("params", owner, "a mapping of jitter strengths", params)
    for key in params:
        if key not in JITTER_DEFAULTS:
            raise invalid("params", owner, "keys among " + ", ".join(map(repr, JITTER_DEFAULTS)), key)
    full = {**JITTER_DEFAULTS, **params}
    for key in _FACTORS:
        check_in_range(key, owner, full[key], 0.0, math.inf, closed="left")
    check_in_range("hue", owner, full["hue"], 0.0, _MAX_HUE, closed="both")
    return {key: float(full[key]) for key in JITTER_DEFAULTS}


def _channel_stats(normalization: object, owner: str) -> tuple[Tensor, Tensor]:
    """``(mean, std)`` -> two float32 ``(1, 3, 1, 1)`` tensors, checked."""
    expected = "a (mean, std) pair of 3 finite numbers each, std > 0"
    try:
        mean, std = normalization
        mean_t = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as err:
        raise invalid("normalization", owner, expected, normalization) from err
    if (mean_t.numel() != 3 or std_t.numel() != 3 or not bool(torch.isfinite(mean_t).all())
            or not bool(torch.isfinite(std_t).all()) or not bool((std_t > 0).all())):
        raise invalid("normalization", owner, expected, normalization)
    return mean_t.float().view(1, 3, 1, 1), std_t.float().view(1, 3, 1, 1)


def colour_jitter(
    x: Tensor,
    *,
    normalization: tuple[Sequence[float], Sequence[float]],
    seed: int,
    brightness: float = JITTER_DEFAULTS["brightness"],
    contrast: float = JITTER_DEFAULTS["contrast"],
    saturation: float = JITTER_DEFAULTS["saturation"],
    hue: float = JITTER_DEFAULTS["hue"],
) -> Tensor:
    """A colour-jittered copy of a batch of normalized RGB images, one random jitter per image.

    Per image ``i``: ``pixels = x[i] * std + mean``, then, in this fixed order,
    ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation`` and
    ``adjust_hue`` of ``torchvision.transforms.v2.functional`` with factors
    ``b_i, c_i, s_i`` uniform in ``[max(0, 1 - strength), 1 + strength]`` and a hue
    shift ``h_i`` uniform in ``[-hue, hue]``; then clamp to [0, 1] and normalize
    back: ``(pixels - mean) / std``.

    The factors are one draw ``u = torch.rand((N, 4), dtype=torch.float64,
    generator=torch.Generator().manual_seed(seed))``, row ``i`` for image ``i``,
    columns in the order above (``b_i = low + (high - low) * u[i, 0]``, ...;
    ``h_i = hue * (2 * u[i, 3] - 1)``). All four columns are drawn whatever the
    strengths, so changing one strength leaves the others' draws alone; strength 0
    gives factor exactly 1 (shift exactly 0).

    Parameters
    ----------
    x : Tensor
        Normalized images, floating point, shape ``(N, 3, H, W)``, on any device.
    normalization : (mean, std)
        Per-channel constants that normalized ``x`` (3 numbers each), e.g.
        :func:`compress.data.datasets.pixel_stats` or :data:`compress.data.datasets.CHANNEL_STATS`.
    seed : int
        Seeds the factors, in ``[0, 2**64 - 1]``.
    brightness, contrast, saturation : float, default 0.4
        Strengths in ``[0, inf)``.
    hue : float, default 0.1
        Largest hue shift, in ``[0, 0.5]`` (fractions of the colour wheel).

    Returns
    -------
    Tensor
        Same shape, dtype and device as ``x``. Computed on the CPU in float32
        with one thread, so the same inputs and seed give the same bytes on any
        device and thread count (about 0.5 ms per 32x32 image).

    Raises
    ------
    InvalidParameterError
        ``x`` not a floating ``(N, 3, H, W)`` tensor (the message gives its shape),
        bad ``normalization``, ``seed`` or strengths.
    """
    from torchvision.transforms.v2 import functional as TF

    owner = "colour_jitter"
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 4 or x.shape[1] != 3:
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else x
        raise invalid("x", owner, "a floating-point tensor of RGB images, shape (N, 3, H, W)", got)
    strengths = check_jitter({"brightness": brightness, "contrast": contrast, "saturation": saturation,
                              "hue": hue}, owner=owner)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise invalid("seed", owner, "an int in [0, 2**64 - 1]", seed)
    mean, std = _channel_stats(normalization, owner)

    n = x.shape[0]
    u = torch.rand((n, 4), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    low = torch.tensor([max(0.0, 1.0 - strengths[k]) for k in _FACTORS] + [-strengths["hue"]], dtype=torch.float64)
    high = torch.tensor([1.0 + strengths[k] for k in _FACTORS] + [strengths["hue"]], dtype=torch.float64)
    factors = (low + (high - low) * u).tolist()

    # One intra-op thread (cpu_build): the same bytes whatever the thread count, and far faster
    # than threading these tiny per-image ops.
    with cpu_build():
        pixels = (x.detach().to("cpu", torch.float32) * std + mean).clamp_(0.0, 1.0)
        out = torch.empty_like(pixels)
        for i, (b, c, s, h) in enumerate(factors):
            img = TF.adjust_brightness(pixels[i], b)
            img = TF.adjust_contrast(img, c)
            img = TF.adjust_saturation(img, s)
            out[i] = TF.adjust_hue(img, h)
        out.clamp_(0.0, 1.0).sub_(mean).div_(std)
    return out.to(device=x.device, dtype=x.dtype).contiguous()
