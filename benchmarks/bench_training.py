"""Training throughput: our engine vs a plain DataLoader loop, same model, data and recipe.

What is measured: wall time of ``compress.training.train`` and of the loop
most notebooks write (``TensorDataset`` + ``DataLoader(shuffle=True)`` +
per-batch ``.to(device)`` + per-step ``loss.item()``), on the same
architecture, data, optimizer, batch size and epochs, in the same process;
best of ``--repeats`` runs each, after one warm-up epoch. Printed as a ratio
(DataLoader time / engine time; > 1 means the engine is faster).

    python benchmarks/bench_training.py                    # CPU, digits, LeNet-5 and ResNet-18/4
    python benchmarks/bench_training.py --device cuda --data cifar-shaped
"""
from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from compress.data import load_dataset
from compress.models import create_model
from compress.runtime import resolve_device
from compress.training import TrainConfig, train


def dataloader_loop(model, x, y, cfg: TrainConfig, seed: int, device) -> None:
    """The usual notebook loop: DataLoader over CPU tensors, move each batch, sync every step."""
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=cfg.batch_size, shuffle=True, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    model.train()
    for _ in range(cfg.epochs):
        total = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--data", default="digits", choices=["digits", "cifar-shaped"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    device = resolve_device(args.device)
    if args.data == "digits":
        data = load_dataset("digits")
        models = [("lenet5", {}), ("resnet18", {"width": 0.25})]
    else:
        data = load_dataset("fake", shape=(3, 32, 32), n_train=10000, n_test=1000)
        models = [("resnet18", {}), ("mobilenet_v1", {})]
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.05, schedule="constant", amp=False, channels_last=False)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# training throughput, {data.name} ({data.n_train} train examples, shape {data.in_shape}), "
          f"{args.epochs} epochs, batch {args.batch_size}, best of {args.repeats}")
    print(f"# device {device} ({gpu}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<16}{'DataLoader s':>14}{'engine s':>12}{'ratio':>9}")
    for name, over in models:
        def fresh():
            torch.manual_seed(0)
            return create_model(name, data.num_classes, data.in_shape, **over).to(device)

        dev_data = data.to(device)
        engine = lambda: train(fresh(), dev_data.x_train, dev_data.y_train, cfg, seed=0, describe=f"bench {name}")
        plain = lambda: dataloader_loop(fresh(), data.x_train, data.y_train, cfg, 0, device)
        train(fresh(), dev_data.x_train, dev_data.y_train, TrainConfig(epochs=1, batch_size=args.batch_size), seed=0)  # warm-up
        t_plain = best_of(plain, args.repeats)
        t_engine = best_of(engine, args.repeats)
        label = name + ("/" + ",".join(f"{k}={v}" for k, v in over.items()) if over else "")
        print(f"{label:<16}{t_plain:>14.3f}{t_engine:>12.3f}{t_plain / t_engine:>8.2f}x")


if __name__ == "__main__":
    main()
