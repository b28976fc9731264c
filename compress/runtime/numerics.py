"""CPU numerics: native by default (fast), or pinned so that the same spec gives the same bytes on any x86-64 CPU.

Two modes, chosen by ``COMPRESSION_CLAIMS_NUMERICS`` before torch initialises:

* ``native`` (the default): the libraries use whatever the CPU offers (AVX-512
  kernels, oneDNN convolutions, NNPACK). About 2.4× faster than ``portable`` on
  the ``ci`` profile (measured: 1,326 vs 3,202 core-seconds built, same commit,
  same machine). Bytes are those of this CPU, repeatable on it (one thread per
  build), but another CPU gives other bytes: different numerics perturb
  training the way a partial reseed does, which the verdicts are built to
  withstand (the findings gate fails only on robust changes, and a native run
  against a portable baseline and the reverse both pass it).
* ``portable``: the same bytes on any x86-64 CPU, for reproducing an artifact
  exactly or checking byte-identity across machines.

Four things change float results on a CPU besides the thread count, and all
four are chosen by the libraries from the CPU they find unless told otherwise:

* ATen's vectorised kernels (``ATEN_CPU_CAPABILITY``: default / avx2 / avx512);
* MKL's GEMM code path (``MKL_CBWR``; without it MKL picks a path per CPU
  vendor and instruction set, and on non-Intel CPUs an AVX2 request silently
  falls back to automatic dispatch);
* oneDNN's convolutions, whose JIT kernels block by instruction set *and*
  cache size (``ONEDNN_MAX_CPU_ISA`` caps the first, nothing pins the second);
* NNPACK's convolutions, which ATen uses for the forward pass of ungrouped
  convolutions on batches of 16 or more when oneDNN is off. NNPACK needs AVX2
  (without it ATen falls back to its own kernels), and its Winograd/FFT
  convolutions sum the input channels in blocks sized from the L1 data cache
  (``input_channels_block_max`` in NNPACK's ``convolution-output.c``): a CPU with
  a 48 KiB L1 (Ice Lake and later, Zen 5) groups the sums of a 64-channel
  convolution differently from one with 32 KiB. Found by profiling in
  December 2026, after artifacts had been built with it on.

Measured on this project (torch 2.14, LeNet-5 and an eighth-width ResNet-18, 3
epochs, one thread): each of the first three settings alone changes the weight
hash, ``ATEN_CPU_CAPABILITY`` = default / avx2 / avx512 gave three different
models, and NNPACK on / off changes an eighth-width ResNet-18's loss in the third
decimal after 13 steps. The *portable* mode fixes all four to what every x86-64
CPU runs the same way — ATen ``default``, MKL ``COMPATIBLE`` and neither oneDNN
nor NNPACK for CPU builds (convolutions go through im2col + MKL GEMM) — and the caller's own settings of
these variables then change nothing (checked: avx512 / avx2 / default and MKL
instruction overrides give identical bytes). It costs about 2.4× in CPU
training time on the ``ci`` models; ``COMPRESSION_CLAIMS_NUMERICS=portable``
turns it on. The mode is recorded with every artifact, report and baseline.

The variables must be set before torch initialises its CPU dispatch, so
:func:`pin_cpu_dispatch` runs when :mod:`compress` is imported (the root
``conftest.py`` imports it first, so xdist workers inherit the settings and
pin again themselves). If torch was imported earlier with another capability,
the pin cannot take effect: :func:`pin_cpu_dispatch` warns once, and
:func:`environment` records what is really in force.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "MODE_VARIABLE",
    "PORTABLE_SETTINGS",
    "NumericsWarning",
    "mode",
    "pin_cpu_dispatch",
    "cpu_build",
    "environment",
    "differences",
]

MODE_VARIABLE = "COMPRESSION_CLAIMS_NUMERICS"
MODES = ("native", "portable")

#: Environment settings of the portable mode (read by ATen and MKL at initialisation).
PORTABLE_SETTINGS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


class NumericsWarning(UserWarning):
    """The CPU numerics could not be pinned in this process; its artifacts may differ in bytes."""


#: The mode when :data:`MODE_VARIABLE` is unset or empty.
DEFAULT_MODE = "native"


def mode() -> str:
    """``"native"`` (default) or ``"portable"``, from :data:`MODE_VARIABLE`."""
    value = os.environ.get(MODE_VARIABLE, DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    if value not in MODES:
        raise ValueError(
            f"The {MODE_VARIABLE!r} environment variable must be one of {', '.join(map(repr, MODES))}. "
            f"Got {value!r} instead."
        )
    return value


def pin_cpu_dispatch() -> bool:
    """Set the portable settings before torch initialises; return whether they are in force.

    Safe to call repeatedly. Overrides the caller's own values of the
    variables in :data:`PORTABLE_SETTINGS` (a user's ``ATEN_CPU_CAPABILITY=avx512``
    must not change an artifact's bytes). In ``native`` mode it does nothing.
    """
    if mode() == "native":
        return False
    os.environ.update(PORTABLE_SETTINGS)
    torch = sys.modules.get("torch")
    if torch is None:
        return True
    in_force = torch.backends.cpu.get_cpu_capability()
    if in_force.lower() != PORTABLE_SETTINGS["ATEN_CPU_CAPABILITY"]:
        warnings.warn(
            NumericsWarning(
                f"torch was imported before compress could pin its CPU dispatch (capability {in_force}, "
                f"wanted {PORTABLE_SETTINGS['ATEN_CPU_CAPABILITY']}): artifacts built in this process are "
                "not byte-identical to other machines'. Import compress before torch, or set "
                + " ".join(f"{k}={v}" for k, v in PORTABLE_SETTINGS.items())
                + " in the environment."
            ),
            stacklevel=2,
        )
        return False
    return True


@contextlib.contextmanager
def cpu_build():
    """One CPU build: one intra-op thread and, in portable mode, neither oneDNN nor NNPACK.

    The thread count changes float reduction order (a ResNet's weights differ
    by ~1e-2 after two epochs with 1 vs 2 threads); parallelism on CPU comes
    from xdist workers instead. oneDNN's and NNPACK's kernels depend on the
    CPU's cache sizes (NNPACK's also on AVX2), so portable builds run
    convolutions through ATen + MKL.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    portable = mode() == "portable"
    try:
        with warnings.catch_warnings():
            # mkldnn.flags() also re-sets the oneDNN TF32 switch, which warns on builds without Intel-GPU support.
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            flags = torch.backends.mkldnn.flags(enabled=False) if portable else contextlib.nullcontext()
            flags.__enter__()
        nnpack = torch.backends.nnpack.flags(enabled=False) if portable else contextlib.nullcontext()
        nnpack.__enter__()
        try:
            yield
        finally:
            nnpack.__exit__(None, None, None)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
                flags.__exit__(None, None, None)
    finally:
        torch.set_num_threads(before)


def environment(device: str = "cpu") -> dict:
    """What decides an artifact's bytes: torch version, CPU capability, numerics mode, threads, device.

    Recorded in every artifact's metadata, the report and the findings
    baseline, so a run can say when it compares against another environment.
    """
    import torch

    env = {
        "torch": torch.__version__,
        "numerics": mode(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "machine": platform.machine(),
        "device": str(device),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["threads"] = None
    else:
        env["threads"] = 1  # every CPU build runs single-threaded (cpu_build)
    return env


def differences(a: dict | None, b: dict | None) -> list[str]:
    """``"key: a → b"`` for each setting on which two environments differ in a way that can change bytes.

    Devices compare by type (``cuda:0`` and ``cuda:1`` build alike); an empty
    list means the same environment, or that one side is unknown.
    """
    if not a or not b:
        return []
    out = []
    for key in ("torch", "numerics", "cpu_capability", "mkl_cbwr", "machine", "device", "threads"):
        va, vb = a.get(key), b.get(key)
        if key == "device":
            va, vb = str(va).split(":")[0], str(vb).split(":")[0]
        if va != vb:
            out.append(f"{key}: {va} → {vb}")
    return out
