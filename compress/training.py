"""One training engine for plain training and distillation.

Data are in-memory tensors on the training device: batches are index slices
of a seeded permutation, so there is no DataLoader and no per-sample Python
in the hot loop. Same seed → same weights on CPU. On CUDA: bf16 autocast and
channels_last (both switchable in :class:`TrainConfig`).
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_choice, invalid
from .distill import Distiller, HintonKD, KDConfig
from .masks import MaskHolder, MaskSet
from .progress import Progress

__all__ = ["TrainConfig", "TrainResult", "train", "predict", "accuracy", "OPTIMIZERS", "SCHEDULES", "AUGMENTS"]

OPTIMIZERS = ("sgd", "adam", "adamax")
SCHEDULES = ("cosine", "constant")
AUGMENTS = ("none", "flip_crop")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe.

    Parameters
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Examples per step (the last, smaller batch is kept).
    lr : float
        Peak learning rate (per batch of ``batch_size``; not rescaled).
    momentum, weight_decay, nesterov : SGD settings (weight decay also for Adam, decoupled: AdamW).
    optimizer : {'sgd', 'adam', 'adamax'}
        ``adam`` is AdamW (decoupled weight decay); ``adamax`` as the MW paper's code trains its students.
    schedule : {'cosine', 'constant'}
        Cosine decays per step to 0 after a linear warm-up of ``warmup_epochs``.
    augment : {'none', 'flip_crop'}
        Random horizontal flip + 2-pixel translate (on device, per sample).
    label_smoothing : float
    amp, channels_last : bool
        bf16 autocast / channels_last memory format; used only on CUDA.
    """

    epochs: int = 25
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    optimizer: str = "sgd"
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    augment: str = "none"
    label_smoothing: float = 0.0
    amp: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        check_choice("optimizer", "TrainConfig", self.optimizer, OPTIMIZERS)
        check_choice("schedule", "TrainConfig", self.schedule, SCHEDULES)
        check_choice("augment", "TrainConfig", self.augment, AUGMENTS)
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "epochs" else 1):
                raise invalid(name, "TrainConfig", "a positive integer" if name == "batch_size" else "an integer ≥ 0", v)
        if not (self.lr > 0):
            raise invalid("lr", "TrainConfig", "a float > 0", self.lr)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What a training run reports: per-epoch mean loss and wall time."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov and cfg.momentum > 0,
        )
    if cfg.optimizer == "adamax":
        return torch.optim.Adamax(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _flip_crop(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Per-sample random horizontal flip and translate by up to ``pad`` pixels.

    Vectorised over the batch: one slice per distinct shift ((2·pad+1)² at
    most), not one per sample.
    """
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect" if min(x.shape[2:]) > pad else "constant")
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    h, w = x.shape[2:]
    codes = shifts[:, 0] * (2 * pad + 1) + shifts[:, 1]
    for code in codes.unique().tolist():
        idx = (codes == code).nonzero().squeeze(1).to(x.device)
        dy, dx = divmod(code, 2 * pad + 1)
        out[idx] = padded[idx, :, dy : dy + h, dx : dx + w]
    return out


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, float32, on ``x``'s device."""
    was_training = model.training
    model.eval()
    try:
        outs = [model(x[i : i + batch_size]).float() for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(1) == y).float().mean()) * 100.0


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    seed: int,
    teacher: nn.Module | None = None,
    kd: KDConfig | Distiller | None = None,
    masks: MaskSet | None = None,
    describe: str = "train",
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(x, y)`` (already on the training device).

    Parameters
    ----------
    teacher, kd : optional
        Distil from ``teacher`` with the strategy ``kd`` (a :class:`~compress.distill.Distiller`;
        a :class:`~compress.distill.KDConfig` means Hinton KD with its settings).
        Without augmentation the teacher's logits are computed once for the
        whole training set (the teacher is frozen, so per-batch forwards would
        recompute the same numbers every epoch).
    masks : optional
        Held fixed (masked weights stay exactly zero) throughout.
    seed : int
        Seeds the data order and augmentation; weight init is the caller's.
    """
    if (teacher is None) != (kd is None):
        raise invalid("kd", "train", "given together with 'teacher'", kd)
    distiller = HintonKD(kd.temperature, kd.alpha) if isinstance(kd, KDConfig) else kd
    device = x.device
    cuda = device.type == "cuda"
    if cuda and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(int(seed))
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    opt = _make_optimizer(model, config)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warmup, config.schedule))
    teacher_logits = None
    if teacher is not None:
        teacher.eval()
        if config.augment == "none":
            teacher_logits = predict(teacher, x)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and config.amp else nullcontext()
    progress = Progress(describe, config.epochs)
    result = TrainResult()
    start = time.perf_counter()
    holder = MaskHolder(model, masks) if masks else None
    model.train()
    with holder if holder is not None else nullcontext():
        for epoch in range(config.epochs):
            perm = torch.randperm(n, generator=gen).to(device)
            loss_sum = torch.zeros((), device=device)
            for i in range(0, n, config.batch_size):
                idx = perm[i : i + config.batch_size]
                xb, yb = x[idx], y[idx]
                if config.augment == "flip_crop":
                    xb = _flip_crop(xb, gen)
                with autocast:
                    out = model(xb)
                    if teacher is None:
                        loss = F.cross_entropy(out.float(), yb, label_smoothing=config.label_smoothing)
                    else:
                        if teacher_logits is not None:
                            t_out = teacher_logits[idx]
                        else:
                            with torch.no_grad():
                                t_out = teacher(xb)
                        loss = distiller.loss(out, t_out, yb, label_smoothing=config.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if holder is not None:
                    holder.after_step()
                loss_sum += loss.detach() * idx.numel()
            epoch_loss = float(loss_sum) / n  # one sync per epoch, not per step
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(f"{describe}: loss is {epoch_loss} at epoch {epoch + 1}; lower the learning rate")
            result.losses.append(epoch_loss)
            progress.update(epoch + 1, loss=epoch_loss)
            if on_epoch is not None:
                on_epoch(epoch + 1, epoch_loss)
    if cuda and config.channels_last:
        model.to(memory_format=torch.contiguous_format)
    result.seconds = time.perf_counter() - start
    return result
