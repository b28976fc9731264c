"""The t-SNE "functional landscape": trained models as points in the plane.

Mason-Williams (*Neural Network Compression: The Functional Perspective*,
Sec. 2.4, after Fort et al., *Deep Ensembles: A Loss Landscape Perspective*)
represents a model's *function* by its softmax outputs on the test set and
reduces them to two dimensions with t-SNE. As in the paper, each model is one
point: its ``(n_test, n_classes)`` softmax matrix is flattened into one vector
of length ``n_test * n_classes`` and t-SNE embeds those vectors (Euclidean
distance). Models close in the plane make similar predictions on the same
examples; the plot is a picture, not a measurement — the claim tests use
numeric distances (``analysis.measure.similarity``) for their verdicts.

Computing only; drawing is :func:`analysis.plots.curves.plot_landscape`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analysis._validation import check_in_range, invalid

__all__ = ["default_perplexity", "functional_landscape"]

_OWNER = "functional_landscape"


def default_perplexity(n_models: int) -> float:
    """Perplexity that is valid for ``n_models`` points.

    scikit-learn requires ``perplexity < n_samples``; its default of 30 is
    meant for thousands of points. With a handful of models each point's
    neighbourhood is a third of the others, capped at 30, at least 1.

    Parameters
    ----------
    n_models : int
        Number of points (models) to embed; at least 2.

    Returns
    -------
    float
        ``min(30, max(1, (n_models - 1) / 3))``, always ``< n_models``.
    """
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)) or n_models < 2:
        raise invalid("n_models", "default_perplexity", "an int >= 2", n_models)
    return float(min(30.0, max(1.0, (n_models - 1) / 3.0)))


def _as_array(value: object, name: str) -> np.ndarray:
    # Tensors (possibly on a GPU) come in without importing torch here.
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(f"outputs[{name!r}]", _OWNER, "a 2-D array of softmax outputs", type(value).__name__) from None
    return array


def functional_landscape(
    outputs: Mapping[str, object],
    *,
    perplexity: float | None = None,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Embed models in 2-D by t-SNE of their flattened softmax outputs.

    Parameters
    ----------
    outputs : mapping of str to array of shape (n_test, n_classes)
        Each model's softmax outputs on the *same* test set, in the same
        example order (arrays or tensors). At least two models.
    perplexity : float, optional
        t-SNE perplexity, in ``(0, n_models)``. Default
        :func:`default_perplexity` of the number of models.
    seed : int, default 0
        ``random_state`` of t-SNE; the same seed gives the same coordinates.

    Returns
    -------
    dict of str to (float, float)
        One ``(x, y)`` point per model, keys in the order of ``outputs``.

    Notes
    -----
    Uses ``sklearn.manifold.TSNE`` with the exact gradient (few points, so
    Barnes-Hut buys nothing and exact is deterministic), PCA initialisation
    and automatic learning rate.
    """
    from sklearn.manifold import TSNE

    if not isinstance(outputs, Mapping):
        raise invalid("outputs", _OWNER, "a mapping of model name to softmax outputs", type(outputs).__name__)
    if len(outputs) < 2:
        raise invalid("outputs", _OWNER, "a mapping with at least 2 models", f"{len(outputs)} model(s)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise invalid("seed", _OWNER, "an int", seed)

    names = list(outputs)
    arrays = [_as_array(outputs[name], name) for name in names]
    shape = arrays[0].shape
    for name, array in zip(names, arrays):
        if array.ndim != 2 or array.size == 0:
            raise invalid(f"outputs[{name!r}]", _OWNER, "a non-empty 2-D array (n_test, n_classes)",
                          f"shape {array.shape}")
        if array.shape != shape:
            raise invalid(f"outputs[{name!r}]", _OWNER, f"of the same shape as the others {shape}",
                          f"shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise invalid(f"outputs[{name!r}]", _OWNER, "finite", "an array with NaN or inf")

    n_models = len(names)
    if perplexity is None:
        perplexity = default_perplexity(n_models)
    else:
        check_in_range("perplexity", _OWNER, perplexity, 0, n_models)

    points = np.stack([array.reshape(-1) for array in arrays])
    tsne = TSNE(
        n_components=2,
        perplexity=float(perplexity),
        init="pca",
        learning_rate="auto",
        method="exact",
        random_state=int(seed),
    )
    embedded = tsne.fit_transform(points)
    return {name: (float(x), float(y)) for name, (x, y) in zip(names, embedded)}
