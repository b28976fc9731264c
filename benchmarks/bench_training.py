"""Training throughput: our engine vs plain DataLoader loops, same model, data and recipe.

What is measured: wall time of ``compress.training.loop.train`` and of the loops
notebooks write, on the same architecture, data, optimizer, batch size and
epochs, in the same process; best of ``--repeats`` runs each, after a warm-up.
Printed as ratios (baseline time / engine time; > 1 means the engine is faster).

Baselines:

* ``tensor-DL``: ``TensorDataset`` + ``DataLoader(shuffle=True)`` + per-batch
  ``.to(device)`` + per-step ``loss.item()`` (the minimal loop);
* ``torchvision-DL`` (``--data cifar-shaped`` only): the usual CIFAR notebook —
  uint8 images turned into PIL images per sample, ``RandomCrop(32, padding=2)``,
  ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` per sample, against our
  engine's on-device batch augmentation (``augment="flip_crop"``).

    python benchmarks/bench_training.py                           # CPU, digits, LeNet-5 and ResNet-18/8
    python benchmarks/bench_training.py --data cifar-shaped       # adds the torchvision-style baseline
    python benchmarks/bench_training.py --device cuda --data cifar-shaped --n-train 10000
"""
from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from compress.data.datasets import load_dataset
from compress.models.registry import create_model
from compress.runtime.devices import resolve_device
from compress.training.loop import TrainConfig, train


def dataloader_loop(model, x, y, cfg: TrainConfig, seed: int, device) -> None:
    """The usual notebook loop: DataLoader over CPU tensors, move each batch, sync every step."""
    g = torch.Generator().manual_seed(seed)
    _loader_loop(model, DataLoader(TensorDataset(x, y), batch_size=cfg.batch_size, shuffle=True, generator=g), cfg, device)


def _loader_loop(model, loader, cfg: TrainConfig, device) -> None:
    """SGD over a DataLoader: move each batch to the device, sync on the loss every step."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    model.train()
    for _ in range(cfg.epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()


class _PILDataset(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10.__getitem__`` does: uint8 HWC array → PIL → transforms."""

    def __init__(self, images_hwc, labels, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def torchvision_loop(model, images_hwc, labels, cfg: TrainConfig, seed: int, device, mean, std) -> None:
    from torchvision import transforms as T

    tf = T.Compose([T.RandomCrop(images_hwc.shape[1], padding=2), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    g = torch.Generator().manual_seed(seed)
    _loader_loop(model, DataLoader(_PILDataset(images_hwc, labels, tf), batch_size=cfg.batch_size, shuffle=True, generator=g),
                 cfg, device)


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
    ap.add_argument("--n-train", type=int, default=2048, help="examples for --data cifar-shaped")
    args = ap.parse_args()
    device = resolve_device(args.device)
    cifar = args.data == "cifar-shaped"
    if not cifar:
        data = load_dataset("digits")
        models = [("lenet5", {}), ("resnet18", {"width": 0.125})]
    else:
        data = load_dataset("fake", shape=(3, 32, 32), n_train=args.n_train, n_test=256)
        models = [("resnet18", {"width": 0.125} if device.type == "cpu" else {}), ("lenet5", {})]
        # uint8 HWC copies for the torchvision-style baseline (what CIFAR10 holds in memory)
        lo, hi = data.x_train.amin(), data.x_train.amax()
        images = ((data.x_train - lo) / (hi - lo) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.05, schedule="constant",
                      augment="flip_crop" if cifar else "none", amp=device.type == "cuda", channels_last=device.type == "cuda")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# training throughput, {data.name} ({data.n_train} train examples, shape {data.in_shape}), "
          f"{args.epochs} epochs, batch {args.batch_size}, best of {args.repeats}")
    print(f"# device {device} ({gpu}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    head = f"{'model':<22}{'engine s':>10}{'tensor-DL s':>13}{'ratio':>8}"
    print(head + (f"{'torchvision-DL s':>18}{'ratio':>8}" if cifar else ""))
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
        line = f"{label:<22}{t_engine:>10.3f}{t_plain:>13.3f}{t_plain / t_engine:>7.2f}x"
        if cifar:
            mean, std = [0.5] * 3, [0.25] * 3
            t_tv = best_of(lambda: torchvision_loop(fresh(), images, data.y_train.numpy(), cfg, 0, device, mean, std), args.repeats)
            line += f"{t_tv:>18.3f}{t_tv / t_engine:>7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
