"""Tests for compress.training: the recipe config, the training engine and its helpers."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.utils.data
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress._validation import InvalidParameterError
from compress.distill import KDConfig
from compress.training import (
    AUGMENTS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    _flip_crop,
    _lr_factor,
    accuracy,
    predict,
    train,
)

FAST = settings(max_examples=20, deadline=None)
# A small CPU recipe: no autocast/channels_last questions arise on CPU anyway.
QUICK = TrainConfig(epochs=3, batch_size=16, lr=0.05, weight_decay=5e-4)


def _blobs(n: int = 96, seed: int = 0, shape=(1, 6, 6), classes: int = 3):
    """Easy, well-separated classes: class mean ±3 on a per-class pixel pattern, unit noise."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, *shape, generator=g).sign() * 1.5
    y = torch.arange(n) % classes
    x = means[y] + 0.5 * torch.randn(n, *shape, generator=g)
    return x, y


def _net(init_seed: int = 0, shape=(1, 6, 6), classes: int = 3) -> nn.Module:
    torch.manual_seed(init_seed)
    c = shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * shape[1] * shape[2], classes),
    )


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().flatten() for t in model.state_dict().values() if t.is_floating_point()])


# ----------------------------------------------------------------------------- TrainConfig


def test_trainconfig_defaults_valid_and_as_dict_roundtrips():
    cfg = TrainConfig()
    assert cfg.optimizer in OPTIMIZERS and cfg.schedule in SCHEDULES and cfg.augment in AUGMENTS
    assert TrainConfig(**cfg.as_dict()) == cfg
    assert set(cfg.as_dict()) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_trainconfig_allows_zero_epochs():
    assert TrainConfig(epochs=0).epochs == 0


@pytest.mark.parametrize(
    ("kwargs", "param", "got"),
    [
        ({"optimizer": "rmsprop"}, "optimizer", "'rmsprop'"),
        ({"schedule": "step"}, "schedule", "'step'"),
        ({"augment": "mixup"}, "augment", "'mixup'"),
        ({"epochs": -1}, "epochs", "-1"),
        ({"epochs": 2.0}, "epochs", "2.0"),
        ({"epochs": True}, "epochs", "True"),
        ({"batch_size": 0}, "batch_size", "0"),
        ({"batch_size": 8.5}, "batch_size", "8.5"),
        ({"lr": 0.0}, "lr", "0.0"),
        ({"lr": -0.1}, "lr", "-0.1"),
    ],
)
def test_trainconfig_rejects_bad_values(kwargs, param, got):
    with pytest.raises(InvalidParameterError) as info:
        TrainConfig(**kwargs)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of TrainConfig must be ")
    assert msg.endswith(f"Got {got} instead.")


def test_trainconfig_choice_error_lists_valid_values():
    with pytest.raises(InvalidParameterError, match="'sgd', 'adam'"):
        TrainConfig(optimizer="lbfgs")


def test_trainconfig_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 1.0  # type: ignore[misc]


# ----------------------------------------------------------------------------- lr schedule


def test_lr_factor_cosine_warmup_and_constant():
    total, warmup = 100, 10
    assert _lr_factor(0, total, warmup, "cosine") == pytest.approx(0.1)
    assert _lr_factor(9, total, warmup, "cosine") == pytest.approx(1.0)
    assert _lr_factor(10, total, warmup, "cosine") == pytest.approx(1.0)
    assert _lr_factor(55, total, warmup, "cosine") == pytest.approx(0.5)  # half-way through the decay
    assert _lr_factor(100, total, warmup, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert all(_lr_factor(s, total, 0, "constant") == 1.0 for s in range(total))
    decay = [_lr_factor(s, total, warmup, "cosine") for s in range(warmup, total)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


# ----------------------------------------------------------------------------- predict / accuracy


def test_accuracy_hand_computed():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 1, 2])
    assert accuracy(logits, y) == pytest.approx(50.0)
    assert accuracy(logits, torch.tensor([0, 1, 2, 0])) == pytest.approx(100.0)
    assert accuracy(logits, torch.tensor([1, 0, 0, 1])) == pytest.approx(0.0)


def test_predict_matches_hand_computed_linear_and_restores_mode():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        lin.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.tensor([[1.0, 1.0], [2.0, -2.0], [0.0, 4.0]])
    expected = torch.tensor([[3.5, -1.5], [-1.5, -4.0], [8.5, 1.0]])
    lin.train()
    out = predict(lin, x, batch_size=2)  # two batches: 2 + 1
    assert torch.allclose(out, expected)
    assert lin.training
    assert out.dtype == torch.float32 and not out.requires_grad


def test_predict_uses_eval_mode_and_batching_does_not_change_logits():
    model = _net(1)
    x, _ = _blobs(40)
    model.train()
    full = predict(model, x)
    chunked = predict(model, x, batch_size=7)
    assert torch.allclose(full, chunked, atol=1e-6)
    # Eval mode: BatchNorm uses running stats, so one example alone gives the same logits.
    assert torch.allclose(predict(model, x[:1]), full[:1], atol=1e-6)
    assert model.training


# ----------------------------------------------------------------------------- flip_crop


def test_flip_crop_keeps_shape_and_is_deterministic_per_seed():
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = _flip_crop(x, torch.Generator().manual_seed(5))
    b = _flip_crop(x, torch.Generator().manual_seed(5))
    c = _flip_crop(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


@FAST
@given(seed=st.integers(0, 2**16), h=st.integers(3, 9), w=st.integers(3, 9), pad=st.integers(1, 2))
def test_flip_crop_output_is_a_translate_of_a_flip(seed, h, w, pad):
    x = torch.arange(2 * 1 * h * w, dtype=torch.float32).reshape(2, 1, h, w)
    out = _flip_crop(x, torch.Generator().manual_seed(seed), pad=pad)
    assert out.shape == x.shape
    for i in range(x.shape[0]):
        mode = "reflect" if min(h, w) > pad else "constant"
        candidates = []
        for img in (x[i], x[i].flip(2)):
            padded = torch.nn.functional.pad(img[None], (pad, pad, pad, pad), mode=mode)[0]
            candidates += [
                padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
            ]
        assert any(torch.equal(out[i], cand) for cand in candidates)


# ----------------------------------------------------------------------------- train


def test_same_seed_same_weights_different_seed_different_weights():
    x, y = _blobs()
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        model = _net(0)
        train(model, x, y, QUICK, seed=seed)
        runs[name] = _flat(model)
    assert torch.equal(runs["a"], runs["b"])
    assert not torch.equal(runs["a"], runs["c"])


def test_same_seed_same_weights_with_augmentation():
    x, y = _blobs(48)
    cfg = dataclasses.replace(QUICK, epochs=1, augment="flip_crop")
    a, b = _net(0), _net(0)
    train(a, x, y, cfg, seed=1)
    train(b, x, y, cfg, seed=1)
    assert torch.equal(_flat(a), _flat(b))


def test_loss_decreases_and_model_learns_easy_problem():
    x, y = _blobs(96)
    model = _net(0)
    before = accuracy(predict(model, x), y)
    res = train(model, x, y, TrainConfig(epochs=6, batch_size=16, lr=0.05), seed=0)
    assert len(res.losses) == 6 and res.seconds > 0
    assert all(math.isfinite(v) for v in res.losses)
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert accuracy(predict(model, x), y) > max(before, 90.0)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_optimizer_and_schedule_lowers_the_loss(optimizer, schedule):
    x, y = _blobs(64)
    lr = 0.01 if optimizer == "adam" else 0.05
    cfg = TrainConfig(epochs=4, batch_size=16, lr=lr, optimizer=optimizer, schedule=schedule, warmup_epochs=1.0)
    res = train(_net(0), x, y, cfg, seed=0)
    assert res.losses[-1] < res.losses[0]


def test_zero_epochs_leaves_weights_untouched():
    x, y = _blobs(32)
    model = _net(0)
    before = _flat(model).clone()
    res = train(model, x, y, TrainConfig(epochs=0), seed=0)
    assert res.losses == []
    assert torch.equal(_flat(model), before)


def test_on_epoch_callback_sees_every_epoch_loss():
    x, y = _blobs(32)
    seen = []
    res = train(_net(0), x, y, dataclasses.replace(QUICK, epochs=2), seed=0, on_epoch=lambda e, l: seen.append((e, l)))
    assert seen == [(1, res.losses[0]), (2, res.losses[1])]


def test_train_does_not_use_a_dataloader(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("train() must slice in-memory tensors, not iterate a DataLoader")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", refuse)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", refuse)
    x, y = _blobs(32)
    res = train(_net(0), x, y, dataclasses.replace(QUICK, epochs=1), seed=0)
    assert len(res.losses) == 1


def test_diverging_training_raises_floating_point_error():
    x, y = _blobs(32)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), x * 1e20, y,
              TrainConfig(epochs=1, batch_size=8, lr=1e20, momentum=0.0, weight_decay=0.0), seed=0)


# ----------------------------------------------------------------------------- distillation path


class _CountingTeacher(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


def _teacher() -> nn.Module:
    x, y = _blobs()
    t = _net(7)
    train(t, x, y, QUICK, seed=7)
    return t


def test_teacher_and_kd_must_be_given_together():
    x, y = _blobs(16)
    with pytest.raises(InvalidParameterError, match="'kd' parameter of train"):
        train(_net(0), x, y, QUICK, seed=0, teacher=_net(1))
    with pytest.raises(InvalidParameterError, match="'kd' parameter of train"):
        train(_net(0), x, y, QUICK, seed=0, kd=KDConfig())


def test_kd_without_augmentation_precomputes_teacher_logits_once():
    x, y = _blobs()
    teacher = _CountingTeacher(_teacher())
    before = _flat(teacher)
    train(_net(0), x, y, QUICK, seed=0, teacher=teacher, kd=KDConfig(alpha=0.5))
    assert teacher.calls == 1  # one predict() over all 96 examples, not one per step
    assert not teacher.training
    assert torch.equal(_flat(teacher), before)  # the teacher is frozen


def test_kd_with_augmentation_runs_teacher_per_batch():
    x, y = _blobs(48)
    teacher = _CountingTeacher(_teacher())
    cfg = dataclasses.replace(QUICK, epochs=2, augment="flip_crop")
    train(_net(0), x, y, cfg, seed=0, teacher=teacher, kd=KDConfig(alpha=0.5))
    assert teacher.calls == 2 * math.ceil(48 / cfg.batch_size)


def test_kd_training_differs_from_plain_training_and_alpha_zero_matches_it():
    x, y = _blobs()
    teacher = _teacher()
    plain, kd, kd0 = _net(0), _net(0), _net(0)
    train(plain, x, y, QUICK, seed=0)
    res = train(kd, x, y, QUICK, seed=0, teacher=teacher, kd=KDConfig(alpha=0.9, temperature=3.0))
    train(kd0, x, y, QUICK, seed=0, teacher=teacher, kd=KDConfig(alpha=0.0))
    assert not torch.allclose(_flat(plain), _flat(kd), atol=1e-4)
    assert torch.allclose(_flat(plain), _flat(kd0), atol=1e-6)  # α = 0: the loss is plain CE
    assert res.losses[-1] < res.losses[0]


def test_kd_student_moves_towards_teacher():
    x, y = _blobs()
    teacher = _teacher()
    t_pred = predict(teacher, x).argmax(1)
    student = _net(0)
    train(student, x, y, dataclasses.replace(QUICK, epochs=5), seed=1, teacher=teacher, kd=KDConfig(alpha=1.0))
    agree = float((predict(student, x).argmax(1) == t_pred).float().mean())
    assert agree > 0.9


# ----------------------------------------------------------------------------- masks


def _random_masks(model: nn.Module, keep: float = 0.5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: (torch.rand(p.shape, generator=g) < keep).float()
        for n, p in model.named_parameters()
        if n.endswith("weight") and p.dim() > 1
    }


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_masks_stay_exactly_zero_through_training(optimizer):
    x, y = _blobs()
    model = _net(0)
    masks = _random_masks(model)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05 if optimizer == "sgd" else 0.01, optimizer=optimizer,
                      momentum=0.9, weight_decay=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = train(model, x, y, cfg, seed=0, masks=masks)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        p = params[name]
        assert torch.all(p[mask == 0] == 0), name
        assert not torch.equal(p[mask == 1], before[name][mask == 1]), name  # the rest trained
    assert res.losses[-1] < res.losses[0]
    # Hooks are gone after training: a fresh backward gives masked entries a gradient.
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    name = next(iter(masks))
    assert params[name].grad[masks[name] == 0].abs().sum() > 0


def test_masks_with_kd_stay_zero():
    x, y = _blobs()
    teacher = _teacher()
    model = _net(0)
    masks = _random_masks(model, keep=0.3, seed=1)
    train(model, x, y, QUICK, seed=0, teacher=teacher, kd=KDConfig(), masks=masks)
    params = dict(model.named_parameters())
    assert all(torch.all(params[n][m == 0] == 0) for n, m in masks.items())
