"""In-memory image-classification datasets.

Every dataset is loaded once into four tensors (``x_train``, ``y_train``,
``x_test``, ``y_test``) and moved whole to the training device, so the training
loop indexes tensors instead of running a per-sample ``DataLoader``.

Datasets (one registry, :func:`load_dataset` is the entry point):

- ``digits``: scikit-learn's 8x8 handwritten digits; ships inside scikit-learn,
  so it needs no network. Stratified train/test split fixed by ``seed``.
- ``colour_digits``: the same images and split as ``digits``, painted in RGB
  with a random ink and background colour per image (drawn from ``seed``,
  independent of the label), so colour is a nuisance variable and the class
  depends on shape only.
- ``mnist``, ``cifar10``, ``cifar100``: the torchvision datasets read from
  ``root`` (``--data-root``); downloaded only when ``download=True``.
- ``fake``: Gaussian noise around class-dependent mean patterns, generated
  from ``seed``; learnable, for smoke tests.

:func:`pixel_stats` gives the per-channel (mean, std) that maps a dataset's
normalized images back to pixels in [0, 1] (e.g. to jitter their colours,
compress/data/jitter.py).

Missing files raise :class:`DatasetNotFoundError` naming the exact paths, and
:func:`check_available` raises it without loading anything, so a bad data root
fails before any training starts.

One module though long: ``InMemoryDataset`` and one loader per dataset behind
the one entry point :func:`load_dataset` (options read from each loader's
signature).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from analysis._validation import check_choice, check_in_range, invalid

__all__ = [
    "CHANNEL_STATS",
    "DatasetNotFoundError",
    "InMemoryDataset",
    "check_available",
    "dataset_options",
    "dataset_shape",
    "expected_paths",
    "list_datasets",
    "load_dataset",
    "pixel_stats",
]

# Per-channel (mean, std) of the *training* pixels scaled to [0, 1], the
# well-known constants used across the literature (MNIST: PyTorch examples;
# CIFAR: e.g. airbench). For CIFAR-10 these are the true pixel stds
# (0.2470, ...), not the often-copied (0.2023, 0.1994, 0.2010), which are the
# stds of per-image means.
CHANNEL_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

_DOWNLOAD_HINT = "pass --download (needs network access) or copy the torchvision files there"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where torchvision expects them.

    Attributes
    ----------
    dataset : str
        Dataset name, e.g. ``"cifar10"``.
    missing : tuple of pathlib.Path
        Expected files that do not exist (empty when the root itself is unset
        or the files exist but were rejected).
    """

    def __init__(self, message: str, *, dataset: str, missing: Sequence[Path] = ()):
        super().__init__(message)
        self.dataset = dataset
        self.missing = tuple(missing)


@dataclass(frozen=True, eq=False, repr=False)
class InMemoryDataset:
    """A train/test split held as tensors on one device.

    Parameters
    ----------
    name : str
        Registry name of the dataset this came from.
    x_train, x_test : Tensor
        float32 images, shape ``(N, C, H, W)``, already normalized.
    y_train, y_test : Tensor
        int64 class indices in ``[0, num_classes)``, shape ``(N,)``.
    num_classes : int
        Number of classes.
    class_names : tuple of str
        One name per class, ``len(class_names) == num_classes``.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        owner = "InMemoryDataset"
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise invalid("num_classes", owner, "a positive int", self.num_classes)
        if len(self.class_names) != self.num_classes:
            raise invalid("class_names", owner, f"a tuple of {self.num_classes} names", self.class_names)
        device = self.x_train.device
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.ndim != 4:
                raise invalid(f"x_{split}", owner, "a float32 tensor of shape (N, C, H, W)",
                              f"{x.dtype} tensor of shape {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise invalid(f"y_{split}", owner, f"an int64 tensor of shape ({x.shape[0]},)",
                              f"{y.dtype} tensor of shape {tuple(y.shape)}")
            if x.device != device or y.device != device:
                raise invalid(f"x_{split}/y_{split}", owner, f"on the device of x_train ({device})",
                              f"{x.device}/{y.device}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise invalid(f"y_{split}", owner, f"labels in [0, {self.num_classes})",
                              f"labels in [{int(y.min())}, {int(y.max())}]")
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise invalid("x_test", owner, f"images of shape {tuple(self.x_train.shape[1:])}",
                          tuple(self.x_test.shape[1:]))

    def __repr__(self) -> str:
        return (f"InMemoryDataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
                f"in_shape={self.in_shape}, num_classes={self.num_classes}, device={self.device})")

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(C, H, W)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return self.x_train.shape[0]

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return self.x_test.shape[0]

    @property
    def device(self) -> torch.device:
        """Device holding all four tensors."""
        return self.x_train.device

    def to(self, device: str | torch.device, *, channels_last: bool = False) -> InMemoryDataset:
        """Return a new dataset with its tensors on ``device``.

        Parameters
        ----------
        device : str or torch.device
            Target device, e.g. ``"cuda"``.
        channels_last : bool, default False
            Store images in ``torch.channels_last`` memory format (faster
            convolutions on GPUs); ``False`` stores them contiguous (NCHW).

        Returns
        -------
        InMemoryDataset
            A new instance; tensors already on ``device`` in the requested
            memory format are shared, not copied.
        """
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise invalid("device", "InMemoryDataset.to", "a torch device such as 'cpu' or 'cuda'", device) from err
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device, memory_format=fmt),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device, memory_format=fmt),
            y_test=self.y_test.to(device),
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> InMemoryDataset:
        """Return the first ``n_train``/``n_test`` examples after a seeded permutation.

        Not stratified. A split whose size is ``None`` is kept whole, in its
        original order.

        Parameters
        ----------
        n_train, n_test : int or None
            Number of examples to keep, in ``[1, current size]``.
        seed : int, default 0
            Seeds the permutation (a CPU ``torch.Generator``; same seed, same
            subset on every device).
        """
        owner = "InMemoryDataset.subset"
        _check_seed(seed, owner)
        gen = torch.Generator().manual_seed(seed)
        picked = {}
        for split, n, total in (("train", n_train, self.n_train), ("test", n_test, self.n_test)):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if n is None:
                picked[f"x_{split}"], picked[f"y_{split}"] = x, y
                continue
            _check_int(f"n_{split}", owner, n, 1, total)
            idx = torch.randperm(total, generator=gen)[:n].to(x.device)
            picked[f"x_{split}"], picked[f"y_{split}"] = x[idx], y[idx]
        return dataclasses.replace(self, **picked)


# --------------------------------------------------------------------------- helpers


def _check_int(param: str, owner: str, value: object, low: int, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        bounds = f"in [{low}, {high}]" if high != math.inf else f">= {low}"
        raise invalid(param, owner, f"an int {bounds}", value)


def _check_seed(seed: object, owner: str) -> None:
    # scikit-learn's random_state accepts [0, 2**32 - 1]; keep one range for all loaders.
    _check_int("seed", owner, seed, 0, 2**32 - 1)


def _normalize(x_uint8_nchw: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 images in [0, 255] -> float32 ``(x / 255 - mean) / std`` per channel."""
    x = x_uint8_nchw.to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(mean_t).div_(std_t).contiguous()


def _class_mean_patterns(gen: torch.Generator, num_classes: int, shape: tuple[int, int, int]) -> Tensor:
    """Smooth random per-class mean images: low-resolution noise upsampled to ``shape``.

    Smooth (not per-pixel) patterns so that convolutional models, which pool
    spatially, can pick them up as easily as linear ones.
    """
    c, h, w = shape
    coarse = torch.randn(num_classes, c, max(1, h // 4), max(1, w // 4), generator=gen)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- loaders
# Each loader takes (root, seed, download) plus its own keyword-only options;
# the option names and defaults are read from its signature.


def _split_digits(seed: int, test_fraction: float, owner: str) -> tuple[np.ndarray, ...]:
    """scikit-learn's digits as ink in [0, 1], split stratified by ``seed``.

    Returns ``(x_train, x_test, y_train, y_test, idx_train, idx_test, class_names)``:
    float32 ``(N, 8, 8)`` images, int labels, the images' indices in ``load_digits()``
    (the one split of ``digits`` and ``colour_digits``), and the class names.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_in_range("test_fraction", owner, test_fraction, 0.0, 1.0)
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # pixel counts 0..16 -> [0, 1]
    try:
        # The split depends on the number of rows, stratify and random_state only, so the
        # indices ride along without changing which images land where.
        x_tr, x_te, y_tr, y_te, i_tr, i_te = train_test_split(
            images, bunch.target, np.arange(len(images)), test_size=test_fraction, random_state=seed,
            stratify=bunch.target
        )
    except ValueError as err:  # a split too small to hold every class
        raise invalid("test_fraction", owner, "a float in (0, 1) leaving every class in both splits",
                      test_fraction) from err
    return x_tr, x_te, y_tr, y_te, i_tr, i_te, tuple(str(int(t)) for t in bunch.target_names)


def _cap(data: InMemoryDataset, n_train: int | None, n_test: int | None, seed: int, owner: str) -> InMemoryDataset:
    """``data`` cut to at most ``n_train``/``n_test`` examples per split (the first after a seeded permutation).

    Normalization constants stay those of the whole training split, so
    :func:`pixel_stats` does not depend on the caps (the project's own tests use
    them to keep the ``smoke`` profile to seconds).
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            _check_int(name, owner, n, 1)
    if n_train is None and n_test is None:
        return data
    return data.subset(None if n_train is None else min(n_train, data.n_train),
                       None if n_test is None else min(n_test, data.n_test), seed=seed)


def _load_digits(*, root: Path | None, seed: int, download: bool, test_fraction: float = 0.3,
                 n_train: int | None = None, n_test: int | None = None) -> InMemoryDataset:
    x_tr, x_te, y_tr, y_te, _, _, class_names = _split_digits(seed, test_fraction, "load_dataset('digits')")
    mean, std = _digits_stats(x_tr)
    return _cap(InMemoryDataset(
        name="digits",
        x_train=torch.from_numpy((x_tr - mean) / std).unsqueeze(1).contiguous(),
        y_train=torch.from_numpy(y_tr).to(torch.int64),
        x_test=torch.from_numpy((x_te - mean) / std).unsqueeze(1).contiguous(),
        y_test=torch.from_numpy(y_te).to(torch.int64),
        num_classes=10,
        class_names=class_names,
    ), n_train, n_test, seed, "load_dataset('digits')")


def _digits_stats(x_train: np.ndarray) -> tuple[float, float]:
    """(mean, std) of all training pixels of ``digits`` (one channel, population std)."""
    return float(x_train.mean()), float(x_train.std())


#: Per-image colours of ``colour_digits``: (low, high) of hue, saturation and value, drawn
#: uniformly. Bright, saturated ink on a dark, greyish background: any hue, and the shape
#: stays visible (ink value >= 0.7 > 0.4 >= background value) whatever the colours.
_INK_HSV = ((0.0, 1.0), (0.5, 1.0), (0.7, 1.0))
_BACKGROUND_HSV = ((0.0, 1.0), (0.0, 0.5), (0.0, 0.4))


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV in [0, 1] (each ``(N,)``) -> RGB in [0, 1], ``(N, 3)``: ``v - v s clamp(min(k, 4 - k), 0, 1)``.

    ``k = (n + 6 h) mod 6`` with ``n = 5, 3, 1`` for red, green, blue (the standard
    piecewise-linear hexcone formula).
    """
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(6.0 * h + n, 6.0)
        channels.append(v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, dim=1)


def _colour_digits(seed: int, test_fraction: float, owner: str) -> tuple:
    """``colour_digits`` before normalization.

    Returns ``(x_train, x_test, y_train, y_test, class_names, (mean, std))``: float32
    RGB images in [0, 1], shape ``(N, 3, 8, 8)``, int labels, and the per-channel
    mean and population std of the training pixels.
    """
    x_tr, x_te, y_tr, y_te, i_tr, i_te, class_names = _split_digits(seed, test_fraction, owner)
    # One draw of 6 uniforms per image of load_digits(), in its order, before any split:
    # an image's colours depend on the seed and its index only, never on its label.
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand((len(i_tr) + len(i_te), 6), generator=gen, dtype=torch.float32)
    low = torch.tensor([r[0] for r in _INK_HSV + _BACKGROUND_HSV], dtype=torch.float32)
    high = torch.tensor([r[1] for r in _INK_HSV + _BACKGROUND_HSV], dtype=torch.float32)
    hsv = low + (high - low) * u
    ink_rgb, bg_rgb = _hsv_to_rgb(*hsv[:, :3].unbind(1)), _hsv_to_rgb(*hsv[:, 3:].unbind(1))

    def paint(ink: np.ndarray, idx: np.ndarray) -> Tensor:
        ink_t, idx_t = torch.from_numpy(ink).unsqueeze(1), torch.from_numpy(idx)
        return (ink_t * ink_rgb[idx_t, :, None, None] + (1.0 - ink_t) * bg_rgb[idx_t, :, None, None]).contiguous()

    rgb_tr, rgb_te = paint(x_tr, i_tr), paint(x_te, i_te)
    pixels = rgb_tr.double()
    stats = (tuple(pixels.mean(dim=(0, 2, 3)).tolist()), tuple(pixels.std(dim=(0, 2, 3), correction=0).tolist()))
    return rgb_tr, rgb_te, y_tr, y_te, class_names, stats


def _load_colour_digits(
    *, root: Path | None, seed: int, download: bool, test_fraction: float = 0.3, n_train: int | None = None,
    n_test: int | None = None,
) -> InMemoryDataset:
    x_tr, x_te, y_tr, y_te, class_names, (mean, std) = _colour_digits(
        seed, test_fraction, "load_dataset('colour_digits')"
    )
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return _cap(InMemoryDataset(
        name="colour_digits",
        x_train=((x_tr - mean_t) / std_t).contiguous(),
        y_train=torch.from_numpy(y_tr).to(torch.int64),
        x_test=((x_te - mean_t) / std_t).contiguous(),
        y_test=torch.from_numpy(y_te).to(torch.int64),
        num_classes=10,
        class_names=class_names,
    ), n_train, n_test, seed, "load_dataset('colour_digits')")


def _load_fake(
    *,
    root: Path | None,
    seed: int,
    download: bool,
    shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
    n_train: int = 512,
    n_test: int = 256,
) -> InMemoryDataset:
    owner = "load_dataset('fake')"
    if (isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
        raise invalid("shape", owner, "a (C, H, W) tuple of positive ints", shape)
    _check_int("num_classes", owner, num_classes, 2)
    _check_int("n_train", owner, n_train, 1)
    _check_int("n_test", owner, n_test, 1)
    shape = tuple(shape)
    gen = torch.Generator().manual_seed(seed)
    # Signal amplitude 0.5 against unit noise: far above chance for a nearest-mean
    # rule or a small net after a few epochs, yet not identical copies of one image.
    means = 0.5 * _class_mean_patterns(gen, num_classes, shape)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]  # balanced classes
        x = means[y] + torch.randn((n, *shape), generator=gen)
        return x, y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return InMemoryDataset(
        name="fake",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
    )


def _from_torchvision(name: str, dataset_cls: Callable, root: Path, download: bool) -> InMemoryDataset:
    """Load both splits of a torchvision dataset, converting its errors into ours."""
    if not download:
        check_available(name, root)
    splits = []
    for train in (True, False):
        try:
            splits.append(dataset_cls(str(root), train=train, download=download))
        except (RuntimeError, OSError) as err:  # URLError is an OSError
            what = "could not download it" if download else "rejected the files (corrupted or partial copy?)"
            raise DatasetNotFoundError(
                f"Dataset {name!r} under {root}: torchvision {what}: {err}. "
                f"Expected files: {', '.join(map(str, expected_paths(name, root)))}; {_DOWNLOAD_HINT}.",
                dataset=name,
            ) from err
    mean, std = CHANNEL_STATS[name]
    tensors = []
    for ds in splits:
        data = torch.as_tensor(np.asarray(ds.data))
        # MNIST keeps (N, H, W) uint8; CIFAR keeps (N, H, W, C) uint8 numpy.
        data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        tensors += [_normalize(data, mean, std), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)]
    classes = tuple(str(c) for c in splits[0].classes)
    return InMemoryDataset(name, *tensors, num_classes=len(classes), class_names=classes)


def _load_mnist(*, root: Path, seed: int, download: bool) -> InMemoryDataset:
    from torchvision.datasets import MNIST

    return _from_torchvision("mnist", MNIST, root, download)


def _load_cifar10(*, root: Path, seed: int, download: bool) -> InMemoryDataset:
    from torchvision.datasets import CIFAR10

    return _from_torchvision("cifar10", CIFAR10, root, download)


def _load_cifar100(*, root: Path, seed: int, download: bool) -> InMemoryDataset:
    from torchvision.datasets import CIFAR100

    return _from_torchvision("cifar100", CIFAR100, root, download)


_LOADERS: dict[str, Callable[..., InMemoryDataset]] = {
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "colour_digits": _load_colour_digits,
    "digits": _load_digits,
    "fake": _load_fake,
    "mnist": _load_mnist,
}

# Files torchvision (>= 0.19) reads, relative to root. MNIST reads the raw,
# uncompressed IDX files (the legacy processed/*.pt cache is also accepted).
_FILES: dict[str, tuple[str, ...]] = {
    "cifar10": tuple(f"cifar-10-batches-py/{f}" for f in
                     (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")),
    "cifar100": tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta")),
    "mnist": tuple(f"MNIST/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
}
_MNIST_LEGACY = ("MNIST/processed/training.pt", "MNIST/processed/test.pt")


# --------------------------------------------------------------------------- public API


#: (in_shape, num_classes) of the datasets whose shape does not depend on options.
_SHAPES = {"digits": ((1, 8, 8), 10), "colour_digits": ((3, 8, 8), 10), "mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10),
           "cifar100": ((3, 32, 32), 100)}


def dataset_options(name: str) -> dict[str, object]:
    """The options ``load_dataset(name, **options)`` accepts, with their defaults (from the loader's signature)."""
    check_choice("name", "dataset_options", name, list_datasets())
    return {p.name: p.default for p in inspect.signature(_LOADERS[name]).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("root", "seed", "download")}


def dataset_shape(name: str, **options: object) -> tuple[tuple[int, int, int], int]:
    """``(in_shape, num_classes)`` of a dataset without loading it (for checks before any training).

    Raises
    ------
    InvalidParameterError
        Unknown ``name`` or an option the loader does not accept (the message lists the valid ones).
    """
    valid = dataset_options(name)
    for key in options:
        if key not in valid:
            raise invalid("option", f"load_dataset({name!r})",
                          "one of " + ", ".join(map(repr, valid)) if valid else "absent (it takes no options)", key)
    if name in _SHAPES:
        return _SHAPES[name]
    shape = tuple(options.get("shape", valid["shape"]))
    return (int(shape[0]), int(shape[1]), int(shape[2])), int(options.get("num_classes", valid["num_classes"]))


#: (train, test) examples of the datasets whose size does not depend on options (the official splits).
_SIZES = {"mnist": (60000, 10000), "cifar10": (50000, 10000), "cifar100": (50000, 10000)}
_DIGITS_EXAMPLES = 1797  # scikit-learn's load_digits()


def dataset_size(name: str, **options: object) -> tuple[int, int]:
    """``(n_train, n_test)`` of a dataset without loading it (for estimates before any training)."""
    valid = dataset_options(name)
    if name in _SIZES:
        return _SIZES[name]
    if name in ("digits", "colour_digits"):  # one split
        n_test = math.ceil(_DIGITS_EXAMPLES * float(options.get("test_fraction", valid["test_fraction"])))
        n_train = _DIGITS_EXAMPLES - n_test
        cap_train, cap_test = options.get("n_train"), options.get("n_test")
        return (n_train if cap_train is None else min(int(cap_train), n_train),
                n_test if cap_test is None else min(int(cap_test), n_test))
    return int(options.get("n_train", valid["n_train"])), int(options.get("n_test", valid["n_test"]))


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_LOADERS)


def _require_root(name: str, root: str | os.PathLike[str] | None, owner: str) -> Path:
    check_choice("name", owner, name, list_datasets())
    if root is None:
        raise DatasetNotFoundError(
            f"Dataset {name!r} is read from disk, so --data-root (root=...) is required; it is the folder "
            f"that holds {', '.join(_FILES[name])}. To fill it, {_DOWNLOAD_HINT}.",
            dataset=name,
        )
    return Path(root)


def expected_paths(name: str, root: str | os.PathLike[str] | None) -> list[Path]:
    """Files that must exist under ``root`` for dataset ``name``.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    root : path-like or None
        Data root (``--data-root``). Ignored for ``digits``, ``colour_digits`` and ``fake``.

    Returns
    -------
    list of pathlib.Path
        Empty for datasets that need no files.

    Raises
    ------
    InvalidParameterError
        Unknown ``name``.
    DatasetNotFoundError
        ``root`` is None for a dataset read from disk.
    """
    check_choice("name", "expected_paths", name, list_datasets())
    if name not in _FILES:
        return []
    root = _require_root(name, root, "expected_paths")
    return [root / f for f in _FILES[name]]


def check_available(name: str, root: str | os.PathLike[str] | None) -> None:
    """Raise :class:`DatasetNotFoundError` unless dataset ``name``'s files exist under ``root``.

    Checks existence only (no checksums, no loading), so it is cheap enough to
    run before any training. A no-op for ``digits``, ``colour_digits`` and ``fake``.
    """
    paths = expected_paths(name, root)
    missing = [p for p in paths if not p.is_file()]
    if name == "mnist" and missing and all((Path(root) / f).is_file() for f in _MNIST_LEGACY):
        return  # torchvision still loads its old processed/*.pt cache
    if missing:
        also = "" if len(missing) == len(paths) else f" (all expected: {', '.join(map(str, paths))})"
        raise DatasetNotFoundError(
            f"Dataset {name!r} not found under {root}: missing {len(missing)} of {len(paths)} files: "
            f"{', '.join(map(str, missing))}. To fix, {_DOWNLOAD_HINT}{also}.",
            dataset=name,
            missing=missing,
        )


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    download: bool = False,
    **options: object,
) -> InMemoryDataset:
    """Load dataset ``name`` into CPU memory.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    root : path-like or None
        Data root holding the torchvision files (``--data-root``); required
        for ``mnist``, ``cifar10`` and ``cifar100``, ignored otherwise.
    seed : int, default 0
        Fixes the train/test split of ``digits`` and ``colour_digits`` (the same
        split for both), the colours of ``colour_digits`` and the samples of ``fake``;
        the torchvision datasets have a fixed official split.
    download : bool, default False
        Let torchvision download missing files into ``root`` (needs network).
    **options
        Per-dataset options: ``digits`` and ``colour_digits``: ``test_fraction=0.3``, and
        ``n_train=None`` / ``n_test=None`` to keep at most that many examples of a split
        (the first after a permutation seeded by ``seed``; normalized as the whole split); ``fake``:
        ``shape=(3, 32, 32)``, ``num_classes=10``, ``n_train=512``,
        ``n_test=256``; the torchvision datasets take none.

    Returns
    -------
    InMemoryDataset
        Normalized float32 images and int64 labels on the CPU; call
        :meth:`InMemoryDataset.to` to move them.

    Raises
    ------
    InvalidParameterError
        Unknown ``name`` or option, or an option value out of range.
    DatasetNotFoundError
        A disk dataset without ``root``, or with files missing or rejected.
    """
    owner = "load_dataset"
    check_choice("name", owner, name, list_datasets())
    _check_seed(seed, owner)
    if not isinstance(download, bool):
        raise invalid("download", owner, "a bool", download)
    _check_options(name, options)
    if name in _FILES:
        root = _require_root(name, root, owner)
        if download:
            root.mkdir(parents=True, exist_ok=True)
    return _LOADERS[name](root=None if root is None else Path(root), seed=seed, download=download, **options)


def _check_options(name: str, options: dict[str, object]) -> None:
    """Raise unless every key of ``options`` is an option of dataset ``name``'s loader."""
    valid = list(dataset_options(name))
    for key in options:
        if key not in valid:
            expected = (f"keyword options among {', '.join(map(repr, valid))}" if valid
                        else f"empty ({name} takes no options)")
            raise invalid("options", f"load_dataset({name!r})", expected, key)


def pixel_stats(name: str, *, seed: int = 0, **options: object) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel ``(mean, std)`` that :func:`load_dataset` normalized dataset ``name`` with.

    ``x_pixels = x * std + mean`` maps the loaded images back to pixels in [0, 1]
    (what :func:`compress.data.jitter.colour_jitter` needs), and ``(x_pixels - mean) / std``
    maps them forward again. The same constants :func:`load_dataset` used, so pass
    the same ``seed`` and options: for ``digits`` and ``colour_digits`` they are
    computed on the training split (recomputed here, no tensors are kept; both
    datasets are small), for the torchvision datasets they are :data:`CHANNEL_STATS`
    (no files needed).

    Parameters
    ----------
    name : str
        One of :func:`list_datasets` except ``fake`` (Gaussian noise, no pixel space).
    seed : int, default 0
        The ``seed`` passed to :func:`load_dataset`.
    **options
        The options passed to :func:`load_dataset`.

    Returns
    -------
    tuple
        ``(mean, std)``, each a tuple of floats with one entry per channel.

    Raises
    ------
    InvalidParameterError
        Unknown ``name`` or option, ``fake``, or an option value out of range.
    """
    owner = "pixel_stats"
    check_choice("name", owner, name, list_datasets())
    _check_seed(seed, owner)
    _check_options(name, options)
    if name in CHANNEL_STATS:
        return CHANNEL_STATS[name]
    opts = {**dataset_options(name), **options}  # n_train / n_test caps do not change the constants
    if name == "digits":
        mean, std = _digits_stats(_split_digits(seed, opts["test_fraction"], f"{owner}('digits')")[0])
        return (mean,), (std,)
    if name == "colour_digits":
        return _colour_digits(seed, opts["test_fraction"], f"{owner}('colour_digits')")[-1]
    raise invalid("name", owner, "a dataset of images in pixel space (not 'fake', which is Gaussian noise)", name)
