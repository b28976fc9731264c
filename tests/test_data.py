"""Tests for compress.data.datasets: in-memory datasets, their loaders and their errors.

The torchvision loaders are exercised on tiny files written in the real
on-disk formats (CIFAR python pickles, MNIST IDX), so torchvision's own
parsing runs; only CIFAR's md5 check is bypassed (see ``_skip_cifar_md5``).
"""
from __future__ import annotations

import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis._validation import InvalidParameterError
from compress.data.datasets import (
    CHANNEL_STATS,
    DatasetNotFoundError,
    InMemoryDataset,
    check_available,
    expected_paths,
    list_datasets,
    load_dataset,
)

from tests.tinydata import write_cifar10, write_cifar100, write_mnist

DISK_DATASETS = ["cifar10", "cifar100", "mnist"]


# --------------------------------------------------------------------------- writers of the real formats
# In tests/tinydata.py (the paper profile's dry run writes the same files).


@pytest.fixture
def _skip_cifar_md5(monkeypatch):
    """Make torchvision's CIFAR integrity check test existence only.

    torchvision compares each CIFAR file (and the meta file, in ``_load_meta``)
    with the md5 of the official release, which tiny test files cannot match.
    Both checks go through ``torchvision.datasets.cifar.check_integrity``, so
    that one function is replaced; the unpickling and reshaping still run.
    """
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())


def _undo_normalization(x: torch.Tensor, name: str) -> np.ndarray:
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in CHANNEL_STATS[name])
    pixels = ((x * std + mean) * 255).numpy()
    assert np.abs(pixels - pixels.round()).max() < 1e-3  # lands on the uint8 grid
    return pixels.round().astype(np.uint8)


# --------------------------------------------------------------------------- writer self-checks


def test_cifar_writer_matches_real_file_layout(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(0))
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")  # how the official docs read the real files
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert as_bytes[b"data"].dtype == np.uint8 and as_bytes[b"data"].shape == (3, 3072)
    with open(tmp_path / "cifar-10-batches-py" / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")  # how torchvision reads them
    assert meta["label_names"][0] == "airplane"


def test_mnist_writer_headers(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(0), n_train=6)
    head = (tmp_path / "MNIST/raw/train-images-idx3-ubyte").read_bytes()[:16]
    assert struct.unpack(">iiii", head) == (2051, 6, 28, 28)
    assert struct.unpack(">ii", (tmp_path / "MNIST/raw/train-labels-idx1-ubyte").read_bytes()[:8]) == (2049, 6)


# --------------------------------------------------------------------------- registry and errors


def test_list_datasets():
    assert list_datasets() == ["cifar10", "cifar100", "colour_digits", "digits", "fake", "mnist"]


def test_unknown_dataset_names_value_and_choices():
    with pytest.raises(InvalidParameterError, match="'imagenet'") as err:
        load_dataset("imagenet")
    assert all(repr(n) in str(err.value) for n in list_datasets())


@pytest.mark.parametrize(("name", "valid"), [("digits", ["test_fraction"]),
                                             ("fake", ["shape", "num_classes", "n_train", "n_test"])])
def test_unknown_option_names_value_and_choices(name, valid):
    with pytest.raises(InvalidParameterError, match="'epochs'") as err:
        load_dataset(name, epochs=3)
    assert all(repr(v) in str(err.value) for v in valid)


def test_disk_dataset_takes_no_options(tmp_path):
    with pytest.raises(InvalidParameterError, match="'test_fraction'.*instead"):
        load_dataset("mnist", root=tmp_path, test_fraction=0.5)


@pytest.mark.parametrize(("kwargs", "bad"), [
    ({"name": "digits", "test_fraction": 1.5}, "1.5"),
    ({"name": "digits", "test_fraction": 0.001}, "0.001"),
    ({"name": "fake", "shape": (3, 32)}, r"\(3, 32\)"),
    ({"name": "fake", "num_classes": 1}, "Got 1 "),
    ({"name": "fake", "n_train": 0}, "Got 0 "),
    ({"name": "digits", "seed": -1}, "Got -1 "),
])
def test_bad_option_values(kwargs, bad):
    with pytest.raises(InvalidParameterError, match=bad):
        load_dataset(**kwargs)


@pytest.mark.parametrize("name", DISK_DATASETS)
def test_missing_files_raise_with_paths_and_remedy(tmp_path, name):
    paths = expected_paths(name, tmp_path)
    assert paths and all(p.is_relative_to(tmp_path) for p in paths)
    for call in (lambda: check_available(name, tmp_path), lambda: load_dataset(name, root=tmp_path)):
        with pytest.raises(DatasetNotFoundError) as err:
            call()
        msg = str(err.value)
        assert isinstance(err.value, FileNotFoundError)
        assert repr(name) in msg and "--download" in msg and "copy the torchvision files there" in msg
        assert all(str(p) in msg for p in paths)
        assert err.value.missing == tuple(paths)


def test_expected_paths_are_torchvisions():
    root = Path("/data")
    assert Path("/data/cifar-10-batches-py/data_batch_1") in expected_paths("cifar10", root)
    assert Path("/data/cifar-100-python/meta") in expected_paths("cifar100", root)
    assert Path("/data/MNIST/raw/train-images-idx3-ubyte") in expected_paths("mnist", root)
    assert len(expected_paths("cifar10", root)) == 7


def test_partial_files_name_only_the_missing(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(0))
    gone = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    gone.unlink()
    with pytest.raises(DatasetNotFoundError, match="missing 1 of 7") as err:
        check_available("cifar10", tmp_path)
    assert err.value.missing == (gone,)


@pytest.mark.parametrize("name", DISK_DATASETS)
def test_disk_dataset_without_root_asks_for_data_root(name):
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        load_dataset(name)
    with pytest.raises(DatasetNotFoundError, match="--download"):
        check_available(name, None)


@pytest.mark.parametrize("name", ["digits", "fake"])
def test_embedded_datasets_need_no_files(name):
    assert expected_paths(name, None) == []
    assert check_available(name, None) is None


def test_corrupted_cifar_is_reported_not_crashed(tmp_path):
    # Without the md5 bypass torchvision rejects the tiny files, as it would a truncated copy.
    write_cifar10(tmp_path, np.random.default_rng(0))
    with pytest.raises(DatasetNotFoundError, match="rejected the files"):
        load_dataset("cifar10", root=tmp_path)


def test_failed_download_is_reported(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets as tvd

    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    with pytest.raises(DatasetNotFoundError, match="could not download.*no network"):
        load_dataset("mnist", root=tmp_path / "new", download=True)


# --------------------------------------------------------------------------- real-format loaders


def test_cifar10_round_trips_pixels_and_labels(tmp_path, _skip_cifar_md5):
    written = write_cifar10(tmp_path, np.random.default_rng(1))
    ds = load_dataset("cifar10", root=tmp_path)
    assert (ds.in_shape, ds.n_train, ds.n_test, ds.num_classes) == ((3, 32, 32), 15, 4, 10)
    assert ds.class_names == tuple(written["names"])
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        np.testing.assert_array_equal(_undo_normalization(x, "cifar10"), written[split][0])
        np.testing.assert_array_equal(y.numpy(), written[split][1])


def test_cifar100_round_trips_fine_labels(tmp_path, _skip_cifar_md5):
    written = write_cifar100(tmp_path, np.random.default_rng(2))
    ds = load_dataset("cifar100", root=tmp_path)
    assert (ds.in_shape, ds.n_train, ds.n_test, ds.num_classes) == ((3, 32, 32), 7, 5, 100)
    assert ds.class_names == tuple(written["names"])
    for split in ("train", "test"):
        np.testing.assert_array_equal(_undo_normalization(getattr(ds, f"x_{split}"), "cifar100"), written[split][0])
        np.testing.assert_array_equal(getattr(ds, f"y_{split}").numpy(), written[split][1])


def test_mnist_round_trips_pixels_and_labels(tmp_path):
    written = write_mnist(tmp_path, np.random.default_rng(3))
    ds = load_dataset("mnist", root=tmp_path)
    assert (ds.in_shape, ds.n_train, ds.n_test, ds.num_classes) == ((1, 28, 28), 6, 4, 10)
    for split in ("train", "test"):
        np.testing.assert_array_equal(_undo_normalization(getattr(ds, f"x_{split}"), "mnist"), written[split][0])
        np.testing.assert_array_equal(getattr(ds, f"y_{split}").numpy(), written[split][1])


def test_channel_stats_shapes():
    assert {k: tuple(map(len, v)) for k, v in CHANNEL_STATS.items()} == {
        "mnist": (1, 1), "cifar10": (3, 3), "cifar100": (3, 3)}
    assert all(0 < s < 1 for _, std in CHANNEL_STATS.values() for s in std)


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def test_digits_shapes_and_stratified_split(digits):
    from sklearn.datasets import load_digits

    full = np.bincount(load_digits().target)
    assert digits.in_shape == (1, 8, 8) and digits.num_classes == 10 and len(digits.class_names) == 10
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.n_train + digits.n_test == full.sum() == 1797
    assert digits.n_test == math.ceil(0.3 * 1797)  # scikit-learn rounds the test size up
    per_class_test = np.bincount(digits.y_test.numpy(), minlength=10)
    assert np.all(np.abs(per_class_test - 0.3 * full) <= 1)


def test_digits_standardized_with_train_statistics(digits):
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert abs(float(digits.x_train.std(unbiased=False)) - 1) < 1e-5
    assert abs(float(digits.x_test.mean())) < 0.1  # same distribution, but not forced to 0


def test_digits_keeps_every_image_exactly_once(digits):
    """Undo the affine scaling and compare the multiset of (image, label) with scikit-learn's."""
    from sklearn.datasets import load_digits

    x = torch.cat([digits.x_train, digits.x_test]).flatten(1).double()
    lo, hi = float(digits.x_train.min()), float(digits.x_train.max())  # pixel counts 0 and 16
    counts = (x - lo) / (hi - lo) * 16
    assert float((counts - counts.round()).abs().max()) < 1e-3
    ours = np.concatenate([counts.round().numpy(), torch.cat([digits.y_train, digits.y_test])[:, None].numpy()], 1)
    bunch = load_digits()
    ref = np.concatenate([bunch.data, bunch.target[:, None]], 1)
    assert sorted(map(tuple, ours.astype(int))) == sorted(map(tuple, ref.astype(int)))


def test_digits_split_fixed_by_seed(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(again, field), getattr(digits, field))
    assert not torch.equal(other.y_test, digits.y_test) or not torch.equal(other.x_test, digits.x_test)


def test_digits_test_fraction(digits):
    half = load_dataset("digits", test_fraction=0.5)
    assert half.n_test == math.ceil(0.5 * 1797) and half.n_test > digits.n_test


# --------------------------------------------------------------------------- fake


def _nearest_class_mean_accuracy(ds: InMemoryDataset) -> float:
    means = torch.stack([ds.x_train[ds.y_train == c].mean(0) for c in range(ds.num_classes)]).flatten(1)
    pred = torch.cdist(ds.x_test.flatten(1), means).argmin(1)
    return float((pred == ds.y_test).float().mean())


def test_fake_defaults_and_learnable():
    ds = load_dataset("fake")
    assert (ds.in_shape, ds.n_train, ds.n_test, ds.num_classes) == ((3, 32, 32), 512, 256, 10)
    assert _nearest_class_mean_accuracy(ds) > 0.5  # chance is 0.1


def test_fake_learnable_when_small():
    ds = load_dataset("fake", shape=(1, 8, 8), num_classes=4, n_train=200, n_test=200)
    assert _nearest_class_mean_accuracy(ds) > 0.5  # chance is 0.25


def test_fake_deterministic_by_seed():
    a, b, c = (load_dataset("fake", seed=s, shape=(2, 6, 6), n_train=40, n_test=20) for s in (5, 5, 6))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


@settings(max_examples=15, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), k=st.integers(2, 6),
       n_train=st.integers(1, 40), n_test=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_fake_shapes_and_balanced_labels(c, h, w, k, n_train, n_test, seed):
    ds = load_dataset("fake", seed=seed, shape=(c, h, w), num_classes=k, n_train=n_train, n_test=n_test)
    assert ds.x_train.shape == (n_train, c, h, w) and ds.x_test.shape == (n_test, c, h, w)
    for y in (ds.y_train, ds.y_test):
        counts = torch.bincount(y, minlength=k)
        assert counts.numel() == k and int(counts.max() - counts.min()) <= 1
    assert torch.isfinite(ds.x_train).all()


# --------------------------------------------------------------------------- InMemoryDataset


def _tiny(n_train=10, n_test=6, k=3) -> InMemoryDataset:
    return load_dataset("fake", shape=(3, 4, 4), num_classes=k, n_train=n_train, n_test=n_test)


def test_to_round_trip_and_no_copy():
    ds = _tiny()
    same = ds.to("cpu")
    assert same is not ds and same.x_train.data_ptr() == ds.x_train.data_ptr()
    cl = ds.to(torch.device("cpu"), channels_last=True)
    assert cl.x_train.is_contiguous(memory_format=torch.channels_last)
    assert cl.x_train.data_ptr() != ds.x_train.data_ptr()
    assert cl.to("cpu", channels_last=True).x_train.data_ptr() == cl.x_train.data_ptr()
    back = cl.to("cpu")
    assert back.x_train.is_contiguous()
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(back, field), getattr(ds, field))
    assert (back.name, back.num_classes, back.class_names) == (ds.name, ds.num_classes, ds.class_names)


def test_to_rejects_bad_device():
    with pytest.raises(InvalidParameterError, match="'gpu0'"):
        _tiny().to("gpu0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_round_trip():
    ds = _tiny()
    on_gpu = ds.to("cuda", channels_last=True)
    assert on_gpu.device.type == "cuda" and on_gpu.y_test.device.type == "cuda"
    assert torch.equal(on_gpu.to("cpu").x_train, ds.x_train)
    sub = on_gpu.subset(n_train=4, seed=3)
    assert sub.device.type == "cuda" and torch.equal(sub.to("cpu").x_train, ds.subset(n_train=4, seed=3).x_train)


def test_properties():
    ds = _tiny(n_train=10, n_test=6)
    assert (ds.in_shape, ds.n_train, ds.n_test, ds.device) == ((3, 4, 4), 10, 6, torch.device("cpu"))
    assert "n_train=10" in repr(ds)


def test_invalid_construction():
    ds = _tiny(k=3)
    with pytest.raises(InvalidParameterError, match="labels in"):
        InMemoryDataset("bad", ds.x_train, ds.y_train + 3, ds.x_test, ds.y_test, 3, ds.class_names)
    with pytest.raises(InvalidParameterError, match="class_names"):
        InMemoryDataset("bad", ds.x_train, ds.y_train, ds.x_test, ds.y_test, 3, ("a",))
    with pytest.raises(InvalidParameterError, match="float32"):
        InMemoryDataset("bad", ds.x_train.double(), ds.y_train, ds.x_test, ds.y_test, 3, ds.class_names)


@settings(max_examples=20, deadline=None)
@given(n_train=st.one_of(st.none(), st.integers(1, 10)), n_test=st.one_of(st.none(), st.integers(1, 6)),
       seed=st.integers(0, 1000))
def test_subset_picks_distinct_rows_deterministically(n_train, n_test, seed):
    ds = _tiny()
    sub = ds.subset(n_train=n_train, n_test=n_test, seed=seed)
    assert torch.equal(sub.x_train, ds.subset(n_train=n_train, n_test=n_test, seed=seed).x_train)
    for split, n in (("train", n_train), ("test", n_test)):
        full_x, full_y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        x, y = getattr(sub, f"x_{split}"), getattr(sub, f"y_{split}")
        assert x.shape[0] == (full_x.shape[0] if n is None else n)
        # every kept row is a distinct original row with its own label
        match = (x.flatten(1)[:, None] == full_x.flatten(1)[None]).all(-1)
        rows = match.float().argmax(1)
        assert match.any(1).all() and rows.unique().numel() == x.shape[0]
        assert torch.equal(full_y[rows], y)
        if n is None:
            assert torch.equal(x, full_x)


def test_subset_seed_changes_selection_and_bounds():
    ds = load_dataset("fake", shape=(1, 2, 2), n_train=100, n_test=10)
    assert not torch.equal(ds.subset(n_train=20, seed=0).y_train, ds.subset(n_train=20, seed=1).y_train) or \
        not torch.equal(ds.subset(n_train=20, seed=0).x_train, ds.subset(n_train=20, seed=1).x_train)
    with pytest.raises(InvalidParameterError, match="'n_train'.*Got 101"):
        ds.subset(n_train=101)
    with pytest.raises(InvalidParameterError, match="'n_test'.*Got 0"):
        ds.subset(n_test=0)
