"""Tests for Grad-CAM (:mod:`compress.measure.gradcam`), SSIM of maps (:mod:`analysis.measure.saliency`) and the overlay figure.

Grad-CAM is checked against a hand computation on a network whose weights
give α in closed form (global average pool + linear: α_k = w[c, k] / (h w)),
per image within a batch, and for leaving the model as it found it (modes,
hooks, gradients). SSIM is checked against scikit-image called directly with
the recorded settings.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn

from analysis._validation import InvalidParameterError
from analysis.measure.saliency import SSIM_SETTINGS, ssim_per_image, ssim_settings
from analysis.plots.cams import plot_cam_overlays
from compress.measure.gradcam import grad_cam, last_conv_layer, upsample_and_scale

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _gap_net(seed: int = 0, classes: int = 4) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, classes))


def _images(n: int = 5, seed: int = 1, size: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_grad_cam_matches_the_closed_form_for_gap_and_linear():
    model, x = _gap_net(), _images()
    targets = torch.tensor([0, 1, 2, 3, 1])
    maps = grad_cam(model, x, layer="1", targets=targets)
    with torch.no_grad():
        acts = model[1](model[0](x))  # (N, K, h, w)
        h, w = acts.shape[2:]
        alpha = model[4].weight[targets] / (h * w)  # (N, K)
        expected = torch.relu((alpha[:, :, None, None] * acts).sum(dim=1))
    assert maps.dtype == torch.float32 and maps.device.type == "cpu" and maps.shape == (5, 8, 8)
    assert torch.allclose(maps, expected, atol=1e-6)
    assert expected.max() > 0  # a non-trivial comparison


def test_default_targets_are_the_predicted_classes_and_default_layer_the_last_conv():
    model, x = _gap_net(), _images()
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    assert last_conv_layer(model) == "1"
    assert torch.equal(grad_cam(model, x), grad_cam(model, x, layer="1", targets=predicted))


def test_last_conv_layer_keeps_the_conv_unless_a_relu_module_follows_it():
    with_bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    assert last_conv_layer(with_bn) == "3"
    with pytest.raises(InvalidParameterError, match="nn.Conv2d"):
        last_conv_layer(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)))


def test_each_image_in_a_batch_gets_its_own_map_and_target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    model[1].running_mean.normal_()  # eval-mode BatchNorm with non-trivial statistics
    x, targets = _images(), torch.tensor([4, 0, 3, 1, 2])
    together = grad_cam(model, x, layer="4", targets=targets)
    alone = torch.cat([grad_cam(model, x[i:i + 1], layer="4", targets=targets[i:i + 1]) for i in range(5)])
    chunked = grad_cam(model, x, layer="4", targets=targets, batch_size=2)
    assert together.shape == (5, 8, 8) and together.abs().sum() > 0
    assert torch.allclose(together, alone, atol=1e-6)
    assert torch.allclose(together, chunked, atol=1e-6)


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_the_model_is_left_as_found(mode):
    model, x = _gap_net(), _images()
    model.train(mode != "eval")
    if mode == "mixed":
        model[0].eval()
        model[4].eval()
    before = {name: m.training for name, m in model.named_modules()}
    grad_cam(model, x, layer="0")
    assert {name: m.training for name, m in model.named_modules()} == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


def test_hooks_are_removed_and_modes_restored_after_an_error():
    model, x = _gap_net(), _images()
    model.train()
    with pytest.raises(InvalidParameterError, match="targets"):
        grad_cam(model, x, layer="0", targets=torch.tensor([0, 1, 2, 3, 4]))  # 4 classes
    assert model.training and all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


def test_an_inplace_relu_after_the_hooked_conv_is_harmless():
    model, x = _gap_net(), _images()
    reference = grad_cam(model, x, layer="0")
    model[1].inplace = True
    assert torch.equal(grad_cam(model, x, layer="0"), reference)


def test_unknown_layer_names_the_value_and_some_valid_names():
    with pytest.raises(InvalidParameterError, match=r"'layer4'.*") as error:
        grad_cam(_gap_net(), _images(), layer="layer4")
    assert "'0'" not in str(error.value) and "0, 1, 2" in str(error.value)


@pytest.mark.parametrize("targets", [torch.tensor([0, 1]), torch.tensor([[0, 1, 2, 3, 0]]), torch.zeros(5),
                                     torch.tensor([0, 1, -1, 2, 3]), torch.tensor([0, 1, 2, 3, 4])])
def test_bad_targets_are_refused(targets):
    with pytest.raises(InvalidParameterError, match="targets"):
        grad_cam(_gap_net(), _images(), layer="1", targets=targets)


def test_a_layer_without_a_map_output_is_refused():
    with pytest.raises(InvalidParameterError, match="4-D"):
        grad_cam(_gap_net(), _images(), layer="3")


def test_upsample_and_scale_fills_zero_to_one_and_zeroes_constant_maps():
    maps = torch.stack([torch.rand(4, 4, generator=torch.Generator().manual_seed(0)) * 7 + 3, torch.full((4, 4), 2.5)])
    out = upsample_and_scale(maps, (32, 32))
    assert out.shape == (2, 32, 32) and out.dtype == torch.float32
    assert out[0].min() == 0 and out[0].max() == 1
    assert torch.equal(out[1], torch.zeros(32, 32))
    with pytest.raises(InvalidParameterError, match="size"):
        upsample_and_scale(maps, (32,))


def test_ssim_of_identical_maps_is_one_and_agrees_with_skimage():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 32, 32)), rng.random((3, 32, 32))
    assert np.allclose(ssim_per_image(a, a), 1.0)
    settings = ssim_settings(a.shape)
    assert settings == SSIM_SETTINGS and settings["win_size"] == 11
    direct = [structural_similarity(a[i], b[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0, K1=0.01, K2=0.03, win_size=11) for i in range(3)]
    values = ssim_per_image(a, b)
    assert values.shape == (3,) and np.allclose(values, direct, rtol=0, atol=1e-12) and np.all(values < 0.5)


@pytest.mark.parametrize(("shape", "win"), [((8, 8), 7), ((2, 7, 9), 7), ((3, 3), 3), ((10, 40), 9), ((11, 11), 11)])
def test_the_window_shrinks_to_the_largest_odd_size_that_fits(shape, win):
    assert ssim_settings(shape)["win_size"] == win
    maps = np.random.default_rng(1).random((2, *shape[-2:]))
    assert np.allclose(ssim_per_image(maps, maps), 1.0)


def test_ssim_refuses_tiny_maps_bad_values_and_mismatched_shapes():
    with pytest.raises(InvalidParameterError, match="3x3"):
        ssim_settings((2, 2))
    with pytest.raises(InvalidParameterError, match="3x3"):
        ssim_per_image(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    ok = np.full((1, 8, 8), 0.5)
    for bad in (np.full((1, 8, 8), 1.5), np.full((1, 8, 8), -0.1), np.full((1, 8, 8), np.nan)):
        with pytest.raises(InvalidParameterError, match=r"\[0, 1\]"):
            ssim_per_image(ok, bad)
    with pytest.raises(InvalidParameterError, match="same shape"):
        ssim_per_image(ok, np.full((1, 8, 9), 0.5))


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_the_overlay_figure_is_a_png(tmp_path, channels):
    rng = np.random.default_rng(2)
    images = rng.random((4, 16, 16)) if channels is None else rng.random((4, channels, 16, 16))
    maps = {"teacher": rng.random((4, 16, 16)), "pruned 90%": np.zeros((4, 16, 16))}
    path = plot_cam_overlays(images, maps, tmp_path / "cams" / "overlay.png", title="Grad-CAM", n=3)
    assert path == tmp_path / "cams" / "overlay.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(InvalidParameterError, match="maps"):
        plot_cam_overlays(images, {"teacher": rng.random((4, 8, 8))}, tmp_path / "bad.png", title="x")
    assert not (tmp_path / "bad.png").exists()


def test_grad_cam_maps_feed_ssim_and_the_figure(tmp_path):
    model, x = _gap_net(), _images(n=3, size=12)
    maps = upsample_and_scale(grad_cam(model, x), (24, 24)).numpy()
    assert np.allclose(ssim_per_image(maps, maps), 1.0)
    assert plot_cam_overlays(x.numpy(), {"model": upsample_and_scale(grad_cam(model, x), (12, 12)).numpy()},
                             tmp_path / "f.png", title="t").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_grad_cam_on_cuda_matches_cpu():
    model, x = _gap_net(), _images()
    reference = grad_cam(model, x, layer="1")
    on_gpu = grad_cam(model.cuda(), x, layer="1")
    assert on_gpu.device.type == "cpu" and torch.allclose(on_gpu, reference, atol=1e-5)
