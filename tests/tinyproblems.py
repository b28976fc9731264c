"""Tiny, fast training problems shared by the training and callback tests."""
from __future__ import annotations

import torch
from torch import nn


def blobs(n: int = 96, seed: int = 0, shape=(1, 6, 6), classes: int = 3):
    """Easy, well-separated classes: class mean ±1.5 on a per-class pixel pattern, noise 0.5."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, *shape, generator=g).sign() * 1.5
    y = torch.arange(n) % classes
    x = means[y] + 0.5 * torch.randn(n, *shape, generator=g)
    return x, y


def net(init_seed: int = 0, shape=(1, 6, 6), classes: int = 3) -> nn.Module:
    """Conv → BatchNorm → ReLU → Linear, initialised from ``init_seed``."""
    torch.manual_seed(init_seed)
    c = shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * shape[1] * shape[2], classes),
    )


def flat_state(model: nn.Module) -> torch.Tensor:
    """Every floating-point entry of the state dict, concatenated."""
    return torch.cat([t.detach().flatten() for t in model.state_dict().values() if t.is_floating_point()])
