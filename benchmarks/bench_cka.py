"""Benchmark: batched all-layer-pairs linear CKA vs a per-pair loop.

What is measured: linear CKA (biased, float64) between every layer of one
CIFAR ResNet-18 and every layer of a second, differently initialised one
(activations of each Conv2d / BatchNorm2d / Linear module on random
CIFAR-shaped inputs), computed

(a) batched: ``compress.measure.cka.cka_matrix`` (each layer's centered Gram matrix
    built once, one matrix product for all pairs), and
(b) per-pair loop: for each (layer_a, layer_b) both Gram matrices are rebuilt
    and centered (``gram_linear`` + ``center_gram``, O(n²) centering) and
    their normalised Frobenius product taken, as common CKA packages do.
    Packages that form ``H K H`` by matrix products (O(n³)) are slower still.

Feature extraction is not timed. Usage::

    python benchmarks/bench_cka.py [--n 2000] [--layers 41] [--device cpu] [--repeats 3]

Costs grow as L·n²·Σfeatures for the loop and n²·Σfeatures for the batched
version; ``--n`` and ``--layers`` (evenly spaced subset) shrink a run that
would take too long, and the output says when they did.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet18

from compress.measure.cka import DEFAULT_LAYER_TYPES, center_gram, cka_matrix, extract_features, gram_linear

DEFAULT_N = 2000
N_RESNET18_LAYERS = 41  # 20 conv, 20 batch norm, 1 linear


def cifar_resnet18(seed: int) -> nn.Module:
    """torchvision ResNet-18 with the usual CIFAR stem: 3×3 stride-1 conv, no max-pool."""
    torch.manual_seed(seed)
    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def per_pair_loop(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """CKA of every pair, rebuilding both centered Gram matrices for each pair."""
    out = torch.empty((len(feats_a), len(feats_b)), dtype=torch.float64)
    for i, x in enumerate(feats_a):
        for j, y in enumerate(feats_b):
            k = center_gram(gram_linear(x.to(device)))
            l = center_gram(gram_linear(y.to(device)))
            out[i, j] = float(torch.sum(k * l) / (torch.linalg.vector_norm(k) * torch.linalg.vector_norm(l)))
    return out


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: writing 5 resets the peak RSS (VmHWM) to the current RSS
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def _peak_extra(device: torch.device, before: int) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - before
    return _rss_bytes("VmHWM") - before


def timed(fn: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> tuple[list[float], int, torch.Tensor]:
    """Wall times of ``repeats`` calls, peak extra memory over all of them, last result."""
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else _rss_bytes("VmRSS")
    _reset_peak(device)
    times = []
    result = None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times, _peak_extra(device, before), result


def hardware(device: torch.device) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"CPU {cpu}, torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="number of inputs (default %(default)s)")
    parser.add_argument("--layers", type=int, default=N_RESNET18_LAYERS,
                        help="layers per model, evenly spaced over the 41 conv/bn/linear layers (default all)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the batched version")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed runs of the per-pair loop")
    parser.add_argument("--max-loop-s", type=float, default=300.0,
                        help="skip the loop if its estimated time exceeds this (then shrink --n/--layers)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not 1 <= args.layers <= N_RESNET18_LAYERS or args.n < 2 or args.repeats < 1 or args.loop_repeats < 1:
        parser.error("need 1 <= --layers <= 41, --n >= 2, --repeats >= 1, --loop-repeats >= 1")

    model_a, model_b = cifar_resnet18(seed=0), cifar_resnet18(seed=1)
    all_names = [name for name, m in model_a.named_modules() if isinstance(m, DEFAULT_LAYER_TYPES)]
    keep = np.unique(np.linspace(0, len(all_names) - 1, args.layers).round().astype(int))
    names = [all_names[i] for i in keep]
    inputs = torch.randn(args.n, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    feats_a = list(extract_features(model_a, inputs, names, batch_size=250, device=device).values())
    feats_b = list(extract_features(model_b, inputs, names, batch_size=250, device=device).values())
    n_features = sum(f.shape[1] for f in feats_a)

    print("# bench_cka: linear CKA (biased, float64) for all layer pairs of two CIFAR ResNet-18s")
    print(f"# hardware: {hardware(device)}; compute device: {device}")
    print(f"# inputs: n = {args.n} random CIFAR-shaped images; layers per model: {len(names)} of "
          f"{len(all_names)} conv/bn/linear ({len(names) ** 2} pairs), {n_features} features per model")
    if args.n != DEFAULT_N or len(names) != len(all_names):
        print(f"# REDUCED from the default (n = {DEFAULT_N}, all {len(all_names)} layers) via --n/--layers "
              "so that the per-pair loop fits in minutes; the speed-up grows with the layer count")
    print(f"# repeats: batched {args.repeats} (after 1 warm-up), loop {args.loop_repeats}; "
          "times are wall-clock seconds, feature extraction excluded")
    print(f"# peak memory: extra {'torch.cuda.max_memory_allocated' if device.type == 'cuda' else 'peak RSS (VmHWM)'}"
          " over the level before each phase")

    cka_matrix(feats_a, feats_b, device=device)  # warm-up
    batched_times, batched_mem, batched = timed(lambda: cka_matrix(feats_a, feats_b, device=device),
                                                args.repeats, device)
    t_batched = min(batched_times)
    # each pair rebuilds two Gram matrices: ~ La·Lb·2/(La+Lb) times the batched Gram work
    estimate = t_batched * len(names) * args.loop_repeats
    print(f"batched cka_matrix : min {t_batched:9.3f} s  median {statistics.median(batched_times):9.3f} s  "
          f"peak extra memory {batched_mem / 2**20:9.1f} MiB")
    if estimate > args.max_loop_s:
        print(f"per-pair loop      : skipped, estimated {estimate:.0f} s > --max-loop-s {args.max_loop_s:.0f}; "
              "rerun with smaller --n or --layers")
        return
    loop_times, loop_mem, looped = timed(lambda: per_pair_loop(feats_a, feats_b, device), args.loop_repeats, device)
    t_loop = min(loop_times)
    print(f"per-pair loop      : min {t_loop:9.3f} s  median {statistics.median(loop_times):9.3f} s  "
          f"peak extra memory {loop_mem / 2**20:9.1f} MiB")
    print(f"speed-up loop/batched: {t_loop / t_batched:.1f}x")
    print(f"agreement: max |batched - loop| = {float((batched - looped).abs().max()):.2e}")
    print(f"mean CKA over pairs: {float(batched.mean()):.4f}; diagonal mean: {float(torch.diagonal(batched).mean()):.4f}")


if __name__ == "__main__":
    main()
