"""Tests for compress.training.callbacks: mask holding, distillation and fake quantization as training callbacks."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis._validation import InvalidParameterError
from compress.prune.hold import HoldMasks
from compress.quant.qat import FakeQuant
from compress.quant.schemes import fake_quant_weight
from compress.training.callbacks import Distill
from compress.training.distill import Distiller, HintonKD
from compress.training.loop import OPTIMIZERS, TrainConfig, predict, train
from tinyproblems import blobs, flat_state, net

QUICK = TrainConfig(epochs=3, batch_size=16, lr=0.05, weight_decay=5e-4)


# ----------------------------------------------------------------------------- HoldMasks


def _random_masks(model: nn.Module, keep: float = 0.5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: (torch.rand(p.shape, generator=g) < keep).float()
        for n, p in model.named_parameters()
        if n.endswith("weight") and p.dim() > 1
    }


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_masks_stay_exactly_zero_through_training(optimizer):
    x, y = blobs()
    model = net(0)
    masks = _random_masks(model)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05 if optimizer == "sgd" else 0.01, optimizer=optimizer,
                      momentum=0.9, weight_decay=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = train(model, x, y, cfg, seed=0, callbacks=[HoldMasks(masks)])
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


def test_hold_masks_rejects_masks_that_name_no_parameter():
    x, y = blobs(16)
    with pytest.raises(InvalidParameterError, match="names no parameter"):
        train(net(0), x, y, QUICK, seed=0, callbacks=[HoldMasks({"nope.weight": torch.ones(1)})])


# ----------------------------------------------------------------------------- Distill


class _CountingTeacher(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


def _teacher() -> nn.Module:
    x, y = blobs()
    t = net(7)
    train(t, x, y, QUICK, seed=7)
    return t


def test_distill_without_augmentation_precomputes_teacher_logits_once():
    x, y = blobs()
    teacher = _CountingTeacher(_teacher())
    before = flat_state(teacher)
    train(net(0), x, y, QUICK, seed=0, callbacks=[Distill(HintonKD(teacher_weight=0.5), teacher)])
    assert teacher.calls == 1  # one predict() over all 96 examples, not one per step
    assert not teacher.training
    assert torch.equal(flat_state(teacher), before)  # the teacher is frozen


def test_distill_with_augmentation_runs_teacher_per_batch():
    x, y = blobs(48)
    teacher = _CountingTeacher(_teacher())
    cfg = dataclasses.replace(QUICK, epochs=2, augment="flip_crop")
    train(net(0), x, y, cfg, seed=0, callbacks=[Distill(HintonKD(teacher_weight=0.5), teacher)])
    assert teacher.calls == 2 * math.ceil(48 / cfg.batch_size)


def test_distill_differs_from_plain_training_and_teacher_weight_zero_matches_it():
    x, y = blobs()
    teacher = _teacher()
    plain, kd, kd0 = net(0), net(0), net(0)
    train(plain, x, y, QUICK, seed=0)
    res = train(kd, x, y, QUICK, seed=0, callbacks=[Distill(HintonKD(3.0, 0.9), teacher)])
    train(kd0, x, y, QUICK, seed=0, callbacks=[Distill(HintonKD(3.0, 0.0), teacher)])
    assert not torch.allclose(flat_state(plain), flat_state(kd), atol=1e-4)
    assert torch.equal(flat_state(plain), flat_state(kd0))  # w = 0: the loss is exactly the cross-entropy
    assert res.losses[-1] < res.losses[0]


def test_distilled_student_moves_towards_teacher():
    x, y = blobs()
    teacher = _teacher()
    t_pred = predict(teacher, x).argmax(1)
    student = net(0)
    train(student, x, y, dataclasses.replace(QUICK, epochs=5), seed=1, callbacks=[Distill(HintonKD(3.0, 1.0), teacher)])
    agree = float((predict(student, x).argmax(1) == t_pred).float().mean())
    assert agree > 0.9


def test_masks_with_distillation_stay_zero():
    x, y = blobs()
    teacher = _teacher()
    model = net(0)
    masks = _random_masks(model, keep=0.3, seed=1)
    train(model, x, y, QUICK, seed=0, callbacks=[HoldMasks(masks), Distill(HintonKD(), teacher)])
    params = dict(model.named_parameters())
    assert all(torch.all(params[n][m == 0] == 0) for n, m in masks.items())


class _Hint(Distiller):
    """A FitNets-style feature distiller: CE + MSE(regressor(student conv), teacher conv)."""

    student_features = ("0",)
    teacher_features = ("0",)

    def __init__(self):
        super().__init__()
        self.regressor = nn.Conv2d(4, 4, 1)
        self.seen: list[tuple] = []

    def loss(self, student_logits, teacher_logits, targets, student_features, teacher_features, *,
             label_smoothing=0.0):
        s, t = student_features["0"], teacher_features["0"]
        self.seen.append((tuple(s.shape), tuple(t.shape), s.requires_grad, t.requires_grad,
                          tuple(teacher_logits.shape)))
        ce = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
        return ce + F.mse_loss(self.regressor(s), t)

    def settings(self) -> dict:
        return {}


def test_feature_distiller_gets_named_features_and_its_regressor_is_trained():
    x, y = blobs(32)
    teacher, calls = _teacher(), []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    hint = _Hint()
    before = hint.regressor.weight.detach().clone()
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    train(net(0), x, y, cfg, seed=0, callbacks=[Distill(hint, teacher)])
    # Features need the teacher on every batch, even without augmentation.
    assert len(calls) == 4
    assert hint.seen == [((16, 4, 6, 6), (16, 4, 6, 6), True, False, (16, 3))] * 4
    assert not torch.equal(hint.regressor.weight, before)  # the optimizer trained the distiller's module
    assert not hint.training  # left in eval mode
    # Hooks removed: forwards after training record nothing more.
    teacher(x[:2])
    assert len(hint.seen) == 4


def test_unknown_feature_name_is_rejected_with_the_known_ones():
    class _Bad(_Hint):
        student_features = ("conv9",)

    x, y = blobs(16)
    with pytest.raises(InvalidParameterError) as info:
        train(net(0), x, y, QUICK, seed=0, callbacks=[Distill(_Bad(), _teacher())])
    msg = str(info.value)
    assert msg.startswith("The 'student_features' parameter of Distill must be names of modules of the student")
    assert "'0'" not in msg and "0, 1, 2" in msg and msg.endswith("Got 'conv9' instead.")


def test_distill_rejects_what_is_not_a_distiller():
    with pytest.raises(InvalidParameterError, match="'distiller' parameter of Distill"):
        Distill(lambda s, t, y: s.sum(), net(0))
    with pytest.raises(InvalidParameterError, match="'teacher' parameter of Distill"):
        Distill(HintonKD(), "teacher")


# ----------------------------------------------------------------------------- FakeQuant


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 3))


@pytest.mark.parametrize("bits", [8, 4])
def test_fake_quant_forward_sees_weights_within_half_a_step(bits):
    model = _mlp()
    fq = FakeQuant(bits)
    fq.on_train_start(model, torch.zeros(1), TrainConfig())
    try:
        for m in (model[0], model[2], model[4]):
            latent = m.parametrizations.weight.original.detach()
            seen = m.weight.detach()  # what the forward uses
            step = latent.abs().flatten(1).amax(1) / (2 ** (bits - 1) - 1)
            err = (seen - latent).abs().flatten(1)
            assert torch.all(err <= step[:, None] / 2 + 1e-7)
            assert torch.equal(seen, fake_quant_weight(latent, bits))
            assert not torch.equal(seen, latent)
    finally:
        fq.on_train_end()


def test_fake_quant_gradient_passes_straight_through():
    model = _mlp()
    x = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    # Reference: the unquantized forward evaluated at the quantized weights, which are leaves here.
    ref = _mlp()
    q_leaves = {}
    with torch.no_grad():
        for i in (0, 2, 4):
            ref[i].weight.copy_(fake_quant_weight(ref[i].weight, 8))
            q_leaves[i] = ref[i].weight
    F.cross_entropy(ref(x), y).backward()
    fq = FakeQuant(8)
    fq.on_train_start(model, x, TrainConfig())
    try:
        F.cross_entropy(model(x), y).backward()
        for i in (0, 2, 4):
            latent_grad = model[i].parametrizations.weight.original.grad
            assert torch.allclose(latent_grad, q_leaves[i].grad, atol=1e-6)
            assert latent_grad.abs().sum() > 0
    finally:
        fq.on_train_end()


def _on_grid(w: torch.Tensor, bits: int) -> bool:
    """Every row is an integer multiple of its step max|w|/(2^(bits-1) − 1) (up to float rounding of the step)."""
    rows = w.flatten(1)
    q = rows / (rows.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1))
    return bool(torch.allclose(q, q.round(), atol=1e-4))


def test_fake_quant_training_leaves_weights_on_the_grid_and_plain_state():
    x, y = blobs(32)
    model = net(0)
    train(model, x, y, QUICK, seed=0, callbacks=[FakeQuant(4)])
    net(1).load_state_dict(model.state_dict())  # strict: the parametrizations are gone
    assert not any("parametrizations" in k for k in model.state_dict())
    for m in (model[0], model[4]):
        assert _on_grid(m.weight.detach(), 4)


def test_fake_quant_linear_scope_leaves_convolutions_in_float():
    x, y = blobs(32)
    model = net(0)
    train(model, x, y, QUICK, seed=0, callbacks=[FakeQuant(4, scope="linear")])
    assert _on_grid(model[4].weight.detach(), 4)
    assert not _on_grid(model[0].weight.detach(), 4)


def test_qat_differs_from_float_training_and_still_learns():
    x, y = blobs()
    plain, qat = net(0), net(0)
    train(plain, x, y, QUICK, seed=0)
    res = train(qat, x, y, QUICK, seed=0, callbacks=[FakeQuant(4)])
    assert not torch.equal(flat_state(plain), flat_state(qat))
    assert res.losses[-1] < res.losses[0]


@pytest.mark.parametrize("order", ["masks first", "quant first"])
def test_fake_quant_with_held_masks_keeps_masked_weights_zero(order):
    x, y = blobs()
    model = net(0)
    masks = _random_masks(model, keep=0.4)
    cbs = [HoldMasks(masks), FakeQuant(8)]
    train(model, x, y, QUICK, seed=0, callbacks=cbs if order == "masks first" else cbs[::-1])
    params = dict(model.named_parameters())
    assert all(torch.all(params[n][m == 0] == 0) for n, m in masks.items())
    assert all(torch.any(params[n][m == 1] != 0) for n, m in masks.items())


@pytest.mark.parametrize(("kwargs", "param", "got"), [
    ({"bits": 1}, "bits", "1"), ({"bits": 8.0}, "bits", "8.0"), ({"bits": True}, "bits", "True"),
    ({"bits": 8, "scope": "conv"}, "scope", "'conv'"),
])
def test_fake_quant_rejects_bad_settings(kwargs, param, got):
    with pytest.raises(InvalidParameterError) as info:
        FakeQuant(**kwargs)
    msg = str(info.value)
    assert msg.startswith(f"The '{param}' parameter of FakeQuant must be ") and msg.endswith(f"Got {got} instead.")
