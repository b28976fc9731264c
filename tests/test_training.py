"""Tests for compress.training.loop: the recipe config, the training engine and its helpers."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.utils.data
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from analysis._validation import InvalidParameterError
from compress.training.loop import (
    AUGMENTS,
    OPTIMIZERS,
    SCHEDULES,
    Callback,
    TrainConfig,
    _flip_crop,
    _lr_factor,
    accuracy,
    predict,
    train,
)
from tinyproblems import blobs, flat_state, net

FAST = settings(max_examples=20, deadline=None)
# A small CPU recipe: no autocast/channels_last questions arise on CPU anyway.
QUICK = TrainConfig(epochs=3, batch_size=16, lr=0.05, weight_decay=5e-4)


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
    model = net(1)
    x, _ = blobs(40)
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
    x, y = blobs()
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        model = net(0)
        train(model, x, y, QUICK, seed=seed)
        runs[name] = flat_state(model)
    assert torch.equal(runs["a"], runs["b"])
    assert not torch.equal(runs["a"], runs["c"])


def test_same_seed_same_weights_with_augmentation():
    x, y = blobs(48)
    cfg = dataclasses.replace(QUICK, epochs=1, augment="flip_crop")
    a, b = net(0), net(0)
    train(a, x, y, cfg, seed=1)
    train(b, x, y, cfg, seed=1)
    assert torch.equal(flat_state(a), flat_state(b))


def test_loss_decreases_and_model_learns_easy_problem():
    x, y = blobs(96)
    model = net(0)
    before = accuracy(predict(model, x), y)
    res = train(model, x, y, TrainConfig(epochs=6, batch_size=16, lr=0.05), seed=0)
    assert len(res.losses) == 6 and res.seconds > 0
    assert all(math.isfinite(v) for v in res.losses)
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert accuracy(predict(model, x), y) > max(before, 90.0)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_optimizer_and_schedule_lowers_the_loss(optimizer, schedule):
    x, y = blobs(64)
    lr = 0.05 if optimizer == "sgd" else 0.01
    cfg = TrainConfig(epochs=4, batch_size=16, lr=lr, optimizer=optimizer, schedule=schedule, warmup_epochs=1.0)
    res = train(net(0), x, y, cfg, seed=0)
    assert res.losses[-1] < res.losses[0]


def test_zero_epochs_leaves_weights_untouched():
    x, y = blobs(32)
    model = net(0)
    before = flat_state(model).clone()
    res = train(model, x, y, TrainConfig(epochs=0), seed=0)
    assert res.losses == []
    assert torch.equal(flat_state(model), before)


def test_on_epoch_callback_sees_every_epoch_loss():
    x, y = blobs(32)
    seen = []
    res = train(net(0), x, y, dataclasses.replace(QUICK, epochs=2), seed=0, on_epoch=lambda e, l: seen.append((e, l)))
    assert seen == [(1, res.losses[0]), (2, res.losses[1])]


def test_train_does_not_use_a_dataloader(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("train() must slice in-memory tensors, not iterate a DataLoader")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", refuse)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", refuse)
    x, y = blobs(32)
    res = train(net(0), x, y, dataclasses.replace(QUICK, epochs=1), seed=0)
    assert len(res.losses) == 1


def test_diverging_training_raises_floating_point_error():
    x, y = blobs(32)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), x * 1e20, y,
              TrainConfig(epochs=1, batch_size=8, lr=1e20, momentum=0.0, weight_decay=0.0), seed=0)




def test_adamax_is_torchs_adamax_step_for_step():
    # One full-batch step at constant lr: train() must equal torch.optim.Adamax by hand.
    x, y = blobs(16)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.001, optimizer="adamax", schedule="constant", weight_decay=0.0)
    trained, by_hand = net(0), net(0)
    train(trained, x, y, cfg, seed=0)
    opt = torch.optim.Adamax(by_hand.parameters(), lr=0.001, weight_decay=0.0)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    by_hand.train()
    nn.functional.cross_entropy(by_hand(x[perm]), y[perm]).backward()
    opt.step()
    assert torch.allclose(flat_state(trained), flat_state(by_hand), atol=1e-7)
    assert not torch.equal(flat_state(trained), flat_state(net(0)))


# ----------------------------------------------------------------------------- callbacks protocol


class _Recorder(Callback):
    """Records every hook call; optionally owns a parameter pulled toward ``target`` by its loss term."""

    def __init__(self, log: list, name: str, target: float | None = None):
        self.log, self.name, self.target = log, name, target
        self.param = nn.Parameter(torch.zeros(()))

    def on_train_start(self, model, x, config):
        self.log.append((self.name, "start", model.training, x.shape[0], config.epochs))

    def parameters(self):
        return [self.param] if self.target is not None else []

    def loss(self, batch, loss):
        self.log.append((self.name, "loss", tuple(batch.index.shape), tuple(batch.logits.shape)))
        return loss if self.target is None else loss + (self.param - self.target) ** 2

    def after_step(self):
        self.log.append((self.name, "after_step"))

    def on_train_end(self):
        self.log.append((self.name, "end"))


def test_callback_hooks_run_in_order_for_every_step():
    x, y = blobs(20)
    log: list = []
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01)
    train(net(0), x, y, cfg, seed=0, callbacks=[_Recorder(log, "a"), _Recorder(log, "b")])
    steps = 2 * math.ceil(20 / 8)
    assert log[:2] == [("a", "start", True, 20, 2), ("b", "start", True, 20, 2)]
    assert log[-2:] == [("b", "end"), ("a", "end")]  # reverse order
    body = log[2:-2]
    assert len(body) == 4 * steps
    per_step = [body[i : i + 4] for i in range(0, len(body), 4)]
    assert [tuple(e[:2] for e in s) for s in per_step] == [(("a", "loss"), ("b", "loss"), ("a", "after_step"),
                                                            ("b", "after_step"))] * steps
    # The batch the callbacks see: index slices of the data, logits of the batch.
    assert per_step[0][0][2:] == ((8,), (8, 3)) and per_step[2][0][2:] == ((4,), (4, 3))


def test_callback_loss_replaces_the_loss_and_its_parameters_are_trained():
    x, y = blobs(32)
    rec = _Recorder([], "r", target=3.0)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=0.05, momentum=0.0, weight_decay=0.0, schedule="constant")
    train(net(0), x, y, cfg, seed=0, callbacks=[rec])
    # Plain gradient descent on (p − 3)²: p ← p − 0.05·2(p − 3), ten steps from 0.
    assert float(rec.param.detach()) == pytest.approx(3.0 * (1 - 0.9**10), rel=1e-5)


def test_callbacks_end_even_when_training_fails():
    x, y = blobs(32)
    log: list = []
    with pytest.raises(FloatingPointError):
        train(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), x * 1e20, y,
              TrainConfig(epochs=1, batch_size=8, lr=1e20, momentum=0.0, weight_decay=0.0), seed=0,
              callbacks=[_Recorder(log, "a")])
    assert log[0][:2] == ("a", "start") and log[-1] == ("a", "end")


def test_callbacks_must_be_callbacks():
    x, y = blobs(8)
    with pytest.raises(InvalidParameterError) as info:
        train(net(0), x, y, QUICK, seed=0, callbacks=[lambda batch, loss: loss])
    assert str(info.value).startswith("The 'callbacks' parameter of train must be a sequence of compress.training.loop.Callback")


def test_default_callback_changes_nothing():
    x, y = blobs(32)
    plain, with_noop = net(0), net(0)
    train(plain, x, y, QUICK, seed=0)
    train(with_noop, x, y, QUICK, seed=0, callbacks=[Callback()])
    assert torch.equal(flat_state(plain), flat_state(with_noop))
