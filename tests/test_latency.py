"""Tests for compress.measure.latency: the interleaved timing harness, paired log ratios, the record and the int8 path.

No test compares which model is faster: timings are noise here; only their
shape, pairing, orders and the statistics on hand-made records are checked.
"""
from __future__ import annotations

import builtins
import json
import math
import platform
import shutil

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from analysis._validation import InvalidParameterError
from compress.measure.latency import (
    Int8Unavailable,
    LatencyRecord,
    LogRatio,
    hardware_description,
    int8_inductor,
    log_ratio,
    measure_latency,
)


def _models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"a": nn.Linear(8, 8), "b": nn.Sequential(nn.Linear(8, 8), nn.ReLU()), "c": nn.Linear(8, 8)}


def _record(times: dict[str, list[float]], batch_size: int = 4) -> LatencyRecord:
    rounds = len(next(iter(times.values())))
    return LatencyRecord(names=tuple(times), times={k: np.asarray(v) for k, v in times.items()},
                         batch_size=batch_size, device="cpu", hardware="test", threads=1, rounds=rounds,
                         warmup=0, order_seed=0)


# --- the harness ----------------------------------------------------------------------------------------------------

def test_every_model_gets_one_positive_time_per_round():
    models = _models()
    rec = measure_latency(models, torch.randn(4, 8), rounds=5, warmup=1, seed=1, threads=1)
    assert rec.names == ("a", "b", "c")
    assert set(rec.times) == {"a", "b", "c"}
    for name in rec.names:
        assert rec.times[name].shape == (5,)
        assert np.all(rec.times[name] > 0) and np.all(np.isfinite(rec.times[name]))
        assert rec.per_image_ms(name) == pytest.approx(rec.times[name].mean() / 4 * 1e3)
    assert (rec.batch_size, rec.rounds, rec.warmup, rec.threads, rec.order_seed) == (4, 5, 1, 1, 1)
    assert rec.device == "cpu" and "torch threads" in rec.hardware


def test_orders_are_permutations_reproducible_for_a_seed():
    x = torch.randn(1, 8)
    first = measure_latency(_models(), x, rounds=8, warmup=0, seed=7)
    again = measure_latency(_models(), x, rounds=8, warmup=0, seed=7)
    other = measure_latency(_models(), x, rounds=8, warmup=0, seed=8)
    assert len(first.orders) == 8
    assert all(sorted(o) == ["a", "b", "c"] for o in first.orders)
    assert first.orders == again.orders
    rng = np.random.default_rng(7)
    assert first.orders == tuple(tuple("abc"[i] for i in rng.permutation(3)) for _ in range(8))
    assert other.orders != first.orders  # deterministic: fixed seeds


def test_models_run_in_eval_mode_and_get_their_mode_back():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((self.training, torch.is_inference_mode_enabled()))
            return x

    probe = Probe().train()
    measure_latency({"probe": probe}, torch.randn(2, 3), rounds=2, warmup=1)
    assert seen and all(s == (False, True) for s in seen)
    assert probe.training


def test_record_round_trips_through_json():
    rec = measure_latency(_models(), torch.randn(2, 8), rounds=3, warmup=0, seed=2, inner=2)
    back = LatencyRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec
    assert back.orders == rec.orders and back.inner == 2


@pytest.mark.parametrize("kwargs, param, got", [
    ({"rounds": 1}, "rounds", "Got 1 instead"),
    ({"warmup": -1}, "warmup", "Got -1 instead"),
    ({"inner": 0}, "inner", "Got 0 instead"),
    ({"threads": 0}, "threads", "Got 0 instead"),
])
def test_bad_counts_are_named(kwargs, param, got):
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter of measure_latency.*{got}"):
        measure_latency(_models(), torch.randn(2, 8), **kwargs)


def test_an_empty_mapping_is_refused():
    with pytest.raises(InvalidParameterError, match=r"'models' parameter of measure_latency.*Got \{\} instead"):
        measure_latency({}, torch.randn(2, 8))


def test_an_example_without_batch_dimension_is_refused():
    with pytest.raises(InvalidParameterError, match=r"'example'.*shape \(8,\)"):
        measure_latency(_models(), torch.randn(8))
    with pytest.raises(InvalidParameterError, match=r"'example'.*list"):
        measure_latency(_models(), [[0.0] * 8])


def test_a_non_module_is_named():
    with pytest.raises(InvalidParameterError, match=r"'models'.*'f': function"):
        measure_latency({"f": lambda x: x}, torch.randn(2, 8))


# --- records and log ratios -------------------------------------------------------------------------------------------

def test_log_ratio_matches_a_hand_computation_and_scipy():
    t_ref = [1.0, 2.0, 4.0, 1.5, 3.0]
    t_new = [0.9, 1.7, 3.9, 1.2, 2.4]
    rec = _record({"base": t_ref, "removed": t_new})
    r = log_ratio(rec, "removed", "base")
    d = np.log(np.array(t_new) / np.array(t_ref))
    assert r.n == 5
    assert r.mean == pytest.approx(d.mean(), rel=1e-12)
    assert r.sd == pytest.approx(d.std(ddof=1), rel=1e-12)
    assert r.ratio == pytest.approx(math.exp(d.mean()))
    lo, hi = r.ci(0.05)
    assert lo < r.mean < hi
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert r.ratio_ci(0.05) == pytest.approx((math.exp(ref.low), math.exp(ref.high)), rel=1e-10)
    null = math.log(0.95)
    assert r.t_one_sided(null, "less") == pytest.approx(stats.ttest_1samp(d, null, alternative="less").pvalue)
    assert r.t_one_sided(null, "greater") == pytest.approx(stats.ttest_1samp(d, null, alternative="greater").pvalue)


def test_equal_times_give_ratio_one():
    t = [0.01, 0.02, 0.015, 0.03]
    r = log_ratio(_record({"base": t, "masked": list(t)}), "masked", "base")
    assert r.mean == 0.0 and r.ratio == 1.0 and r.sd == 0.0
    assert r.ci(0.1) == (0.0, 0.0) and r.ratio_ci(0.1) == (1.0, 1.0)
    # Degenerate test (sd 0): the exact answer, not scipy's nan.
    assert r.t_one_sided(math.log(1.05), "less") == 0.0
    assert r.t_one_sided(math.log(0.95), "greater") == 0.0
    assert r.t_one_sided(0.0, "less") == 1.0


def test_log_ratio_pairs_by_round():
    # Times that drift together cancel in the paired ratio.
    base = [1.0, 10.0, 100.0]
    r = log_ratio(_record({"base": base, "half": [b / 2 for b in base]}), "half", "base")
    assert r.values == pytest.approx([math.log(0.5)] * 3)


def test_per_image_ms_of_a_hand_made_record():
    rec = _record({"m": [0.004, 0.008]}, batch_size=4)
    assert rec.per_image_ms("m") == pytest.approx(1.5)


@pytest.mark.parametrize("times, match", [
    ({"a": [1.0]}, "'rounds'"),
    ({"a": [1.0, -1.0]}, "'times'.*'a'"),
    ({"a": [1.0, float("nan")]}, "'times'"),
])
def test_bad_records_are_named(times, match):
    with pytest.raises(InvalidParameterError, match=match):
        _record(times)


def test_bad_orders_are_refused():
    with pytest.raises(InvalidParameterError, match="'orders'"):
        LatencyRecord(names=("a", "b"), times={"a": [1.0, 1.0], "b": [1.0, 1.0]}, batch_size=1, device="cpu",
                      hardware="", threads=1, rounds=2, warmup=0, order_seed=0, orders=(("a", "b"), ("a", "a")))


def test_log_ratio_names_unknown_models_and_bad_arguments():
    rec = _record({"base": [1.0, 2.0], "x": [1.0, 2.1]})
    with pytest.raises(InvalidParameterError, match=r"'reference' parameter of log_ratio.*'nope'"):
        log_ratio(rec, "x", "nope")
    r = log_ratio(rec, "x", "base")
    with pytest.raises(InvalidParameterError, match="'alternative'.*'two-sided'"):
        r.t_one_sided(0.0, "two-sided")
    with pytest.raises(InvalidParameterError, match="'alpha'.*Got 1.5"):
        r.ci(1.5)
    with pytest.raises(InvalidParameterError, match="'values'"):
        LogRatio("x", "base", np.array([0.1]))


# --- hardware --------------------------------------------------------------------------------------------------------

def test_hardware_description_names_cpu_cores_threads_and_torch():
    text = hardware_description("cpu", threads=3)
    assert "CPU " in text and "logical cores" in text and "3 torch threads" in text
    assert torch.__version__ in text and "ATen CPU capability" in text


def test_hardware_description_without_cpuinfo_falls_back_to_platform(monkeypatch):
    real_open = builtins.open

    def no_cpuinfo(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            raise OSError("not here")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_cpuinfo)
    monkeypatch.setattr("platform.processor", lambda: "TestCPU 9000")
    assert "CPU TestCPU 9000" in hardware_description("cpu")


# --- int8 ------------------------------------------------------------------------------------------------------------

def _small_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


def test_int8_without_torchao_raises_with_a_reason(monkeypatch):
    real_import = builtins.__import__

    def no_torchao(name, *args, **kwargs):
        if name == "torchao" or name.startswith("torchao."):
            raise ImportError(f"No module named {name!r} (test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchao)
    with pytest.raises(Int8Unavailable, match="torchao is not installed") as info:
        int8_inductor(_small_convnet(), torch.randn(2, 3, 8, 8))
    assert "torchao" in info.value.reason


def test_int8_on_a_non_x86_machine_raises_with_a_reason(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    with pytest.raises(Int8Unavailable, match="x86-64.*'aarch64'"):
        int8_inductor(_small_convnet(), torch.randn(2, 3, 8, 8))


def test_int8_refuses_an_unbatched_example():
    with pytest.raises(InvalidParameterError, match="'example' parameter of int8_inductor"):
        int8_inductor(_small_convnet(), torch.randn(3, 8, 8)[0, 0, 0])


@pytest.mark.slow
def test_int8_inductor_is_close_to_the_float_model_and_can_be_timed():
    # Skip only where the path cannot exist; on an x86-64 machine with torchao and a C++ compiler it must work
    # (a skip on any Int8Unavailable once hid a bug of this module).
    pytest.importorskip("torchao")
    if platform.machine().lower() not in ("x86_64", "amd64") or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("the int8 inductor path needs an x86-64 CPU and a C++ compiler")
    model = _small_convnet()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    q = int8_inductor(model, x)
    with torch.inference_mode():
        want, got = model(x), q(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 0.05 * want.abs().max()
    assert not model.training  # the float model is untouched (a copy was quantized)
    rec = measure_latency({"float": model, "int8": q}, x, rounds=2, warmup=1)
    assert np.all(rec.times["int8"] > 0)
    # Outside inference mode it compiles again, still with freezing (the portable numerics break without).
    with torch.no_grad():
        assert (q(x) - want).abs().max() <= 0.05 * want.abs().max()
    with pytest.raises(InvalidParameterError, match=r"shape \(4, 3, 16, 16\).*Got 'a tensor of shape \(1, 3, 16, 16\)'"):
        q(x[:1])


# --- GPU -------------------------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_latency_on_cuda_records_the_gpu():
    models = {n: m.cuda() for n, m in _models().items()}
    rec = measure_latency(models, torch.randn(64, 8, device="cuda"), rounds=3, warmup=2)
    assert rec.device.startswith("cuda") and "GPU " in rec.hardware
    assert all(np.all(rec.times[n] > 0) for n in rec.names)
    with pytest.raises(InvalidParameterError, match=r"'models'.*'cpu_model' on cpu"):
        measure_latency({"gpu": models["a"], "cpu_model": nn.Linear(8, 8)}, torch.randn(2, 8, device="cuda"))
