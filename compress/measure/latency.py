"""Inference latency: the timing harness, paired log time ratios, the hardware line and an int8 kernel path.

Owns what claim SH-3 ("structured pruning lowers inference time") measures:

* :func:`measure_latency` times several models on one example batch. The
  unit is the timed batch: after ``warmup`` untimed calls of every model,
  each of ``rounds`` rounds times every model once, in an order shuffled per
  round (``numpy.random.default_rng(seed)``), so that drift of the machine
  (clock, cache, other load) falls on all models alike and the rounds pair
  the models' times. Timing uses :class:`torch.utils.benchmark.Timer`, which
  synchronises an accelerator around the timed calls.
* :class:`LatencyRecord` holds the per-round times and the conditions
  (batch size, device, hardware, threads); it round-trips through JSON.
* :func:`log_ratio` gives the paired log time ratio of one model to a
  reference, with a t interval and one-sided t tests (``scipy.stats``).
* :func:`hardware_description` is the "hardware reported" line.
* :func:`int8_inductor` builds a real int8 CPU model (torchao PT2E
  quantization with the X86 inductor quantizer, lowered by ``torch.compile``);
  it raises :class:`Int8Unavailable` where that path does not exist.

The decision rules of the claim are the callers': with ``r = log_ratio(...)``,
"removed faster than base by more than δ" is ``r.t_one_sided(log(1 - δ), "less")``
and "masked equivalent to base within ±δ" is the TOST p value
``max(r.t_one_sided(log(1 - δ), "greater"), r.t_one_sided(log(1 + δ), "less"))``.

CPU times here run under the project's pinned numerics (compress/runtime/numerics.py:
in portable mode ATen's kernels are the non-vectorised ``default`` ones), so
:func:`hardware_description` records the CPU capability in force.

One module though long: the harness, its record and statistics, and the int8
path are what one timing claim needs, and the int8 path's workarounds (each
commented where it is) are most of the length.
"""
from __future__ import annotations

import contextlib
import copy
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from analysis._validation import check_choice, check_in_range, invalid

__all__ = [
    "Int8Unavailable",
    "LatencyRecord",
    "LogRatio",
    "hardware_description",
    "int8_inductor",
    "log_ratio",
    "measure_latency",
]

ALTERNATIVES = ("less", "greater")


def _check_int(param: str, owner: str, value: object, low: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise invalid(param, owner, f"an integer >= {low}", value)


def _check_batched(param: str, owner: str, example: object) -> None:
    if not isinstance(example, Tensor):
        raise invalid(param, owner, "a torch.Tensor", type(example).__name__)
    if example.dim() < 2 or example.shape[0] < 1:
        raise invalid(param, owner, "a tensor with a batch dimension first (at least 2 dimensions, batch >= 1)",
                      f"a tensor of shape {tuple(example.shape)}")


@dataclass(frozen=True, eq=False)
class LatencyRecord:
    """Per-round times of several models on one batch, and the conditions they were measured under.

    Attributes
    ----------
    names : tuple of str
        The models, in the order of the mapping given to :func:`measure_latency`.
    times : dict of str to numpy.ndarray
        Seconds per timed batch (one forward pass on ``batch_size`` inputs),
        one entry per round; entry ``i`` of every model comes from round ``i``
        (paired by round). Stored as read-only float64 arrays.
    batch_size : int
        Inputs per timed batch.
    device : str
        Where the models ran (``"cpu"``, ``"cuda:0"``).
    hardware : str
        :func:`hardware_description` of that device.
    threads : int
        Intra-op CPU threads during timing.
    rounds, warmup : int
        Timed rounds (>= 2) and untimed warm-up calls per model before them.
    order_seed : int
        Seed of the per-round shuffles.
    inner : int
        Calls per timed run (``times`` is their mean).
    orders : tuple of tuple of str
        The order in which the models ran in each round (empty for a record built by hand).
    """

    names: tuple[str, ...]
    times: dict[str, np.ndarray]
    batch_size: int
    device: str
    hardware: str
    threads: int
    rounds: int
    warmup: int
    order_seed: int
    inner: int = 1
    orders: tuple[tuple[str, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        owner = "LatencyRecord"
        names = tuple(self.names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise invalid("names", owner, "a non-empty sequence of distinct strings", self.names)
        _check_int("rounds", owner, self.rounds, 2)
        _check_int("batch_size", owner, self.batch_size, 1)
        _check_int("threads", owner, self.threads, 1)
        _check_int("warmup", owner, self.warmup, 0)
        _check_int("inner", owner, self.inner, 1)
        if set(self.times) != set(names):
            raise invalid("times", owner, f"a mapping with exactly the keys {list(names)}", sorted(self.times))
        times = {}
        for name in names:
            t = np.array(self.times[name], dtype=np.float64)
            if t.shape != (self.rounds,) or not np.all(np.isfinite(t)) or np.any(t <= 0):
                raise invalid("times", owner, f"{self.rounds} positive finite seconds per model (one per round)",
                              f"{name!r}: {self.times[name]!r}")
            t.setflags(write=False)
            times[name] = t
        orders = tuple(tuple(o) for o in self.orders)
        if orders and (len(orders) != self.rounds or any(sorted(o) != sorted(names) for o in orders)):
            raise invalid("orders", owner, f"empty or {self.rounds} permutations of {list(names)}", self.orders)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "orders", orders)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyRecord):
            return NotImplemented
        a, b = self.to_dict(), other.to_dict()
        return a == b

    __hash__ = None  # type: ignore[assignment]  # holds a dict and arrays

    def per_image_ms(self, name: str) -> float:
        """Mean over rounds of the time per input, in milliseconds."""
        check_choice("name", "LatencyRecord.per_image_ms", name, self.names)
        return float(np.mean(self.times[name]) / self.batch_size * 1e3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists, ints, strings); :meth:`from_dict` inverts it."""
        return {
            "names": list(self.names),
            "times": {n: [float(v) for v in self.times[n]] for n in self.names},
            "batch_size": int(self.batch_size),
            "device": self.device,
            "hardware": self.hardware,
            "threads": int(self.threads),
            "rounds": int(self.rounds),
            "warmup": int(self.warmup),
            "order_seed": int(self.order_seed),
            "inner": int(self.inner),
            "orders": [list(o) for o in self.orders],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyRecord:
        """Rebuild a record from :meth:`to_dict`'s output (e.g. after ``json.loads``)."""
        return cls(
            names=tuple(data["names"]),
            times={n: np.asarray(v, dtype=np.float64) for n, v in data["times"].items()},
            batch_size=data["batch_size"],
            device=data["device"],
            hardware=data["hardware"],
            threads=data["threads"],
            rounds=data["rounds"],
            warmup=data["warmup"],
            order_seed=data["order_seed"],
            inner=data.get("inner", 1),
            orders=tuple(tuple(o) for o in data.get("orders", ())),
        )


@dataclass(frozen=True, eq=False)
class LogRatio:
    """Paired log time ratios ``log(t_name / t_reference)``, one per round.

    Attributes
    ----------
    name, reference : str
        The model timed and the one it is compared with.
    values : numpy.ndarray
        The per-round log ratios (read-only).
    """

    name: str
    reference: str
    values: np.ndarray

    def __post_init__(self) -> None:
        v = np.array(self.values, dtype=np.float64)
        if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)):
            raise invalid("values", "LogRatio", "at least 2 finite log ratios", self.values)
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    @property
    def n(self) -> int:
        """Number of paired rounds."""
        return int(self.values.size)

    @property
    def mean(self) -> float:
        """Mean log ratio over rounds (``exp`` of it is the geometric-mean time ratio)."""
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        """Sample standard deviation of the log ratios (``ddof=1``)."""
        return float(np.std(self.values, ddof=1))

    @property
    def ratio(self) -> float:
        """Geometric-mean time ratio ``exp(mean)``; below 1 means ``name`` is faster."""
        return float(np.exp(self.mean))

    def ci(self, alpha: float = 0.05) -> tuple[float, float]:
        """Two-sided ``1 - alpha`` t interval for the mean log ratio."""
        check_in_range("alpha", "LogRatio.ci", alpha, 0.0, 1.0)
        half = stats.t.ppf(1.0 - alpha / 2.0, self.n - 1) * self.sd / np.sqrt(self.n)
        return (self.mean - float(half), self.mean + float(half))

    def ratio_ci(self, alpha: float = 0.05) -> tuple[float, float]:
        """:meth:`ci` on the ratio scale (``exp`` of both ends)."""
        lo, hi = self.ci(alpha)
        return (float(np.exp(lo)), float(np.exp(hi)))

    def t_one_sided(self, null: float, alternative: str) -> float:
        """One-sided one-sample t test p value of ``H1: mean log ratio < null`` (``"less"``) or ``> null``.

        ``null`` is on the log scale (e.g. ``log(0.95)``). Where every round
        gives the same log ratio (``sd == 0``) the test is degenerate and the
        p value is 0 when the alternative holds strictly, else 1.
        """
        owner = "LogRatio.t_one_sided"
        check_choice("alternative", owner, alternative, ALTERNATIVES)
        if not isinstance(null, (int, float)) or isinstance(null, bool) or not np.isfinite(null):
            raise invalid("null", owner, "a finite number (log scale)", null)
        if np.ptp(self.values) == 0.0:
            holds = self.mean < null if alternative == "less" else self.mean > null
            return 0.0 if holds else 1.0
        return float(stats.ttest_1samp(self.values, float(null), alternative=alternative).pvalue)


class Int8Unavailable(RuntimeError):
    """The int8 inductor path does not exist here; ``reason`` says why (callers skip with it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def log_ratio(record: LatencyRecord, name: str, reference: str) -> LogRatio:
    """Per-round ``log(t_name / t_reference)`` of ``record``, paired by round.

    Parameters
    ----------
    record : LatencyRecord
    name, reference : str
        Two of ``record.names``.
    """
    owner = "log_ratio"
    if not isinstance(record, LatencyRecord):
        raise invalid("record", owner, "a LatencyRecord", type(record).__name__)
    check_choice("name", owner, name, record.names)
    check_choice("reference", owner, reference, record.names)
    values = np.log(record.times[name]) - np.log(record.times[reference])
    return LogRatio(name=name, reference=reference, values=values)


def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_description(device: str | torch.device = "cpu", *, threads: int | None = None) -> str:
    """One line naming the hardware and software a latency was measured on.

    CPU: model name (``/proc/cpuinfo``, else :func:`platform.processor` /
    :func:`platform.machine`), logical cores, torch threads, the ATen CPU
    capability in force, torch version. CUDA: also the GPU's name and the
    CUDA version.

    Parameters
    ----------
    device : str or torch.device
    threads : int, optional
        Intra-op threads to report; default :func:`torch.get_num_threads`.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise invalid("device", "hardware_description", "a torch device", device) from e
    n_threads = torch.get_num_threads() if threads is None else threads
    parts = [
        f"CPU {_cpu_model_name()} ({platform.machine()})",
        f"{os.cpu_count()} logical cores",
        f"{n_threads} torch threads",
        f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}",
        f"torch {torch.__version__}",
    ]
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise invalid("device", "hardware_description", "a CUDA device that is available", str(device))
        parts.insert(0, f"GPU {torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})")
    return "; ".join(parts)


def _model_devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in list(model.parameters()) + list(model.buffers())}


def measure_latency(
    models: Mapping[str, nn.Module],
    example: Tensor,
    *,
    rounds: int = 50,
    warmup: int = 5,
    inner: int = 1,
    seed: int = 0,
    threads: int | None = None,
) -> LatencyRecord:
    """Time every model on ``example``, interleaved in a random order per round.

    Models run in eval mode (their modes are restored afterwards) under
    :func:`torch.inference_mode`. First ``warmup`` untimed calls of each
    model; then in each round every model is timed once by
    :class:`torch.utils.benchmark.Timer` (``stmt="model(x)"``; the Timer makes
    two untimed calls of its own before each timed run and synchronises an
    accelerator), in an order drawn by ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    models : mapping of str to torch.nn.Module
        At least one model; all on the device of ``example`` (parameters and buffers).
    example : torch.Tensor
        One batch, batch dimension first.
    rounds : int
        Timed rounds, >= 2 (the paired tests need two).
    warmup : int
        Untimed calls per model before the first round, >= 0.
    inner : int
        Calls per timed run, >= 1; a round's time is their mean.
    seed : int
        Seed of the per-round shuffles.
    threads : int, optional
        Intra-op CPU threads during timing; default :func:`torch.get_num_threads`.

    Returns
    -------
    LatencyRecord
        Seconds per timed batch, per model and round, with the orders used.
    """
    from torch.utils.benchmark import Timer

    owner = "measure_latency"
    if not isinstance(models, Mapping) or not models:
        raise invalid("models", owner, "a non-empty mapping of names to nn.Module",
                      models if isinstance(models, Mapping) else type(models).__name__)
    for name, model in models.items():
        if not isinstance(name, str) or not isinstance(model, nn.Module):
            raise invalid("models", owner, "a mapping of str names to nn.Module",
                          f"{name!r}: {type(model).__name__}")
    _check_batched("example", owner, example)
    _check_int("rounds", owner, rounds, 2)
    _check_int("warmup", owner, warmup, 0)
    _check_int("inner", owner, inner, 1)
    _check_int("seed", owner, seed, 0)
    if threads is not None:
        _check_int("threads", owner, threads, 1)
    for name, model in models.items():
        others = {d for d in _model_devices(model) if d != example.device}
        if others:
            raise invalid("models", owner, f"models on the example's device ({example.device})",
                          f"{name!r} on {', '.join(sorted(map(str, others)))}")

    names = tuple(models)
    n_threads = torch.get_num_threads() if threads is None else int(threads)
    rng = np.random.default_rng(seed)
    times = {n: np.empty(rounds) for n in names}
    orders = []
    was_training = {n: m.training for n, m in models.items()}
    try:
        for m in models.values():
            m.eval()
        timers = {n: Timer(stmt="model(x)", globals={"model": models[n], "x": example}, num_threads=n_threads)
                  for n in names}
        with torch.inference_mode(), _torch_threads(n_threads):
            for n in names:
                for _ in range(warmup):
                    models[n](example)
            if example.device.type == "cuda":
                torch.cuda.synchronize(example.device)
            for r in range(rounds):
                order = tuple(names[i] for i in rng.permutation(len(names)))
                orders.append(order)
                for n in order:
                    times[n][r] = timers[n].timeit(inner).mean
    finally:
        for n, m in models.items():
            m.train(was_training[n])
    return LatencyRecord(
        names=names,
        times=times,
        batch_size=int(example.shape[0]),
        device=str(example.device),
        hardware=hardware_description(example.device, threads=n_threads),
        threads=n_threads,
        rounds=int(rounds),
        warmup=int(warmup),
        order_seed=int(seed),
        inner=int(inner),
        orders=tuple(orders),
    )


@contextlib.contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _FrozenInductor(nn.Module):
    """A ``torch.compile``-d PT2E model, fixed to one input shape, that compiles with inductor freezing on.

    Freezing (constant weights, pre-packed oneDNN int8 kernels) is what lowers
    the quantized pattern to int8 convolutions and matmuls; it is an inductor
    config flag read at compile time, and ``torch.compile(options={"freezing": True})``
    fails on the quantized graph (torch 2.14, torchao 0.18), so the flag is
    patched around every call that may compile: the first call in each
    grad / inference mode. (A compile without freezing also fails under the
    project's portable numerics: inductor emits vector code that ATen's
    ``default`` capability headers do not define.) Later calls go straight to
    the compiled module. The exported graph is specialised to the example's
    shape; other shapes are refused with a clear error.
    """

    def __init__(self, compiled: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.compiled = compiled
        self.shape = shape
        self._seen: set[tuple[bool, bool]] = set()

    def train(self, mode: bool = True) -> _FrozenInductor:
        """Set the flag only: exported graphs refuse ``train()`` / ``eval()``, and this module is inference-only."""
        self.training = mode
        return self

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape) != self.shape:
            raise invalid("x", "the int8_inductor model", f"of shape {self.shape}, the example's "
                          "(build one int8 model per batch size)", f"a tensor of shape {tuple(x.shape)}")
        key = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())
        if key in self._seen:
            return self.compiled(x)
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            out = self.compiled(x)
        self._seen.add(key)
        return out


def int8_inductor(model: nn.Module, example: Tensor) -> nn.Module:
    """An int8 version of ``model`` that runs real int8 CPU kernels (torchao PT2E + inductor).

    ``torch.export`` of the model in eval mode, :func:`prepare_pt2e` with the
    :class:`X86InductorQuantizer` (default config: static per-tensor uint8
    activations, per-channel int8 weights), calibration on ``example``,
    :func:`convert_pt2e`, then ``torch.compile`` with inductor freezing. The
    model is compiled here, by a first call on ``example`` under
    :func:`torch.inference_mode` (as :func:`measure_latency` calls it), so a
    failure surfaces here and not in the timing. The result is for inference
    only and takes inputs of the example's shape only (``torch.export``
    specialises the graph): build one per batch size.

    Parameters
    ----------
    model : torch.nn.Module
        Float model on the CPU; not modified (a copy is quantized).
    example : torch.Tensor
        A CPU batch, batch dimension first; the calibration data.

    Raises
    ------
    Int8Unavailable
        torchao is not installed, the machine is not x86-64, oneDNN is missing,
        or export / quantization / compilation fails here; ``reason`` says which.
    """
    owner = "int8_inductor"
    if not isinstance(model, nn.Module):
        raise invalid("model", owner, "an nn.Module", type(model).__name__)
    _check_batched("example", owner, example)
    if example.device.type != "cpu":
        raise invalid("example", owner, "a CPU tensor (the X86 inductor int8 path is CPU only)", str(example.device))
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "x64"):
        raise Int8Unavailable(f"the X86 inductor int8 path needs an x86-64 CPU; this machine is {machine!r}")
    if not torch.backends.mkldnn.is_available():
        raise Int8Unavailable("this torch build has no oneDNN (mkldnn), which the int8 CPU kernels need")
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as e:
        raise Int8Unavailable(f"torchao is not installed or too old for PT2E quantization ({e}); "
                              "pip install torchao") from e
    try:
        import torch._inductor.config as inductor_config

        float_model = copy.deepcopy(model).eval()
        with torch.no_grad():
            exported = torch.export.export(float_model, (example,)).module()
            quantizer = X86InductorQuantizer()
            quantizer.set_global(get_default_x86_inductor_quantization_config())
            prepared = prepare_pt2e(exported, quantizer)
            prepared(example)  # calibration
            converted = convert_pt2e(prepared)
        with inductor_config.patch(freezing=True):
            compiled = torch.compile(converted, dynamic=False)
        wrapped = _FrozenInductor(compiled, tuple(example.shape)).eval()
        with torch.inference_mode():
            wrapped(example)
    except Exception as e:  # any failure of the path on this platform: callers skip with the reason
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise Int8Unavailable(f"the torchao PT2E / inductor int8 path failed here: {type(e).__name__}: {first}") from e
    return wrapped
