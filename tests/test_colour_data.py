"""Tests for ``colour_digits`` (compress.data.datasets) and the seeded colour jitter (compress.data.jitter).

``colour_digits`` is ``digits`` (same images, same split) painted with a random
ink and background colour per image, so colour is a nuisance variable; claim
SH-8 measures robustness as accuracy on a :func:`colour_jitter` copy of its test
set over clean accuracy.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from analysis._validation import InvalidParameterError
from compress.data.datasets import (
    CHANNEL_STATS,
    check_available,
    dataset_options,
    dataset_shape,
    dataset_size,
    expected_paths,
    list_datasets,
    load_dataset,
    pixel_stats,
)
from compress.data.jitter import JITTER_DEFAULTS, check_jitter, colour_jitter


@pytest.fixture(scope="module")
def colour():
    return load_dataset("colour_digits", seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _pixels(x: torch.Tensor, stats) -> torch.Tensor:
    mean, std = (torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1) for v in stats)
    return x.double() * std + mean


def _ink_and_background(rgb: torch.Tensor, ink: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the colours ``c`` (ink) and ``b`` (background) of ``rgb = ink * c + (1 - ink) * b``.

    ``b`` is read at a pixel without ink, ``c`` solved at the pixel with the most ink.
    """
    n = rgb.shape[0]
    flat_rgb, flat_ink = rgb.flatten(2), ink.flatten(1)  # (N, 3, 64), (N, 64)
    blank = flat_ink.argmin(1)
    full = flat_ink.argmax(1)
    rows = torch.arange(n)
    assert float(flat_ink[rows, blank].max()) < 1e-6  # every digit image has an empty pixel
    m = flat_ink[rows, full].unsqueeze(1)
    b = flat_rgb[rows, :, blank]
    c = (flat_rgb[rows, :, full] - (1 - m) * b) / m
    return c, b


# --------------------------------------------------------------------------- registry


def test_registered_with_shape_size_and_options():
    assert "colour_digits" in list_datasets()
    assert dataset_shape("colour_digits") == ((3, 8, 8), 10)
    assert dataset_options("colour_digits") == {"test_fraction": 0.3, "n_train": None, "n_test": None} == \
        dataset_options("digits")
    for kw in ({}, {"test_fraction": 0.5}, {"n_train": 256, "n_test": 100}, {"n_train": 5000}):
        assert dataset_size("colour_digits", **kw) == dataset_size("digits", **kw)
        ds = load_dataset("colour_digits", **kw)
        assert (ds.n_train, ds.n_test) == dataset_size("colour_digits", **kw)
    assert expected_paths("colour_digits", None) == [] and check_available("colour_digits", None) is None
    with pytest.raises(InvalidParameterError, match="'epochs'"):
        dataset_shape("colour_digits", epochs=3)


@pytest.mark.parametrize(("kwargs", "bad"), [({"test_fraction": 1.5}, "1.5"), ({"test_fraction": 0.001}, "0.001"),
                                             ({"seed": -1}, "Got -1 "), ({"epochs": 3}, "'epochs'")])
def test_bad_options_name_the_value(kwargs, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        load_dataset("colour_digits", **kwargs)


# --------------------------------------------------------------------------- the dataset


@pytest.mark.parametrize(("seed", "test_fraction"), [(0, 0.3), (5, 0.5)])
def test_same_split_labels_and_classes_as_digits(seed, test_fraction):
    c = load_dataset("colour_digits", seed=seed, test_fraction=test_fraction)
    d = load_dataset("digits", seed=seed, test_fraction=test_fraction)
    assert c.in_shape == (3, 8, 8) and d.in_shape == (1, 8, 8)
    assert (c.n_train, c.n_test, c.num_classes, c.class_names) == (d.n_train, d.n_test, d.num_classes, d.class_names)
    assert c.x_train.dtype == torch.float32 and c.y_train.dtype == torch.int64
    assert c.x_train.is_contiguous() and c.x_test.is_contiguous()
    assert torch.equal(c.y_train, d.y_train) and torch.equal(c.y_test, d.y_test)


@pytest.mark.parametrize("split", ["train", "test"])
def test_images_are_digits_ink_painted_with_two_colours(colour, digits, split):
    """Same images in the same order: ``rgb = ink * c + (1 - ink) * b`` with digits' ink, per image."""
    rgb = _pixels(getattr(colour, f"x_{split}"), pixel_stats("colour_digits", seed=0))
    ink = _pixels(getattr(digits, f"x_{split}"), pixel_stats("digits", seed=0))[:, 0]
    assert float(ink.min()) > -1e-6 and float(ink.max()) < 1 + 1e-6
    assert float(rgb.min()) > -1e-6 and float(rgb.max()) < 1 + 1e-6
    c, b = _ink_and_background(rgb, ink)
    rebuilt = ink[:, None] * c[:, :, None, None] + (1 - ink[:, None]) * b[:, :, None, None]
    assert float((rebuilt - rgb).abs().max()) < 1e-4
    # Bright saturated ink, dark greyish background (the documented HSV ranges).
    for colours, v_range, s_range in ((c, (0.7, 1.0), (0.5, 1.0)), (b, (0.0, 0.4), (0.0, 0.5))):
        v = colours.max(1).values
        s = (v - colours.min(1).values) / v.clamp_min(1e-12)
        assert v_range[0] - 1e-4 <= float(v.min()) and float(v.max()) <= v_range[1] + 1e-4
        assert s_range[0] - 1e-3 <= float(s[v > 1e-3].min()) and float(s.max()) <= s_range[1] + 1e-3


def test_colours_spread_within_every_class(colour, digits):
    """Colour carries no label information: in every class the ink hue covers the wheel."""
    rgb = _pixels(colour.x_train, pixel_stats("colour_digits", seed=0))
    ink = _pixels(digits.x_train, pixel_stats("digits", seed=0))[:, 0]
    c, _ = _ink_and_background(rgb, ink)
    hue = torch.tensor([colorsys.rgb_to_hsv(*map(float, rgb_i))[0] for rgb_i in c.clamp(0, 1)])
    overall = c.mean(0)
    for k in range(10):
        in_k = colour.y_train == k
        h = hue[in_k]
        # Mean resultant length of the hue angles: 0 for hues spread evenly, 1 for one hue.
        resultant = float(torch.complex(torch.cos(2 * math.pi * h), torch.sin(2 * math.pi * h)).mean().abs())
        assert resultant < 0.3, (k, resultant)
        assert float(h.max() - h.min()) > 0.8
        assert float((c[in_k].mean(0) - overall).abs().max()) < 0.1
        assert float(c[in_k].std(0).min()) > 0.15


def test_normalized_per_channel_with_train_statistics(colour):
    dims = (0, 2, 3)
    assert float(colour.x_train.mean(dims).abs().max()) < 1e-5
    assert float((colour.x_train.std(dims, unbiased=False) - 1).abs().max()) < 1e-4
    assert float(colour.x_test.mean(dims).abs().max()) < 0.2  # same distribution, not forced to 0


def test_deterministic_and_fixed_by_seed(colour):
    again = load_dataset("colour_digits", seed=0)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(again, field), getattr(colour, field))
    other = load_dataset("colour_digits", seed=1)
    assert not torch.equal(other.x_train, colour.x_train)


def test_pixel_stats(colour, digits):
    mean, std = pixel_stats("colour_digits", seed=0)
    assert len(mean) == len(std) == 3 and all(isinstance(v, float) for v in (*mean, *std))
    assert all(s > 0 for s in std)
    assert pixel_stats("colour_digits", seed=0, test_fraction=0.3) == (mean, std)
    assert pixel_stats("colour_digits", seed=1) != (mean, std)
    # The digits stats map its images back to the pixel counts 0..16 / 16.
    ink = _pixels(digits.x_train, pixel_stats("digits", seed=0))
    assert float(ink.min()) == pytest.approx(0, abs=1e-6) and float(ink.max()) == pytest.approx(1, abs=1e-6)
    assert pixel_stats("cifar10") == CHANNEL_STATS["cifar10"] and pixel_stats("mnist") == CHANNEL_STATS["mnist"]


@pytest.mark.parametrize(("name", "kwargs", "bad"), [
    ("fake", {}, "'fake'"), ("imagenet", {}, "'imagenet'"), ("colour_digits", {"epochs": 3}, "'epochs'"),
    ("colour_digits", {"test_fraction": 2.0}, "2.0"), ("digits", {"seed": -1}, "Got -1 "),
])
def test_pixel_stats_errors_name_the_value(name, kwargs, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        pixel_stats(name, **kwargs)


# --------------------------------------------------------------------------- jitter parameters


def test_jitter_defaults_are_the_common_colorjitter():
    assert JITTER_DEFAULTS == {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}
    assert check_jitter({}) == JITTER_DEFAULTS
    assert check_jitter({"hue": 0.5, "brightness": 0}) == {**JITTER_DEFAULTS, "hue": 0.5, "brightness": 0.0}


@pytest.mark.parametrize(("params", "bad"), [
    ({"hue": 0.7}, "0.7"), ({"hue": -0.1}, "-0.1"), ({"brightness": -0.5}, "-0.5"),
    ({"contrast": math.inf}, "inf"), ({"saturation": math.nan}, "nan"), ({"saturation": True}, "True"),
    ({"contrast": "0.4"}, "'0.4'"),
])
def test_check_jitter_rejects_out_of_range(params, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        check_jitter(params)


def test_check_jitter_unknown_key_lists_valid_keys():
    with pytest.raises(InvalidParameterError, match="'gamma'") as err:
        check_jitter({"gamma": 0.2})
    assert all(repr(k) in str(err.value) for k in JITTER_DEFAULTS)


# --------------------------------------------------------------------------- colour_jitter


def _norm() -> tuple:
    return pixel_stats("colour_digits", seed=0)


def test_jitter_deterministic_and_seeded(colour):
    x, norm = colour.x_test[:64], _norm()
    a = colour_jitter(x, normalization=norm, seed=3, **JITTER_DEFAULTS)
    b = colour_jitter(x.clone(), normalization=norm, seed=3, **JITTER_DEFAULTS)
    assert a.numpy().tobytes() == b.numpy().tobytes()
    assert not torch.equal(colour_jitter(x, normalization=norm, seed=4), a)
    assert torch.equal(colour_jitter(x, normalization=norm, seed=3), a)  # the defaults are JITTER_DEFAULTS


def test_jitter_changes_images_keeps_shape_dtype_device(colour):
    x, norm = colour.x_test, _norm()
    y = colour_jitter(x, normalization=norm, seed=0)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device and y.is_contiguous()
    per_image = (y - x).abs().flatten(1).amax(1)
    assert bool((per_image > 1e-3).all())
    # Still images of the same pixel range, and the input is untouched.
    assert float(_pixels(y, norm).min()) > -1e-5 and float(_pixels(y, norm).max()) < 1 + 1e-5
    assert torch.equal(x, colour.x_test)
    x64 = x[:4].double()
    assert colour_jitter(x64, normalization=norm, seed=0).dtype == torch.float64


def test_zero_jitter_is_identity(colour):
    x = colour.x_test
    y = colour_jitter(x, normalization=_norm(), seed=0, brightness=0, contrast=0, saturation=0, hue=0)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_brightness_only_on_a_known_image():
    pix = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1).expand(5, 3, 4, 4)  # 0.9 clips for factors > 1.11
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    x = (pix - mean_t) / std_t
    y = colour_jitter(x, normalization=(mean, std), seed=11, brightness=0.5, contrast=0, saturation=0, hue=0)
    # The documented draw: row i of torch.rand((N, 4), float64) from Generator().manual_seed(seed), column 0.
    u = torch.rand((5, 4), dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    factor = (0.5 + 1.0 * u[:, 0]).float().view(5, 1, 1, 1)
    expected = ((pix * factor).clamp(0, 1) - mean_t) / std_t
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)
    # The same without the formula: one factor per image in [0.5, 1.5], the same for every pixel.
    ratio = _pixels(y, (mean, std))[:, 0] / 0.2
    assert float(ratio.min()) >= 0.5 - 1e-4 and float(ratio.max()) <= 1.5 + 1e-4
    assert float((ratio - ratio[:, :1, :1]).abs().max()) < 1e-4
    assert float(ratio.flatten(1)[:, 0].std()) > 0.01  # different images, different factors


def test_hue_only_keeps_value_and_saturation(colour):
    norm = _norm()
    x = colour.x_test[:32]
    y = colour_jitter(x, normalization=norm, seed=2, brightness=0, contrast=0, saturation=0, hue=0.5)
    before, after = _pixels(x, norm), _pixels(y, norm)
    torch.testing.assert_close(after.amax(1), before.amax(1), atol=1e-5, rtol=0)  # HSV value
    torch.testing.assert_close(after.amin(1), before.amin(1), atol=1e-5, rtol=0)  # so saturation too
    assert float((after - before).abs().max()) > 0.1


@pytest.mark.parametrize(("kwargs", "bad"), [
    ({"x": torch.zeros(2, 1, 8, 8)}, r"\(2, 1, 8, 8\)"),
    ({"x": torch.zeros(3, 8, 8)}, r"\(3, 8, 8\)"),
    ({"x": torch.zeros(2, 3, 8, 8, dtype=torch.int64)}, "int64"),
    ({"hue": 0.7}, "0.7"),
    ({"brightness": -1.0}, "-1.0"),
    ({"seed": -1}, "Got -1 "),
    ({"normalization": ((0.5,), (0.2,))}, r"\(0.5,\)"),
    ({"normalization": ((0.5,) * 3, (0.2, 0.0, 0.2))}, "0.0"),
])
def test_jitter_bad_input_names_the_value(kwargs, bad):
    args = {"x": torch.zeros(2, 3, 8, 8), "normalization": ((0.5,) * 3, (0.2,) * 3), "seed": 0, **kwargs}
    with pytest.raises(InvalidParameterError, match=bad):
        colour_jitter(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_jitter_on_cuda_matches_cpu(colour):
    x, norm = colour.x_test[:64], _norm()
    y = colour_jitter(x.cuda(), normalization=norm, seed=5)
    assert y.device.type == "cuda"
    assert np.array_equal(y.cpu().numpy(), colour_jitter(x, normalization=norm, seed=5).numpy())


@pytest.mark.parametrize("name", ["digits", "colour_digits"])
def test_caps_keep_a_seeded_subset_normalized_as_the_whole_split(name):
    """``n_train``/``n_test`` (the smoke profile's SH data) cut each split to a seeded subset of its own rows; the
    normalization constants, and so pixel_stats, stay those of the whole training split."""
    whole = load_dataset(name, seed=2)
    cut = load_dataset(name, seed=2, n_train=100, n_test=40)
    assert (cut.n_train, cut.n_test) == (100, 40) == dataset_size(name, n_train=100, n_test=40)
    rows = {tuple(r.flatten().tolist()) for r in whole.x_train}
    assert all(tuple(r.flatten().tolist()) in rows for r in cut.x_train)  # same pixels: same normalization
    assert torch.equal(load_dataset(name, seed=2, n_train=100, n_test=40).x_train, cut.x_train)  # seeded
    assert pixel_stats(name, seed=2, n_train=100) == pixel_stats(name, seed=2)
    assert load_dataset(name, seed=2, n_train=10_000).n_train == whole.n_train  # a cap above the split keeps it
    with pytest.raises(InvalidParameterError, match="n_train"):
        load_dataset(name, n_train=0)

