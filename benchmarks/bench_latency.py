"""Inference latency of SH's VGG-11 variants: dense, zeroed (masked), physically removed, and real int8 kernels.

The ``ci`` profile's VGG-11 (torchvision layout, three-layer classifier, 1/8 width) on ``colour_digits`` shapes,
initialised (latency does not depend on training): dense base; 25 % unstructured (masked); 25 % structured
(zeroed filters/units, masked); the same physically removed (Torch-Pruning); and, when torchao is installed
(``pip install -e ".[int8]"``), the base through torchao's PT2E x86 inductor int8 path — skipped with the reason
otherwise. Times every model interleaved in random order per round (:func:`compress.measure.latency.measure_latency`) and
prints each one's time ratio to the dense base measured in the same run, with a 95 % interval.

    python benchmarks/bench_latency.py                       # CPU, batch 1 and 64, 100 rounds
    python benchmarks/bench_latency.py --device cuda --batches 1 256
    python benchmarks/bench_latency.py --native              # the CPU's vectorised kernels (not the pinned ones)

By default the project's portable numerics are in force (``ATEN_CPU_CAPABILITY=default``: scalar kernels, the
same bytes on any x86-64 CPU); ``--native`` times what this CPU's own kernels do instead.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--native", action="store_true", help="do not pin ATen's CPU dispatch to 'default'")
    args = parser.parse_args(argv)
    if args.native:
        os.environ["COMPRESSION_CLAIMS_NUMERICS"] = "native"

    import torch

    from compress.measure.latency import (Int8Unavailable, hardware_description, int8_inductor, log_ratio,
                                          measure_latency)
    from compress.prune.per_layer import allocatable, layer_masks, remove_zeroed_units
    from compress.prune.masks import apply_masks
    from compress.models.registry import create_model

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run on CPU (--device cpu)", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    base = create_model("vgg11_fc", 10, (3, 8, 8), width=0.125, fc_width=256, batch_norm=True, min_map=4).eval()
    models = {"dense": base}
    for method in ("unstructured", "structured"):
        m = create_model("vgg11_fc", 10, (3, 8, 8), width=0.125, fc_width=256, batch_norm=True, min_map=4).eval()
        m.load_state_dict(base.state_dict())
        masks = layer_masks(m, {n: 0.25 for n in allocatable(m, method, "all")}, method)
        apply_masks(m, masks)
        models[f"{method} (masked)"] = m
        if method == "structured":
            models["structured (removed)"] = remove_zeroed_units(m, masks, torch.zeros(2, 3, 8, 8))
    print(hardware_description(args.device))
    for batch in args.batches:
        example = torch.randn(batch, 3, 8, 8)
        timed = {k: v for k, v in models.items()}
        if args.device == "cpu":
            try:
                timed["int8 (torchao inductor)"] = int8_inductor(base, example)
            except Int8Unavailable as err:
                print(f"batch {batch}: int8 path skipped: {err.reason}")
        timed = {k: v.to(args.device) for k, v in timed.items()}
        record = measure_latency(timed, example.to(args.device), rounds=args.rounds, warmup=10, seed=batch, threads=1)
        print(f"\nbatch {batch}: {args.rounds} interleaved rounds, ms per image; ratio to dense [95 % CI]")
        for name in record.names:
            ratio = "1.000 (baseline)" if name == "dense" else (
                "{:.3f} [{:.3f}, {:.3f}]".format(log_ratio(record, name, "dense").ratio,
                                                 *log_ratio(record, name, "dense").ratio_ci()))
            print(f"  {name:26s} {record.per_image_ms(name):8.4f}   {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
