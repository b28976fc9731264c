"""SSIM between saliency maps with fixed, recorded parameters (SH paper, Grad-CAM comparisons).

This module owns the one SSIM setting used to compare saliency maps
(:data:`SSIM_SETTINGS`), its adaptation to a map's size (:func:`ssim_settings`,
so that a report can record exactly what was used) and the per-image SSIM
(:func:`ssim_per_image`). It computes with ``skimage.metrics.structural_similarity``
and needs numpy only (no torch): the maps come from :mod:`compress.measure.gradcam`.

Note on scikit-image's semantics: with ``gaussian_weights=True`` the local
statistics always come from an 11-tap Gaussian (σ = 1.5, truncated at 3.5 σ,
``mode='reflect'``), whatever ``win_size`` is; ``win_size`` sets only the
border cropped before averaging (``(win_size - 1) // 2`` pixels per side) and
the smallest map accepted.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import structural_similarity

from analysis._validation import invalid

__all__ = ["SSIM_SETTINGS", "ssim_per_image", "ssim_settings"]

#: The SSIM parameters (Wang et al., 2004), as keyword arguments of ``structural_similarity``.
#: ``win_size`` is 11, or the largest odd size <= the map's smaller side when that is smaller (:func:`ssim_settings`).
SSIM_SETTINGS: dict[str, object] = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 1.0,
    "K1": 0.01,
    "K2": 0.03,
    "win_size": 11,
}

_MIN_SIDE = 3


def ssim_settings(shape: Sequence[int]) -> dict[str, object]:
    """The exact ``structural_similarity`` keyword arguments used for maps of ``shape``.

    Parameters
    ----------
    shape : sequence of int
        (H, W) of one map, or (N, H, W) of a stack; the last two entries count.

    Returns
    -------
    dict
        A copy of :data:`SSIM_SETTINGS` with ``win_size`` = 11, or the largest
        odd size <= min(H, W) when that side is smaller than 11.

    Raises
    ------
    InvalidParameterError
        If the shape is not 2 or 3 non-negative ints, or a map is smaller than 3 × 3.
    """
    if (not isinstance(shape, Sequence) or len(shape) not in (2, 3)
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise invalid("shape", "ssim_settings", "(H, W) or (N, H, W) as ints", shape)
    side = min(int(shape[-2]), int(shape[-1]))
    if side < _MIN_SIDE:
        raise invalid("shape", "ssim_settings", f"maps at least {_MIN_SIDE}x{_MIN_SIDE}", tuple(shape))
    settings = dict(SSIM_SETTINGS)
    default = int(SSIM_SETTINGS["win_size"])
    settings["win_size"] = default if side >= default else (side if side % 2 else side - 1)
    return settings


def _check_maps(param: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise invalid(param, "ssim_per_image", "a real (N, H, W) array", getattr(array, "shape", value))
    array = array.astype(np.float64)
    if array.size and not (np.all(np.isfinite(array)) and array.min() >= 0.0 and array.max() <= 1.0):
        bad = array[~(np.isfinite(array) & (array >= 0.0) & (array <= 1.0))]
        raise invalid(param, "ssim_per_image", "values in [0, 1] (scale the maps first)", float(bad.flat[0]))
    return array


def ssim_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of maps ``a[i]``, ``b[i]`` with :func:`ssim_settings` for their shape.

    Parameters
    ----------
    a, b : np.ndarray
        Maps (N, H, W) of the same shape with values in [0, 1] (e.g. Grad-CAM
        maps after ``compress.measure.gradcam.upsample_and_scale``); computed in float64.

    Returns
    -------
    np.ndarray
        float64 (N,): the mean SSIM of each pair (1 for identical maps).

    Raises
    ------
    InvalidParameterError
        If the shapes differ, a map is smaller than 3 × 3, or a value is outside [0, 1] or not finite.
    """
    a = _check_maps("a", a)
    b = _check_maps("b", b)
    if a.shape != b.shape:
        raise invalid("b", "ssim_per_image", f"of the same shape as a {a.shape}", b.shape)
    settings = ssim_settings(a.shape)
    return np.array([structural_similarity(x, y, **settings) for x, y in zip(a, b)], dtype=np.float64)
