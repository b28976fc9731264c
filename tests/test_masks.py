"""Tests for compress.prune.masks: masks held fixed through optimizer steps, validation, sparsity."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis._validation import InvalidParameterError
from compress.prune.masks import MaskHolder, apply_masks, sparsity, validate_masks


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _masks(model: nn.Module, seed: int = 0, keep: float = 0.5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: (torch.rand(p.shape, generator=g) < keep).float()
        for n, p in model.named_parameters()
        if n.endswith("weight")
    }


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)


def _step(model, opt, x, y, holder=None):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    if holder is not None:
        holder.after_step()


def _masked_all_zero(model, masks) -> bool:
    params = dict(model.named_parameters())
    return all(bool((params[n][m == 0] == 0).all()) for n, m in masks.items())


def _make_opt(model, kind):
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-2)


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_masked_weights_stay_zero_through_momentum_and_weight_decay(kind):
    model = _model()
    masks = _masks(model)
    x, y = _data()
    opt = _make_opt(model, kind)
    params = dict(model.named_parameters())
    start = {n: p.detach().clone() for n, p in params.items()}
    with MaskHolder(model, masks) as holder:
        assert _masked_all_zero(model, masks)  # entering applies the masks
        for _ in range(10):
            _step(model, opt, x, y, holder)
            assert _masked_all_zero(model, masks)
    for n, m in masks.items():
        assert not torch.equal(params[n][m == 1], start[n][m == 1])  # unmasked weights trained


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_momentum_buffers_from_before_masking_do_not_leak(kind):
    model = _model(1)
    x, y = _data(1)
    opt = _make_opt(model, kind)
    for _ in range(5):  # fill momentum / Adam moments with unmasked gradients
        _step(model, opt, x, y)
    masks = _masks(model, seed=1)
    with MaskHolder(model, masks) as holder:
        for _ in range(5):
            _step(model, opt, x, y, holder)
            assert _masked_all_zero(model, masks)


def test_without_after_step_old_momentum_would_move_masked_weights():
    # Why MaskHolder needs after_step: the gradient hook alone does not stop
    # momentum accumulated before masking from moving masked weights.
    model = _model(2)
    x, y = _data(2)
    opt = _make_opt(model, "sgd")
    for _ in range(5):
        _step(model, opt, x, y)
    masks = _masks(model, seed=2)
    with MaskHolder(model, masks):
        _step(model, opt, x, y, holder=None)
        assert not _masked_all_zero(model, masks)


def test_gradient_hook_zeroes_masked_gradients_and_is_removed_on_exit():
    model = _model(3)
    masks = _masks(model, seed=3)
    x, y = _data(3)
    params = dict(model.named_parameters())
    with MaskHolder(model, masks):
        nn.functional.cross_entropy(model(x), y).backward()
        for n, m in masks.items():
            assert bool((params[n].grad[m == 0] == 0).all())
            assert params[n].grad[m == 1].abs().sum() > 0
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    for n, m in masks.items():
        assert params[n].grad[m == 0].abs().sum() > 0, n  # hooks gone


def test_hooks_removed_even_when_the_body_raises():
    model = _model(4)
    masks = _masks(model, seed=4)
    holder = MaskHolder(model, masks)
    with pytest.raises(RuntimeError, match="boom"):
        with holder:
            raise RuntimeError("boom")
    assert holder._handles == []
    x, y = _data(4)
    nn.functional.cross_entropy(model(x), y).backward()
    name, m = next(iter(masks.items()))
    assert dict(model.named_parameters())[name].grad[m == 0].abs().sum() > 0


def test_apply_masks_zeroes_exactly_the_masked_entries():
    model = _model(5)
    masks = _masks(model, seed=5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    apply_masks(model, masks)
    for n, p in model.named_parameters():
        expected = before[n] * masks[n] if n in masks else before[n]
        assert torch.equal(p.detach(), expected)


def test_sparsity_hand_computed():
    lin = nn.Linear(2, 2)  # 4 weights + 2 biases
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        lin.bias.copy_(torch.tensor([1.0, 2.0]))
    assert sparsity(lin, ["weight"]) == pytest.approx(3 / 4)
    assert sparsity(lin) == pytest.approx(3 / 6)
    assert sparsity(lin, []) == 0.0


def test_validate_masks_accepts_matching_masks():
    model = _model()
    assert validate_masks(model, _masks(model)) is None  # returns quietly: no error for matching masks
    assert validate_masks(model, {}) is None


def test_validate_masks_unknown_name():
    model = _model()
    with pytest.raises(InvalidParameterError) as info:
        validate_masks(model, {"2.wieght": torch.ones(3, 8)})
    msg = str(info.value)
    assert "'2.wieght'" in msg and "names no parameter" in msg and "2.weight" in msg


def test_validate_masks_wrong_shape():
    model = _model()
    with pytest.raises(InvalidParameterError) as info:
        validate_masks(model, {"0.weight": torch.ones(6, 8)})
    msg = str(info.value)
    assert "'0.weight'" in msg and "(8, 6)" in msg and "Got (6, 8) instead." in msg


def test_mask_holder_validates_before_touching_the_model():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InvalidParameterError):
        MaskHolder(model, {"0.weight": torch.zeros(8, 6), "nope": torch.ones(1)})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_masks_name_parametrized_weights_by_their_plain_names():
    # Quantization-aware training re-parametrizes weights; masks keep addressing "0.weight".
    from torch.nn.utils import parametrize

    model = _model()
    masks = _masks(model)
    parametrize.register_parametrization(model[0], "weight", nn.Identity())
    assert "0.parametrizations.weight.original" in dict(model.named_parameters())
    validate_masks(model, masks)
    apply_masks(model, masks)
    assert bool((model[0].parametrizations.weight.original[masks["0.weight"] == 0] == 0).all())
    assert sparsity(model, ["0.weight"]) == pytest.approx(float((masks["0.weight"] == 0).float().mean()))
