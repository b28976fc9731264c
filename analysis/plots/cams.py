"""The Grad-CAM overlay figure (SH paper): images beside their saliency maps from several models.

This module owns :func:`plot_cam_overlays`, one grid PNG: a row per image, the
image itself in the first column and one column per named map overlaid on it.
Drawn like every report figure (:mod:`analysis.plots`): a bare
:class:`matplotlib.figure.Figure` on the Agg canvas, never ``pyplot``, saved
through the same helper (same dpi, no timestamp).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from analysis._validation import invalid
from analysis.plots.style import check_path, new_figure, save

__all__ = ["plot_cam_overlays"]

_OWNER = "plot_cam_overlays"
_CELL = 1.6  # inches per grid cell


def _scaled(array: np.ndarray) -> np.ndarray:
    """Min-max scale one image or map to [0, 1]; a constant one becomes zeros."""
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _display_images(images: object) -> np.ndarray:
    """(N, H, W) grayscale or (N, H, W, 3) RGB float images, from (N, H, W) or (N, C, H, W) with C in {1, 3}."""
    array = np.asarray(images, dtype=np.float64) if isinstance(images, np.ndarray) else None
    if array is None or array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[1] not in (1, 3)):
        raise invalid("images", _OWNER, "an (N, H, W) or (N, C, H, W) array with C 1 or 3",
                      getattr(images, "shape", type(images).__name__))
    if array.shape[0] == 0 or not np.all(np.isfinite(array)):
        raise invalid("images", _OWNER, "a non-empty array of finite values", array.shape)
    if array.ndim == 4:
        array = array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)
    return np.stack([_scaled(image) for image in array])


def _check_maps(maps: object, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    if not isinstance(maps, Mapping) or not maps:
        raise invalid("maps", _OWNER, "a non-empty mapping of names to (N, H, W) arrays", maps)
    out = {}
    for name, value in maps.items():
        array = np.asarray(value, dtype=np.float64) if isinstance(value, np.ndarray) else None
        if not isinstance(name, str) or array is None or array.shape != shape or not np.all(np.isfinite(array)):
            raise invalid(f"maps[{name!r}]", _OWNER, f"a finite array of the images' shape {shape}",
                          getattr(value, "shape", type(value).__name__))
        out[name] = array
    return out


def plot_cam_overlays(images: np.ndarray, maps: Mapping[str, np.ndarray], path: str | Path, *, title: str,
                      n: int = 6) -> Path:
    """Write a grid of the first ``n`` images and each named saliency map laid over them.

    Parameters
    ----------
    images : np.ndarray
        (N, C, H, W) with C 1 (grayscale) or 3 (RGB), or (N, H, W) grayscale;
        each image is min-max scaled for display.
    maps : Mapping[str, np.ndarray]
        Column title -> maps (N, H, W) at the images' resolution (e.g. upsampled
        Grad-CAM). Each map is min-max scaled and drawn with the 'jet' colormap
        at alpha 0.5 over its grayscale or RGB image; a constant map shows as 0.
    path : str or Path
        The PNG to write (parent folders are created).
    title : str
        Figure title.
    n : int, default 6
        Number of rows: the first ``min(n, N)`` images.

    Returns
    -------
    Path
        ``path``.
    """
    check_path(path, _OWNER)
    if not isinstance(title, str):
        raise invalid("title", _OWNER, "a str", title)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise invalid("n", _OWNER, "an int >= 1", n)
    shown = _display_images(images)
    columns = _check_maps(maps, tuple(shown.shape[:3]))
    rows = min(n, shown.shape[0])
    figure = new_figure(_CELL * (1 + len(columns)), _CELL * rows + 0.4)
    axes = figure.subplots(rows, 1 + len(columns), squeeze=False)
    gray = shown.ndim == 3
    for r in range(rows):
        image = shown[r]
        axes[r, 0].imshow(image, cmap="gray" if gray else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        for c, values in enumerate(columns.values(), start=1):
            axes[r, c].imshow(image, cmap="gray" if gray else None, vmin=0.0, vmax=1.0, interpolation="nearest")
            axes[r, c].imshow(_scaled(values[r]), cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0, interpolation="bilinear")
    for c, name in enumerate(["image", *columns], start=0):
        axes[0, c].set_title(name, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title)
    return save(figure, path)
