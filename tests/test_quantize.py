"""Tests for compress.quant.schemes: grid error bounds, float round-trips, calibration and hooks."""
from __future__ import annotations

import copy
import functools

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
from compress.measure.accounting import model_bytes
from compress.quant.schemes import (
    BITS,
    QUANT_SCOPES,
    SCHEMES,
    attach_activation_quant,
    calibrate,
    fake_quant_weight,
    quant_layers,
    quantize,
    storage_bits,
)

FAST = settings(max_examples=40, deadline=None)


# Magnitudes 0 or ≥ 2^-20: with a channel max near float32's smallest normal
# (~1e-38) the scale is clamped at ``finfo.tiny`` and the half-step bound no
# longer holds; weights that small do not occur in trained networks.
_entries = st.just(0.0) | st.floats(2.0**-20, 100, width=32) | st.floats(-100, -(2.0**-20), width=32)


def _weights(draw_shape):
    rows, cols = draw_shape
    return st.lists(_entries, min_size=rows * cols, max_size=rows * cols).map(lambda v: torch.tensor(v, dtype=torch.float32).reshape(rows, cols))


_weight_tensors = st.tuples(st.integers(1, 6), st.integers(1, 12)).flatmap(_weights)


def _step(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-row quantization step of the symmetric grid: max |w| / (2^(bits-1) - 1)."""
    return w.abs().flatten(1).amax(1) / (2 ** (bits - 1) - 1)


# ----------------------------------------------------------------------------- fake_quant_weight


@FAST
@given(w=_weight_tensors, bits=st.sampled_from([2, 4, 8]))
@example(w=torch.zeros(2, 3), bits=8)
@example(w=torch.tensor([[0.0, 0.0], [1.0, -1.0]]), bits=4)
@example(w=torch.tensor([[1e-3, 0.5, -100.0]]), bits=8)
def test_fake_quant_error_at_most_half_a_step_per_channel(w, bits):
    q = fake_quant_weight(w, bits)
    assert q.shape == w.shape and q.dtype == torch.float32
    step = _step(w, bits)
    err = (q - w).abs().flatten(1).amax(1)
    assert torch.all(err <= step / 2 * (1 + 1e-5) + 1e-30)
    # The grid is symmetric and bounded by the channel's own max |w|.
    assert torch.all(q.abs().flatten(1).amax(1) <= w.abs().flatten(1).amax(1) * (1 + 1e-6))


@FAST
@given(w=_weight_tensors, bits=st.sampled_from([2, 4, 8]))
def test_fake_quant_values_lie_on_the_channel_grid(w, bits):
    q = fake_quant_weight(w, bits)
    step = _step(w, bits)
    qmax = 2 ** (bits - 1) - 1
    for row, s in zip(q, step):
        if s == 0:
            assert torch.all(row == 0)
            continue
        k = row / s
        assert torch.allclose(k, k.round(), atol=1e-3)
        assert k.abs().max() <= qmax + 1e-3


def test_int8_grid_has_at_most_255_values_per_channel():
    w = torch.rand(4, 5000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q = fake_quant_weight(w, 8)
    for row in q:
        n = row.unique().numel()
        assert 250 <= n <= 255  # 5000 uniform draws fill (nearly) all 255 levels
    q4 = fake_quant_weight(w, 4)
    assert all(row.unique().numel() <= 15 for row in q4)


def test_channel_max_is_exactly_representable():
    w = torch.tensor([[0.3, -2.5, 1.0], [7.0, 0.1, -0.2]])
    q = fake_quant_weight(w, 8)
    assert torch.allclose(q[:, 1][0], torch.tensor(-2.5))
    assert torch.allclose(q[1, 0], torch.tensor(7.0))


def test_fake_quant_conv_weight_is_per_output_channel():
    w = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    w[0] *= 100  # a large channel must not coarsen the others
    q = fake_quant_weight(w, 8)
    step = _step(w, 8)
    err = (q - w).abs().flatten(1).amax(1)
    assert torch.all(err <= step / 2 * (1 + 1e-5))
    assert err[1] < step[0] / 10


def test_fake_quant_1d_weight_is_per_tensor():
    w = torch.tensor([0.5, -1.0, 0.26, 0.0])
    q = fake_quant_weight(w, 2)  # levels {-1, 0, 1} · 1.0
    assert torch.equal(q, torch.tensor([0.0, -1.0, 0.0, 0.0])) or torch.equal(q, torch.tensor([1.0, -1.0, 0.0, 0.0]))


# ----------------------------------------------------------------------------- quantize()


def _trained_model(seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A fresh copy of a small conv net trained on a learnable rule, and its inputs."""
    model, x = _train_once(seed)
    return copy.deepcopy(model), x.clone()


@functools.lru_cache(maxsize=None)
def _train_once(seed: int) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 5),
    )
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 1, 8, 8, generator=g)
    y = x.flatten(1)[:, :5].argmax(1)  # a learnable rule
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_quantize_leaves_the_original_model_untouched(scheme):
    model, x = _trained_model()
    model.train()
    before = _state(model)
    out_before = model.eval()(x[:8]).detach()
    model.train()
    q, _ = quantize(model, scheme, calib_x=x[:64])
    assert q is not model
    assert model.training  # mode untouched too
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    for m in model.modules():
        assert len(m._forward_pre_hooks) == 0  # hooks live on the copy only
    assert torch.equal(model.eval()(x[:8]).detach(), out_before)


@pytest.mark.parametrize("scheme", ["fp16", "bf16"])
def test_float_schemes_round_every_tensor_like_a_cast(scheme):
    model, _ = _trained_model()
    dtype = torch.float16 if scheme == "fp16" else torch.bfloat16
    q, ranges = quantize(model, scheme)
    assert ranges == {}
    orig = model.state_dict()
    for k, v in q.state_dict().items():
        if v.is_floating_point():
            assert v.dtype == torch.float32
            assert torch.equal(v, orig[k].to(dtype).float()), k
        else:
            assert torch.equal(v, orig[k]), k


def test_fp16_round_trip_equals_half_float():
    t = torch.randn(1000, generator=torch.Generator().manual_seed(3)) * 10
    model = nn.Linear(1000, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(t[None])
    q, _ = quantize(model, "fp16")
    assert torch.equal(q.weight[0], t.half().float())
    assert not torch.equal(q.weight[0], t)  # the cast really rounds


def test_fp16_hooks_round_layer_inputs():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    q, _ = quantize(lin, "fp16")
    x = torch.tensor([[1.0 + 2.0**-13]])  # not representable in fp16 (10-bit mantissa)
    with torch.no_grad():
        assert float(q(x)) == 1.0
        assert float(lin(x)) != 1.0


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_int_schemes_quantize_weights_and_calibrate_inputs(scheme):
    model, x = _trained_model()
    q, ranges = quantize(model, scheme, calib_x=x)
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert sorted(ranges) == sorted(layers)
    # The first layer sees the raw input: its range is max |x|.
    assert ranges["0"] == pytest.approx(float(x.abs().max()))
    assert ranges == pytest.approx(calibrate(model, x))
    qmods = dict(q.named_modules())
    for name in layers:
        assert torch.equal(qmods[name].weight, fake_quant_weight(dict(model.named_modules())[name].weight, BITS[scheme]))
        levels = 2 ** BITS[scheme] - 1
        assert all(row.unique().numel() <= levels for row in qmods[name].weight.flatten(1))
    # BatchNorm and biases stay float.
    assert torch.equal(q[1].weight, model[1].weight) and torch.equal(q[4].bias, model[4].bias)


def test_output_error_ordered_fp16_int8_int4():
    model, x = _trained_model()
    ref = model(x).detach()
    errors = {}
    for scheme in ("fp16", "int8", "int4"):
        q, _ = quantize(model, scheme, calib_x=x[:128])
        errors[scheme] = float((q(x).detach() - ref).abs().mean())
    assert 0 < errors["fp16"] < errors["int8"] < errors["int4"]


def test_output_error_ordered_on_random_model():
    model, x = _trained_model(1)
    torch.manual_seed(5)
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    ref = fresh(x).detach()
    errs = [float((quantize(fresh, s, calib_x=x)[0](x).detach() - ref).abs().mean()) for s in ("fp16", "int8", "int4")]
    assert errs[0] < errs[1] < errs[2]


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_int_schemes_without_calibration_raise(scheme):
    model, _ = _trained_model()
    with pytest.raises(InvalidParameterError) as info:
        quantize(model, scheme)
    msg = str(info.value)
    assert msg.startswith("The 'calib_x' parameter of quantize must be ")
    assert scheme in msg


def test_unknown_scheme_lists_valid_ones():
    model, _ = _trained_model()
    with pytest.raises(InvalidParameterError) as info:
        quantize(model, "int2")
    assert "'fp16', 'bf16', 'int8', 'int4'" in str(info.value) and "Got 'int2' instead." in str(info.value)
    with pytest.raises(InvalidParameterError):
        attach_activation_quant(model, "fp8")


def test_attach_activation_quant_reproduces_quantized_model_after_state_dict_load():
    model, x = _trained_model()
    q, ranges = quantize(model, "int8", calib_x=x)
    rebuilt = copy.deepcopy(model)
    rebuilt.load_state_dict(q.state_dict())
    without_hooks = rebuilt(x).detach()
    handles = attach_activation_quant(rebuilt, "int8", ranges)
    assert len(handles) == len(ranges)
    with_hooks = rebuilt(x).detach()
    assert torch.equal(with_hooks, q(x).detach())
    assert not torch.equal(without_hooks, with_hooks)  # the activation hooks matter
    for h in handles:
        h.remove()
    assert torch.equal(rebuilt(x).detach(), without_hooks)


def test_calibrate_restores_mode_and_leaves_no_hooks():
    model, x = _trained_model()
    model.train()
    ranges = calibrate(model, x, batch_size=50)
    assert model.training
    assert all(len(m._forward_pre_hooks) == 0 for m in model.modules())
    assert ranges == pytest.approx(calibrate(model, x, batch_size=512))  # max over batches = max over all


# ----------------------------------------------------------------------------- weights only, scopes, storage


@pytest.mark.parametrize("scheme", SCHEMES)
def test_weights_only_quantizes_the_same_weights_without_hooks(scheme):
    model, x = _trained_model()
    full, ranges = quantize(model, scheme, calib_x=x[:64])
    weights_only, none = quantize(model, scheme, activations=False)  # no calibration needed
    assert none == {}
    assert all(torch.equal(a, b) for a, b in zip(_state(full).values(), _state(weights_only).values()))
    assert all(len(m._forward_pre_hooks) == 0 for m in weights_only.modules())
    bare = copy.deepcopy(full)
    for m in bare.modules():
        m._forward_pre_hooks.clear()
    assert torch.equal(weights_only(x).detach(), bare(x).detach())


def test_activations_must_be_a_bool():
    model, x = _trained_model()
    with pytest.raises(InvalidParameterError, match="'activations' parameter of quantize must be True or False"):
        quantize(model, "int8", calib_x=x, activations="no")


def test_quant_layers_by_scope():
    model, _ = _trained_model()
    assert [n for n, _ in quant_layers(model)] == ["0", "4", "6"]
    assert [n for n, _ in quant_layers(model, "linear")] == ["4", "6"]
    assert QUANT_SCOPES == ("conv+linear", "linear")
    with pytest.raises(InvalidParameterError, match="'scope' parameter of quant_layers"):
        quant_layers(model, "all")


def test_storage_bits_hand_computed():
    model, _ = _trained_model()
    # conv 6·1·3·3 = 54 (+6 bias), BN 6 + 6, fc 32·384 = 12288 (+32), fc 5·32 = 160 (+5)
    weights, others = 54 + 12288 + 160, 6 + 12 + 32 + 5
    int8 = storage_bits(model, "int8")
    assert int8["0.weight"] == int8["4.weight"] == 8 and int8["0.bias"] == int8["1.weight"] == 32
    assert model_bytes(model, bits=int8) == weights + 4 * others
    assert model_bytes(model, bits=storage_bits(model, "int4")) == (weights * 4 + 7) // 8 + 4 * others
    assert model_bytes(model, bits=storage_bits(model, "fp16")) == 2 * (weights + others)
