"""Grad-CAM class-activation maps (Selvaraju et al., 2017), per image, for the SH paper's saliency claims.

This module owns the computation of Grad-CAM maps at a named layer's resolution
(:func:`grad_cam`), the default layer (:func:`last_conv_layer`) and the
upsampling to the input size with per-map min-max scaling
(:func:`upsample_and_scale`). Comparing maps (SSIM) lives in
:mod:`analysis.measure.saliency`, drawing them in :mod:`analysis.plots.cams`.

Written here rather than taken from ``pytorch-grad-cam``: given one target,
that library computes a batch's maps for its first image's class only, and it
switches the model to eval mode as a side effect. Here every image gets its
own target, the caller's train/eval mode of every module is restored, no hook
is left behind, and no parameter's ``.grad`` is touched (the gradient is taken
with :func:`torch.autograd.grad` with respect to the layer's output alone).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analysis._validation import invalid

__all__ = ["grad_cam", "last_conv_layer", "upsample_and_scale"]


def last_conv_layer(model: nn.Module) -> str:
    """Name of the module whose output is the model's last convolutional feature map.

    Parameters
    ----------
    model : nn.Module
        Any module containing at least one :class:`torch.nn.Conv2d`.

    Returns
    -------
    str
        The name (as in ``model.named_modules()``) of the last ``nn.Conv2d``, or
        of the ``nn.ReLU`` right after it when that is the next module in
        ``named_modules`` order (a ReLU applied functionally, or a BatchNorm in
        between, leaves the conv itself).

    Raises
    ------
    InvalidParameterError
        If ``model`` is not a module or has no ``nn.Conv2d``.
    """
    if not isinstance(model, nn.Module):
        raise invalid("model", "last_conv_layer", "an nn.Module", type(model).__name__)
    named = list(model.named_modules())
    convs = [i for i, (_, m) in enumerate(named) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise invalid("model", "last_conv_layer", "a model with an nn.Conv2d", type(model).__name__)
    i = convs[-1]
    if i + 1 < len(named) and isinstance(named[i + 1][1], nn.ReLU):
        return named[i + 1][0]
    return named[i][0]


def _check_batch_size(batch_size: object) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise invalid("batch_size", "grad_cam", "an int >= 1", batch_size)
    return batch_size


def _check_targets(targets: object, n: int) -> Tensor | None:
    if targets is None:
        return None
    if not isinstance(targets, Tensor):
        if not isinstance(targets, Sequence) or not all(isinstance(t, int) and not isinstance(t, bool)
                                                        for t in targets):
            raise invalid("targets", "grad_cam", "a 1-D integer tensor of class indices (or None)", targets)
        targets = torch.tensor(list(targets), dtype=torch.long)
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise invalid("targets", "grad_cam", "an integer tensor of class indices", targets.dtype)
    if tuple(targets.shape) != (n,):
        raise invalid("targets", "grad_cam", f"of shape ({n},) (one class per image)", tuple(targets.shape))
    return targets.detach().to("cpu", torch.long)


class _Capture:
    """A forward hook that replaces the module's output by a copy of a fresh leaf, and keeps the leaf.

    The gradient with respect to the leaf is exactly ∂logit/∂A for the layer's
    output A, computed from the layer downwards only; the copy lets a later
    in-place op (``ReLU(inplace=True)``) run without touching the kept values.
    A module called more than once per forward keeps its last call's output.
    """

    def __init__(self) -> None:
        self.leaf: Tensor | None = None

    def __call__(self, module: nn.Module, inputs: object, output: object) -> Tensor:
        if not isinstance(output, Tensor):
            raise invalid("layer", "grad_cam", "a module whose output is a tensor", type(output).__name__)
        self.leaf = output.detach().requires_grad_(True)
        return self.leaf.clone()


def _chunk_maps(model: nn.Module, capture: _Capture, xb: Tensor, tb: Tensor | None, layer: str) -> Tensor:
    capture.leaf = None
    logits = model(xb)
    acts = capture.leaf
    if acts is None:
        raise invalid("layer", "grad_cam", "a module that the model's forward calls", layer)
    if acts.dim() != 4:
        raise invalid("layer", "grad_cam", "a module with a 4-D (N, K, h, w) output", tuple(acts.shape))
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise invalid("model", "grad_cam", "a model returning (N, classes) logits", type(logits).__name__)
    if tb is None:
        tb = logits.detach().argmax(dim=1)
    else:
        bad = (tb < 0) | (tb >= logits.shape[1])
        if bool(bad.any()):
            raise invalid("targets", "grad_cam", f"class indices in [0, {logits.shape[1]})", int(tb[bad][0]))
        tb = tb.to(logits.device)
    # In eval mode image i's logits depend on image i alone, so the gradient of the sum is per image.
    score = logits.gather(1, tb[:, None]).sum()
    (grads,) = torch.autograd.grad(score, acts, allow_unused=True)
    if grads is None:
        raise invalid("layer", "grad_cam", "a module whose output the logits depend on", layer)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * acts.detach()).sum(dim=1)).to("cpu", torch.float32)


def grad_cam(model: nn.Module, x: Tensor, *, layer: str | None = None, targets: Tensor | None = None,
             batch_size: int = 256) -> Tensor:
    """Grad-CAM map of every image at the output resolution of ``layer``.

    For image i with target class c_i and A the output of ``layer`` for that
    image, α_k = mean over positions of ∂ logit[i, c_i] / ∂ A_k and the map is
    ReLU(Σ_k α_k A_k).

    Parameters
    ----------
    model : nn.Module
        A classifier returning (N, classes) logits. It runs in eval mode; the
        caller's train/eval mode of every module is restored afterwards, no
        hook is left and no parameter's ``.grad`` changes.
    x : Tensor
        Input batch (N, C, H, W), N >= 1; moved chunk by chunk to the model's device.
    layer : str, optional
        Name of the module (``model.named_modules()``) whose output is A,
        default :func:`last_conv_layer`. A module called several times in one
        forward contributes its last call's output.
    targets : Tensor, optional
        One class index per image, shape (N,); default each image's predicted class.
    batch_size : int, default 256
        Images per forward/backward pass.

    Returns
    -------
    Tensor
        float32 maps (N, h, w) on the CPU, non-negative.

    Raises
    ------
    InvalidParameterError
        On an unknown layer (the message lists some valid names), a layer whose
        output is not a 4-D map the logits depend on, targets of the wrong
        shape, type or range, or a bad ``x`` or ``batch_size``.
    """
    if not isinstance(model, nn.Module):
        raise invalid("model", "grad_cam", "an nn.Module", type(model).__name__)
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise invalid("x", "grad_cam", "a non-empty (N, C, H, W) tensor", getattr(x, "shape", type(x).__name__))
    batch_size = _check_batch_size(batch_size)
    modules = dict(model.named_modules())
    if layer is None:
        layer = last_conv_layer(model)
    if not isinstance(layer, str) or layer == "" or layer not in modules:
        names = [n for n in modules if n]
        shown = ", ".join(names[:5] + (["...", *names[-3:]] if len(names) > 8 else names[5:]))
        raise invalid("layer", "grad_cam", f"the name of a module of the model (e.g. {shown})", layer)
    targets = _check_targets(targets, x.shape[0])
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device

    modes = [(m, m.training) for m in model.modules()]
    capture = _Capture()
    handle = modules[layer].register_forward_hook(capture)
    try:
        model.eval()
        with torch.enable_grad():
            maps = [_chunk_maps(model, capture, x[i:i + batch_size].to(device), None if targets is None
                                else targets[i:i + batch_size], layer)
                    for i in range(0, x.shape[0], batch_size)]
    finally:
        handle.remove()
        capture.leaf = None
        for module, training in modes:
            module.training = training
    return torch.cat(maps)


def upsample_and_scale(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly upsample maps to ``size`` and min-max scale each one to [0, 1].

    Parameters
    ----------
    maps : Tensor
        Maps (N, h, w), e.g. from :func:`grad_cam`.
    size : tuple of int
        Target (H, W), usually the input images' size.

    Returns
    -------
    Tensor
        float32 (N, H, W) in [0, 1] on the maps' device; upsampled with
        ``align_corners=False``; a constant map becomes all zeros.
    """
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        raise invalid("maps", "upsample_and_scale", "an (N, h, w) tensor", getattr(maps, "shape", type(maps).__name__))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise invalid("size", "upsample_and_scale", "a pair of positive ints (H, W)", size)
    up = F.interpolate(maps.detach()[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    span = up.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 0, (up - low) / torch.where(span > 0, span, 1.0), torch.zeros_like(up))
