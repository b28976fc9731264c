"""Post-training quantization, simulated on any device.

* ``fp16`` / ``bf16``: every parameter and buffer is rounded to the format,
  and the input of every conv/linear layer is rounded too, so the arithmetic
  sees the values a half-precision model would (accumulation stays float32,
  as on tensor cores).
* ``int8`` (and ``int4``): conv/linear weights are fake-quantized per output
  channel, symmetric; layer inputs are fake-quantized per tensor with
  symmetric ranges calibrated on a batch of training inputs. Uses torch's
  maintained ``fake_quantize_*`` ops.

With ``activations=False`` only the weights are quantized (the MW paper's
code: TensorFlow Lite float16 weights; dynamic-range int8, float activations).

The quantized model is a float model whose values lie on the quantization
grid plus activation hooks; :func:`attach_activation_quant` re-attaches the
hooks after a state_dict is loaded (hooks are not state).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from analysis._validation import check_choice, invalid

__all__ = ["SCHEMES", "BITS", "QUANT_SCOPES", "quantize", "fake_quant_weight", "quant_layers", "storage_bits",
           "attach_activation_quant", "calibrate"]

SCHEMES = ("fp16", "bf16", "int8", "int4")
BITS = {"fp16": 16, "bf16": 16, "int8": 8, "int4": 4}
#: Which layers' weights integer quantization touches (declared variants).
QUANT_SCOPES = ("conv+linear", "linear")
_FLOAT = {"fp16": torch.float16, "bf16": torch.bfloat16}
_SCOPE_LAYERS = {"conv+linear": (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear), "linear": (nn.Linear,)}


def _qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def fake_quant_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel symmetric fake quantization of a weight tensor.

    Error per entry is at most half a step (``scale / 2``).
    """
    qmax = _qmax(bits)
    absmax = w.detach().abs().flatten(1).amax(1) if w.dim() > 1 else w.detach().abs().amax().reshape(1)
    scale = (absmax / qmax).clamp_min(torch.finfo(torch.float32).tiny).float()
    zero = torch.zeros_like(scale, dtype=torch.int32)
    if w.dim() == 1:
        return torch.fake_quantize_per_tensor_affine(w.float(), float(scale), 0, -qmax, qmax)
    return torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -qmax, qmax)


def quant_layers(model: nn.Module, scope: str = "conv+linear") -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the layers whose weights ``scope`` quantizes, in module order."""
    check_choice("scope", "quant_layers", scope, QUANT_SCOPES)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _SCOPE_LAYERS[scope])]


def storage_bits(model: nn.Module, scheme: str) -> dict[str, int]:
    """Bits per stored value of every parameter of ``quantize(model, scheme)``, by parameter name.

    ``fp16``/``bf16`` store every parameter in 16 bits; ``int8``/``int4`` store
    conv/linear weights in 8/4 bits and everything else in float32 (the one
    float scale per output channel is not counted).
    """
    check_choice("scheme", "storage_bits", scheme, SCHEMES)
    if scheme in _FLOAT:
        return {n: BITS[scheme] for n, _ in model.named_parameters()}
    weights = {f"{n}.weight" if n else "weight" for n, _ in quant_layers(model)}
    return {n: BITS[scheme] if n in weights else 32 for n, _ in model.named_parameters()}


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor, *, batch_size: int = 512) -> dict[str, float]:
    """Max |input| of every conv/linear layer over ``x`` (eval mode)."""
    ranges: dict[str, float] = {}
    handles = []
    for name, m in quant_layers(model):
        def hook(mod, inputs, name=name):
            v = float(inputs[0].detach().abs().max())
            ranges[name] = max(ranges.get(name, 0.0), v)
        handles.append(m.register_forward_pre_hook(hook))
    was = model.training
    model.eval()
    try:
        for i in range(0, x.shape[0], batch_size):
            model(x[i : i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return ranges


def attach_activation_quant(model: nn.Module, scheme: str, act_ranges: dict[str, float] | None = None) -> list:
    """Round the input of every conv/linear layer to ``scheme``; returns the hook handles."""
    check_choice("scheme", "attach_activation_quant", scheme, SCHEMES)
    handles = []
    for name, m in quant_layers(model):
        if scheme in _FLOAT:
            dtype = _FLOAT[scheme]
            hook = lambda mod, inputs, dtype=dtype: (inputs[0].to(dtype).to(inputs[0].dtype),)
        else:
            qmax = _qmax(BITS[scheme])
            scale = max((act_ranges or {}).get(name, 0.0) / qmax, 1e-12)
            hook = lambda mod, inputs, scale=scale, qmax=qmax: (
                torch.fake_quantize_per_tensor_affine(inputs[0].float(), scale, 0, -qmax, qmax).to(inputs[0].dtype),
            )
        handles.append(m.register_forward_pre_hook(hook))
    return handles


@torch.no_grad()
def quantize(model: nn.Module, scheme: str, *, calib_x: torch.Tensor | None = None,
             activations: bool = True, scope: str = "conv+linear") -> tuple[nn.Module, dict[str, float]]:
    """Return a quantized deep copy of ``model`` and its activation ranges (empty for weights only).

    Parameters
    ----------
    scheme : {'fp16', 'bf16', 'int8', 'int4'}
    calib_x : Tensor, optional
        Calibration inputs; required for integer schemes with ``activations``.
    activations : bool
        Also quantize the input of every conv/linear layer. ``False``: weights
        only, as the MW paper's code (TensorFlow Lite float16 weights;
        dynamic-range int8 keeps float activations).
    scope : {'conv+linear', 'linear'}
        Which layers' weights an integer scheme quantizes (``linear``: the
        classifier only, as torchao's int8 configurations act on
        ``nn.Linear``). Float schemes round every tensor; ``linear`` is
        weights-only (``activations=False``).
    """
    check_choice("scheme", "quantize", scheme, SCHEMES)
    check_choice("scope", "quantize", scope, QUANT_SCOPES)
    if activations and scope != "conv+linear":
        raise invalid("activations", "quantize", f"False with scope {scope!r} (activation ranges cover every "
                      "conv/linear layer)", activations)
    if not isinstance(activations, bool):
        raise invalid("activations", "quantize", "True or False", activations)
    if activations and scheme not in _FLOAT and calib_x is None:
        raise invalid("calib_x", "quantize", f"a batch of calibration inputs for scheme {scheme!r}", None)
    q = copy.deepcopy(model).eval()
    ranges: dict[str, float] = {}
    if scheme in _FLOAT:
        dtype = _FLOAT[scheme]
        for t in list(q.parameters()) + [b for b in q.buffers() if b.is_floating_point()]:
            t.copy_(t.to(dtype).to(t.dtype))
    else:
        if activations:
            ranges = calibrate(q, calib_x)
        for _, m in quant_layers(q, scope):
            m.weight.copy_(fake_quant_weight(m.weight, BITS[scheme]))
    if activations:
        attach_activation_quant(q, scheme, ranges)
    return q, ranges
