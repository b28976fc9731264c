"""Compiled training steps on CPU: speed, compile cost, and whether the bytes stay portable.

For each ``ci`` model (LeNet-5; ResNet-18 at 1/8 width; digits, batch 64, one
thread, the project's pinned numerics), in fresh subprocesses:

* ``eager``: seconds per training step of the plain model (forward, loss,
  backward, SGD step);
* ``compiled``: the same with ``torch.compile`` (inductor) on the model; the
  compile time with an empty cache (cold) and with the cache a previous
  process left (warm: the persistent FX-graph/AOT cache beside the store);
* the break-even: how many training steps the compile needs to pay back, and
  what one ``ci`` model's training (epochs × steps) gains or loses with it;
* the same two with the dispatch not pinned (``COMPRESSION_CLAIMS_NUMERICS=native``):
  inductor vectorises only when ``ATEN_CPU_CAPABILITY`` allows it, so under the
  pinned ``default`` level its kernels are scalar;
* portability: a SHA-256 of the weights after the same steps under
  ``ATEN_CPU_CAPABILITY=default`` and under the machine's native level, eager
  and compiled. The store promises the same bytes on any x86-64 CPU; a compiled
  step is only usable if its bytes do not depend on the CPU either.

    python benchmarks/bench_compile.py                # both models, ~3-5 minutes on 2 cores
    python benchmarks/bench_compile.py --models lenet5 --steps 50
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"lenet5": {}, "resnet18": {"width": 0.125}}
#: Steps of one ci model's training (digits: 1,257 examples, batch 64 → 20 steps an epoch; ci epochs).
CI_STEPS = {"lenet5": 20 * 15, "resnet18": 20 * 10}


def worker(arch: str, mode: str, steps: int) -> dict:
    """One measurement in this process (called in a subprocess so caches and dispatch start clean)."""
    import compress  # noqa: F401  (pins numerics first)
    import torch
    import torch.nn.functional as F

    from compress.data.datasets import load_dataset
    from compress.models.registry import create_model

    torch.set_num_threads(1)
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = create_model(arch, data.num_classes, data.in_shape, **MODELS[arch])
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randperm(data.n_train, generator=g)[:64] for _ in range(steps)]
    net = torch.compile(model) if mode == "compiled" else model

    def step(idx):
        loss = F.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step(batches[0])  # compiles (forward and backward graphs) when compiled
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for idx in batches[1:]:
        step(idx)
    per_step = (time.perf_counter() - t0) / max(1, steps - 1)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()[:16]
    return {"first_step_s": first, "per_step_s": per_step, "weights": digest,
            "capability": torch.backends.cpu.get_cpu_capability()}


def run(arch: str, mode: str, steps: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", arch, mode, str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], int(args.worker[2]))))
        return
    print(f"# compiled vs eager training steps, digits, batch 64, 1 thread, {args.steps} steps per run")
    for arch in args.models:
        with tempfile.TemporaryDirectory() as cache:
            # The project pins ATEN_CPU_CAPABILITY=default itself; "native" opts out (COMPRESSION_CLAIMS_NUMERICS).
            pinned = {"TORCHINDUCTOR_CACHE_DIR": cache}
            native = {"TORCHINDUCTOR_CACHE_DIR": cache + "-native", "COMPRESSION_CLAIMS_NUMERICS": "native"}
            eager = run(arch, "eager", args.steps, pinned)
            cold = run(arch, "compiled", args.steps, pinned)
            warm = run(arch, "compiled", args.steps, pinned)
            eager_native = run(arch, "eager", args.steps, native)
            compiled_native = run(arch, "compiled", args.steps, native)
        speedup = eager["per_step_s"] / cold["per_step_s"]
        saved = eager["per_step_s"] - cold["per_step_s"]
        compile_cold = cold["first_step_s"] - eager["first_step_s"]
        compile_warm = warm["first_step_s"] - eager["first_step_s"]
        n = CI_STEPS[arch]
        model_eager = n * eager["per_step_s"]
        print(f"{arch}: eager {eager['per_step_s'] * 1e3:.2f} ms/step, compiled {cold['per_step_s'] * 1e3:.2f} ms/step "
              f"({speedup:.2f}x); compile {compile_cold:.1f} s cold, {compile_warm:.1f} s warm")
        for name, c in (("cold", compile_cold), ("warm", compile_warm)):
            model_compiled = c + n * cold["per_step_s"]
            even = c / saved if saved > 0 else float("inf")
            print(f"  one ci model ({n} steps), compile {name}: eager {model_eager:.1f} s vs compiled "
                  f"{model_compiled:.1f} s ({model_eager / model_compiled:.2f}x); pays back after {even:.0f} steps")
        print(f"  native dispatch (not portable): eager {eager_native['per_step_s'] * 1e3:.2f} ms/step, compiled "
              f"{compiled_native['per_step_s'] * 1e3:.2f} ms/step "
              f"({eager_native['per_step_s'] / compiled_native['per_step_s']:.2f}x; pinned eager / native compiled "
              f"{eager['per_step_s'] / compiled_native['per_step_s']:.2f}x)")
        print(f"  weights after {args.steps} steps: eager pinned {eager['weights']} ({eager['capability']}), "
              f"eager native {eager_native['weights']} ({eager_native['capability']}), "
              f"compiled pinned {cold['weights']}, compiled warm {warm['weights']}, "
              f"compiled native {compiled_native['weights']}")
        print(f"  compiled == eager: {cold['weights'] == eager['weights']}; compiled portable (pinned == native): "
              f"{cold['weights'] == compiled_native['weights']}; eager portable: "
              f"{eager['weights'] == eager_native['weights']}")


if __name__ == "__main__":
    main()
