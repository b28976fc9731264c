"""The GPU check kit: one command that proves the paper path on a CUDA machine and names every figure it measures.

    python benchmarks/gpu_check.py                 # everything, about 5-8 minutes on one H100
    python benchmarks/gpu_check.py --skip-dry-run  # throughput only (a minute)

Without CUDA it prints ``gpu_check: unrun: …`` and exits 0 (CI has no GPU). On a GPU it measures, in one process
and one run, so every ratio compares numbers taken on the same card:

1. **throughput** of the ``ci`` and paper architectures on CIFAR-shaped data resident on the GPU: our engine
   (``compress.training.loop.train``: bf16 autocast, channels_last, no DataLoader) against a plain PyTorch loop
   (float32, contiguous, the same device-resident tensors, ``loss.item()`` each step), as examples/s, their
   ratio, and the engine's sustained training TFLOP/s (3 x forward FLOPs x examples / s: the number
   ``pytest claims --plan --plan-gpu-tflops`` takes in place of its assumed 25);
2. **the paper dry run on cuda** (``fixtures.dry_run``, tiny files in the real formats from ``tests/tinydata.py``):
   ``pytest claims --device cuda -n 2`` (two xdist workers sharing the one GPU), its wall time and outcome;
3. **reproducibility**: the same dry run again into a second, fresh store; per instance, whether the verdict is
   the same, and per artifact, whether its bytes are (cuDNN and bf16 autocast make no promise of bitwise
   equality across runs: the verdicts must match, the bytes are reported).

Exit status: 0 when the dry runs pass and their verdicts agree; 1 otherwise; 0 with "unrun" without CUDA.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

#: (label, architecture, overrides, input shape): the ci profile's models and the paper profile's, at full width.
MODELS = [
    ("ci lenet5 8x8", "lenet5", {}, (1, 8, 8)),
    ("ci resnet18/4 8x8", "resnet18", {"width": 0.25}, (1, 8, 8)),
    ("paper lenet5", "lenet5", {}, (3, 32, 32)),
    ("paper resnet50 (MW)", "resnet50", {}, (3, 32, 32)),
    ("paper mobilenet_v1", "mobilenet_v1", {}, (3, 32, 32)),
    ("paper resnet18 (GC)", "resnet18", {}, (3, 32, 32)),
    ("paper tv_resnet101 (MH)", "tv_resnet101", {}, (3, 32, 32)),
    ("paper tv_densenet161 (MH)", "tv_densenet161", {}, (3, 32, 32)),
    ("paper tv_efficientnet_b3 (MH)", "tv_efficientnet_b3", {}, (3, 32, 32)),
    ("paper tv_vgg11 (SH)", "tv_vgg11", {}, (3, 32, 32)),
]


def say(line: str) -> None:
    print(line, flush=True)


def _plain_loop(model, x, y, batch: int, epochs: int) -> None:
    """What a notebook writes: float32, contiguous, SGD, a host sync on the loss every step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            loss = F.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()


def _timed(fn) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def throughput(n: int, batch: int, epochs: int) -> list[dict]:
    from compress.build.estimate import _flops
    from compress.models.registry import create_model
    from compress.training.loop import TrainConfig, train

    rows = []
    say(f"\n[1] throughput: {n} device-resident examples, batch {batch}, {epochs} epoch(s) after a warm-up epoch")
    say(f"    {'model':32s} {'engine ex/s':>12s} {'plain ex/s':>11s} {'ratio':>6s} {'engine TFLOP/s':>15s}")
    for name, arch, overrides, shape in MODELS:
        torch.manual_seed(0)
        x = torch.randn(n, *shape, device="cuda")
        y = torch.randint(0, 10, (n,), device="cuda")
        forward = _flops(arch, tuple(overrides.items()), shape)[0]
        cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=0.01, schedule="constant", amp=True, channels_last=True)
        warm = TrainConfig(epochs=1, batch_size=batch, lr=0.01, schedule="constant", amp=True, channels_last=True)
        engine_model = create_model(arch, 10, shape, **overrides).cuda()
        train(engine_model, x, y, warm, seed=0)
        engine = _timed(functools.partial(train, engine_model, x, y, cfg, seed=0))
        plain_model = create_model(arch, 10, shape, **overrides).cuda()
        _plain_loop(plain_model, x, y, batch, 1)
        plain = _timed(functools.partial(_plain_loop, plain_model, x, y, batch, epochs))
        ex = n * epochs
        row = {"model": name, "engine_examples_per_s": ex / engine, "plain_examples_per_s": ex / plain,
               "ratio_plain_time_over_engine_time": plain / engine, "engine_tflops": 3 * forward * ex / engine / 1e12}
        rows.append(row)
        say(f"    {name:32s} {row['engine_examples_per_s']:12,.0f} {row['plain_examples_per_s']:11,.0f} "
            f"{row['ratio_plain_time_over_engine_time']:6.2f} {row['engine_tflops']:15.2f}")
        del engine_model, plain_model, x, y
        torch.cuda.empty_cache()
    return rows


def dry_run(work: Path, tag: str, profile: Path, data: Path, timeout: int) -> dict:
    store, report = work / f"store-{tag}", work / f"report-{tag}"
    cmd = [sys.executable, "-m", "pytest", "claims", "-p", "no:cacheprovider", "-q", "-p", "tinydata", "-n", "2",
           "--profile", str(profile), "--data-root", str(data), "--device", "cuda", "--artifact-dir", str(store),
           "--report-dir", str(report), "--findings", str(work / f"findings-{tag}.json"), "--update-findings"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    summary = (res.stdout.strip().splitlines() or ["(no output)"])[-1]
    verdicts = {}
    if (report / "claims.json").is_file():
        verdicts = {r["instance_id"]: r["verdict"] for r in json.loads((report / "claims.json").read_text())["claims"]}
    hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (store / "objects").rglob("*.pt")}
    say(f"    run {tag}: {summary} (wall {wall:.0f} s, exit {res.returncode}, {len(verdicts)} instances, "
        f"{len(hashes)} artifacts)")
    if res.returncode != 0:
        say("    its last lines:\n" + "\n".join("      " + line for line in (res.stdout + res.stderr).splitlines()[-30:]))
    return {"returncode": res.returncode, "wall_s": wall, "summary": summary, "verdicts": verdicts, "hashes": hashes}


def compare_runs(a: dict, b: dict) -> dict:
    """Verdicts and bytes of two dry runs (``dry_run``'s dicts): ok when both passed with the same instances and
    every verdict equal; bytes are counted, not required."""
    instances = set(a["verdicts"]) | set(b["verdicts"])
    same_verdict = sum(a["verdicts"].get(k) == b["verdicts"].get(k) for k in instances)
    common = set(a["hashes"]) & set(b["hashes"])
    same_bytes = sum(a["hashes"][k] == b["hashes"][k] for k in common)
    ok = a["returncode"] == b["returncode"] == 0 and bool(instances) and same_verdict == len(instances)
    return {"verdicts_equal": same_verdict, "instances": len(instances), "bytes_equal": same_bytes,
            "artifacts_compared": len(common), "ok": ok}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=4096, help="examples per throughput epoch (default 4096)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip-dry-run", action="store_true", help="throughput only")
    ap.add_argument("--timeout", type=int, default=240, help="seconds allowed for each dry run (default 240)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)

    if not torch.cuda.is_available():
        say(f"gpu_check: unrun: no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "nothing was measured")
        return 0
    props = torch.cuda.get_device_properties(0)
    say(f"gpu_check: {props.name}, {props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} visible; "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    figures: dict = {"device": props.name, "torch": torch.__version__}
    figures["throughput"] = throughput(args.n_train, args.batch, args.epochs)
    ok = True
    if not args.skip_dry_run:
        import numpy as np
        import tinydata

        from fixtures.dry_run import dry_run_profile

        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            work = Path(tmp)
            profile = dry_run_profile("paper", work / "paper-dry.toml")
            tinydata.write_all(work / "data", np.random.default_rng(0))
            say("\n[2] the paper dry run on cuda, -n 2 on one GPU; [3] again into a fresh store")
            a = dry_run(work, "a", profile, work / "data", args.timeout)
            b = dry_run(work, "b", profile, work / "data", args.timeout)
            figures["dry_run"] = {tag: {k: r[k] for k in ("returncode", "wall_s", "summary")} for tag, r in
                                  (("a", a), ("b", b))}
            figures["dry_run"].update(compare_runs(a, b))
            c = figures["dry_run"]
            say(f"    verdicts equal in both runs: {c['verdicts_equal']} of {c['instances']} instances")
            say(f"    artifacts byte-identical in both runs: {c['bytes_equal']} of {c['artifacts_compared']} "
                "(bf16 autocast and cuDNN promise no bitwise equality; reported, not required)")
            ok = c["ok"]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    say(f"\ngpu_check: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
