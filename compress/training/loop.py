"""One training recipe; what varies (distillation, held masks, fake quantization) comes in as callbacks.

Data are in-memory tensors on the training device: batches are index slices
of a seeded permutation, so there is no DataLoader and no per-sample Python
in the hot loop; the loss is read back once per epoch. Same seed → same
weights on CPU. On CUDA: bf16 autocast and channels_last (both switchable in
:class:`TrainConfig`). The callbacks themselves live in :mod:`compress.training.callbacks`.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import check_choice, invalid

from compress.runtime.progress import Progress

__all__ = ["TrainConfig", "TrainResult", "Batch", "Callback", "train", "predict", "accuracy", "OPTIMIZERS",
           "SCHEDULES", "AUGMENTS"]

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
        ``adam`` is AdamW (decoupled weight decay). ``adamax`` is torch's Adamax
        (weight decay added to the gradient, L2), the optimizer the MW paper's
        code trains its students with (Keras' Adamax at lr 0.001, no weight
        decay: set ``weight_decay=0`` to match).
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


def _make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
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


@dataclass
class Batch:
    """One training step as callbacks see it.

    Attributes
    ----------
    index : Tensor
        Positions of the examples in the training set (on its device).
    x : Tensor
        The inputs as the model saw them (after augmentation).
    y : Tensor
        Their labels.
    logits : Tensor
        The model's output on ``x`` (with the autograd graph).
    """

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor


class Callback:
    """Hooks into :func:`train`; each does nothing unless a subclass overrides it.

    Order of calls: :meth:`on_train_start` (in list order, after the model is
    on its memory format), the optimizer is built over the model's parameters
    and every callback's :meth:`parameters`; then per step :meth:`loss` (in
    list order, inside autocast), backward, optimizer and scheduler step,
    :meth:`after_step`; finally :meth:`on_train_end` (reverse order, also when
    training fails).
    """

    def on_train_start(self, model: nn.Module, x: torch.Tensor, config: TrainConfig) -> None:
        """Prepare for training ``model`` on ``x`` (already on the training device) with ``config``."""

    def parameters(self) -> Iterable[nn.Parameter]:
        """Extra parameters the optimizer trains with the model's (a distiller's regressor)."""
        return ()

    def loss(self, batch: Batch, loss: torch.Tensor) -> torch.Tensor:
        """The batch's loss given the loss so far (cross-entropy for the first callback)."""
        return loss

    def after_step(self) -> None:
        """Called after every optimizer step."""

    def on_train_end(self) -> None:
        """Undo what :meth:`on_train_start` attached (hooks, parametrizations)."""


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: Sequence[Callback] = (),
    describe: str = "train",
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(x, y)`` (already on the training device).

    The loss is cross-entropy (with ``config.label_smoothing``) unless a
    callback changes it; distillation, mask holding and fake quantization are
    callbacks (:mod:`compress.training.callbacks`).

    Parameters
    ----------
    seed : int
        Seeds the data order and augmentation; weight init is the caller's.
    callbacks : sequence of Callback
        See :class:`Callback` for when each hook runs.
    describe : str
        Names the run in progress lines and errors.
    on_epoch : callable, optional
        ``on_epoch(epoch, mean_loss)`` after every epoch (1-based).

    Raises
    ------
    FloatingPointError
        If an epoch's mean loss is not finite.
    """
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise invalid("callbacks", "train", "a sequence of compress.training.loop.Callback", cb)
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
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and config.amp else nullcontext()
    result = TrainResult()
    start = time.perf_counter()
    started: list[Callback] = []
    try:
        for cb in callbacks:
            cb.on_train_start(model, x, config)
            started.append(cb)
        params = [p for p in model.parameters() if p.requires_grad]
        params += [p for cb in callbacks for p in cb.parameters() if p.requires_grad]
        opt = _make_optimizer(params, config)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warmup, config.schedule))
        progress = Progress(describe, config.epochs)
        model.train()
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
                    loss = F.cross_entropy(out.float(), yb, label_smoothing=config.label_smoothing)
                    batch = Batch(idx, xb, yb, out)
                    for cb in callbacks:
                        loss = cb.loss(batch, loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                for cb in callbacks:
                    cb.after_step()
                loss_sum += loss.detach() * idx.numel()
            epoch_loss = float(loss_sum) / n  # one sync per epoch, not per step
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(f"{describe}: loss is {epoch_loss} at epoch {epoch + 1}; lower the learning rate")
            result.losses.append(epoch_loss)
            progress.update(epoch + 1, loss=epoch_loss)
            if on_epoch is not None:
                on_epoch(epoch + 1, epoch_loss)
    finally:
        for cb in reversed(started):
            cb.on_train_end()
    if cuda and config.channels_last:
        model.to(memory_format=torch.contiguous_format)
    result.seconds = time.perf_counter() - start
    return result
