"""Tiny files in the real on-disk formats of torchvision's CIFAR-10, CIFAR-100 and MNIST.

The loaders are tested on them (``tests/test_data.py``) and the paper profile's dry run trains on them
(``tests/test_paper_dry_run.py``), so torchvision's own parsing runs. Only CIFAR's md5 check cannot pass
on files that are not the official release: :func:`skip_cifar_md5` makes it check existence only, and this
module is also a pytest plugin (``-p tinydata`` with ``tests/`` on the path) that does so in a ``pytest
claims`` subprocess and its xdist workers.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


class _Py2Str(bytes):
    """A Python 2 ``str``: how the keys and names inside the real CIFAR pickles are stored."""


class _Py2Pickler(pickle._Pickler):
    """Pure-Python pickler that writes :class:`_Py2Str` with the Python 2 string opcodes.

    The CIFAR files were pickled by Python 2, so their keys are (SHORT_)BINSTRING
    byte strings: ``pickle.load(f, encoding="bytes")`` yields ``b'data'`` and
    torchvision's ``pickle.load(f, encoding="latin1")`` yields ``'data'``.
    A Python 3 pickle of ``b'data'`` or ``'data'`` would give one or the other,
    never both, so write the opcodes the real files contain.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: _Py2Str) -> None:
        raw = bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2_str


def _py2(obj):
    """Turn the str keys/values of nested dicts and lists into Python 2 strings."""
    if isinstance(obj, str):
        return _Py2Str(obj.encode("latin1"))
    if isinstance(obj, dict):
        return {_py2(k): _py2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_py2(v) for v in obj]
    return obj


def _write_py2_pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(_py2(obj))


def write_cifar10(root: Path, rng: np.random.Generator, n_per_batch: int = 3, n_test: int = 4) -> dict:
    """Write ``cifar-10-batches-py`` under ``root``; return the pixels (N, 3, 32, 32) and labels written."""
    folder = root / "cifar-10-batches-py"
    written = {"train": ([], []), "test": ([], [])}
    files = [(f"data_batch_{i}", "train", n_per_batch) for i in range(1, 6)] + [("test_batch", "test", n_test)]
    for fname, split, n in files:
        # Row layout of the real files: 1024 R, then 1024 G, then 1024 B values, each plane row-major.
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        _write_py2_pickle(folder / fname, {
            "batch_label": f"{split} batch", "labels": labels, "data": data,
            "filenames": [f"img_{fname}_{j}.png" for j in range(n)],
        })
        written[split][0].append(data.reshape(n, 3, 32, 32))
        written[split][1].extend(labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _write_py2_pickle(folder / "batches.meta", {"num_cases_per_batch": n_per_batch, "label_names": names,
                                                "num_vis": 3072})
    return {s: (np.concatenate(x), np.array(y)) for s, (x, y) in written.items()} | {"names": names}


def write_cifar100(root: Path, rng: np.random.Generator, n_train: int = 7, n_test: int = 5) -> dict:
    """Write ``cifar-100-python`` under ``root``; return the pixels and fine labels written."""
    folder = root / "cifar-100-python"
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        _write_py2_pickle(folder / split, {
            "filenames": [f"{split}_{j}.png" for j in range(n)], "batch_label": f"{split} batch",
            "fine_labels": fine, "coarse_labels": [v // 5 for v in fine], "data": data,
        })
        written[split] = (data.reshape(n, 3, 32, 32), np.array(fine))
    names = [f"fine_{i}" for i in range(100)]
    _write_py2_pickle(folder / "meta", {"fine_label_names": names,
                                        "coarse_label_names": [f"coarse_{i}" for i in range(20)]})
    return written | {"names": names}


def write_mnist(root: Path, rng: np.random.Generator, n_train: int = 6, n_test: int = 4) -> dict:
    """Write the uncompressed IDX files torchvision's MNIST reads from ``MNIST/raw``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, split, n in (("train", "train", n_train), ("t10k", "test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        # IDX: big-endian int32 magic (0x0803 = uint8, 3 dims; 0x0801 = uint8, 1 dim), then the sizes.
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, n) + labels.tobytes())
        written[split] = (images[:, None], labels.astype(np.int64))
    return written


def write_all(root: Path, rng: np.random.Generator, *, n_train: int = 16, n_test: int = 8) -> None:
    """CIFAR-10, CIFAR-100 and MNIST under ``root``, ``n_train`` and ``n_test`` images each."""
    per_batch = n_train // 5
    write_cifar10(root, rng, n_per_batch=per_batch, n_test=n_test)
    write_cifar100(root, rng, n_train=n_train, n_test=n_test)
    write_mnist(root, rng, n_train=n_train, n_test=n_test)


def skip_cifar_md5() -> None:
    """Make torchvision's CIFAR integrity check test existence only (both of its checks go through
    ``torchvision.datasets.cifar.check_integrity``; the unpickling and reshaping still run)."""
    import torchvision.datasets.cifar as tv_cifar

    tv_cifar.check_integrity = lambda fpath, md5=None: Path(fpath).is_file()


def pytest_configure(config):  # as a plugin (-p tinydata): in the controller and in every xdist worker
    skip_cifar_md5()
