"""Linear centered kernel alignment (CKA) between layer activations.

Linear CKA (Kornblith et al., 2019) compares two representations of the same
``n`` examples, ``X`` (n, p) and ``Y`` (n, q), through their Gram matrices
``K = X Xᵀ`` and ``L = Y Yᵀ``::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

* biased: ``HSIC(K, L) = tr(K H L H) / (n − 1)²`` with ``H = I − 11ᵀ/n``;
  the value lies in [0, 1].
* debiased: HSIC is the unbiased estimator of Song et al. (2012), written as
  ``<Ũ(K), Ũ(L)> / (n (n − 3))`` with the U-centering ``Ũ`` of Székely &
  Rizzo (2014), as in Nguyen, Raghu & Kornblith (2021). It needs n ≥ 4 and
  lies in [−1, 1] (Cauchy–Schwarz in the U-centered inner product).

All arithmetic is float64. Features are centered column-wise before the Gram
matrix is formed: ``(HX)(HX)ᵀ = HKH`` exactly, and ``Ũ`` is unchanged by it,
but centering first avoids the cancellation that a large feature mean causes
in ``HKH``.

Constant features: a layer whose features do not vary across the examples
(e.g. a dead ReLU layer) has a zero centered Gram matrix, and CKA is 0/0.
We never return NaN for it: the functions raise :class:`InvalidParameterError`
naming the input (or layer) instead. "Zero" means the centered features have
Frobenius norm ≤ 1e-10 × that of the raw features, i.e. variation below
float32 resolution, which is rounding noise, not signal.

Layer choice for ``layer_names="all"``: every ``Conv2d``, ``Linear`` and
``BatchNorm2d`` module, the layers GC names (conv1, bn1, the convs of each
block, the downsample "skips", fc). ReLU modules are left out on purpose:
torchvision's ``BasicBlock`` calls its single ``relu`` twice per forward, so a
hook on it would mix two activations (naming such a module raises).

One module though long: the Gram and centering kernels, the three CKA
estimators (pair, all layer pairs, minibatch) and feature extraction share
their input checks and centering, and the tests check the estimators against
each other.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

from analysis._validation import InvalidParameterError, invalid

__all__ = [
    "normalized_grams",
    "DEFAULT_LAYER_TYPES",
    "MinibatchCKA",
    "center_gram",
    "cka_matrix",
    "extract_features",
    "gram_linear",
    "layerwise_cka",
    "linear_cka",
]

ArrayLike = Union[Tensor, np.ndarray]
DeviceLike = Union[str, torch.device, None]

#: Module types whose outputs ``layer_names="all"`` selects.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)

# Centered features with norm below this fraction of the raw features' norm
# are rounding noise (float32 resolution is ~1e-7): the layer is constant.
_DEGENERATE_RTOL = 1e-10
_MAX_NAMES_LISTED = 30


class _Text(str):
    """A string whose repr is itself, so ``invalid(..., got=_Text(...))`` prints no quotes."""

    def __repr__(self) -> str:
        return str(self)


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------


def _resolve_device(device: DeviceLike) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_bool(param: str, owner: str, value: object) -> None:
    if not isinstance(value, bool):
        raise invalid(param, owner, "a bool", value)


def _check_positive_int(param: str, owner: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(param, owner, "an int >= 1", value)


def _as_tensor(x: object, param: str, owner: str) -> Tensor:
    """A tensor view of ``x`` (numpy arrays converted), rank >= 1, real-valued."""
    if isinstance(x, np.ndarray):
        try:
            x = torch.as_tensor(x)
        except (TypeError, RuntimeError):
            raise invalid(param, owner, "a numeric array", _Text(f"a numpy array of dtype {x.dtype}")) from None
    if not torch.is_tensor(x):
        raise invalid(param, owner, "a torch.Tensor or numpy array", _Text(type(x).__name__))
    if x.is_complex():
        raise invalid(param, owner, "a real-valued array", _Text(f"dtype {x.dtype}"))
    return x


def _as_features(x: object, param: str, owner: str, device: DeviceLike) -> Tensor:
    """``x`` as a float64 (n, features) matrix on ``device``; more dims are flattened."""
    x = _as_tensor(x, param, owner)
    if x.ndim < 2:
        raise invalid(param, owner, "an array of shape (n, features, ...)", _Text(f"shape {tuple(x.shape)}"))
    n = x.shape[0]
    x = x.detach().to(device=device, dtype=torch.float64).reshape(n, -1)
    if x.shape[1] == 0:
        raise invalid(param, owner, "an array with at least one feature", _Text(f"shape {tuple(x.shape)}"))
    if not bool(torch.isfinite(x).all()):
        raise invalid(param, owner, "an array of finite values", _Text("an array containing NaN or inf"))
    return x


def _layer_list(feats: object, param: str, owner: str) -> list[object]:
    """Per-layer arrays from a sequence (or a mapping's values, in order)."""
    if torch.is_tensor(feats) or isinstance(feats, (np.ndarray, str, bytes)):
        raise invalid(param, owner, "a sequence of per-layer arrays", _Text(type(feats).__name__))
    if isinstance(feats, Mapping):
        feats = list(feats.values())
    if not isinstance(feats, Sequence) or len(feats) == 0:
        raise invalid(param, owner, "a non-empty sequence of per-layer arrays", feats)
    return list(feats)


def _n_examples(x: object, param: str, owner: str) -> int:
    x = _as_tensor(x, param, owner)
    if x.ndim < 2:
        raise invalid(param, owner, "arrays of shape (n, features, ...)", _Text(f"shape {tuple(x.shape)}"))
    return int(x.shape[0])


def _check_same_n(layers_by_param: Sequence[tuple[str, list[object]]], owner: str, debiased: bool) -> int:
    """Common number of examples over all layers, with the minimum the estimator needs."""
    first_param, first_layers = layers_by_param[0]
    n = _n_examples(first_layers[0], first_param, owner)
    for param, layers in layers_by_param:
        for i, layer in enumerate(layers):
            m = _n_examples(layer, param, owner)
            if m != n:
                raise invalid(
                    param,
                    owner,
                    f"layers with the same number of examples as {first_param}[0] ({n})",
                    _Text(f"{m} examples in {param}[{i}]"),
                )
    minimum = 4 if debiased else 2
    if n < minimum:
        why = "debiased=True (unbiased HSIC divides by n(n-3))" if debiased else "CKA"
        raise invalid(first_param, owner, f"layers with at least {minimum} examples for {why}", _Text(f"{n} examples"))
    return n


# --------------------------------------------------------------------------
# Gram matrices
# --------------------------------------------------------------------------


def _u_center(gram: Tensor) -> Tensor:
    """U-centering (Székely & Rizzo 2014): zero diagonal, off-diagonal row/column means removed."""
    n = gram.shape[0]
    g = gram.clone()
    g.fill_diagonal_(0.0)
    means = g.sum(dim=0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    g = g - means[:, None] - means[None, :]
    g.fill_diagonal_(0.0)
    return g


def _double_center(gram: Tensor) -> Tensor:
    """``H K H`` in O(n²): subtract row and column means, add back the grand mean."""
    means = gram.mean(dim=0)
    means = means - means.mean() / 2
    return gram - means[:, None] - means[None, :]


def _centered_gram(x: Tensor, unbiased: bool) -> tuple[Tensor, bool]:
    """Centered (``HKH``) or U-centered Gram matrix of float64 features, and whether it is zero.

    A Gram matrix that is zero up to rounding is returned as exact zeros, so a
    constant layer contributes nothing rather than noise.
    """
    n = x.shape[0]
    xc = x - x.mean(dim=0, keepdim=True)
    raw_norm = torch.linalg.vector_norm(x)
    if bool(torch.linalg.vector_norm(xc) <= _DEGENERATE_RTOL * raw_norm):
        return x.new_zeros((n, n)), True
    gram = xc @ xc.T
    if not unbiased:
        return gram, False
    u = _u_center(gram)
    if bool(torch.linalg.vector_norm(u) <= _DEGENERATE_RTOL * torch.linalg.vector_norm(gram)):
        return x.new_zeros((n, n)), True
    return u, False


def _stacked_grams(
    layers: list[object], param: str, owner: str, unbiased: bool, device: torch.device, n: int
) -> tuple[Tensor, list[bool]]:
    """Each layer's centered Gram matrix, computed once, flattened into a row of an (L, n²) matrix."""
    out = torch.empty((len(layers), n * n), dtype=torch.float64, device=device)
    degenerate = []
    for i, layer in enumerate(layers):
        x = _as_features(layer, f"{param}[{i}]", owner, device)
        gram, zero = _centered_gram(x, unbiased)
        out[i] = gram.reshape(-1)
        degenerate.append(zero)
        del x, gram
    return out, degenerate


def _constant_error(param: str, owner: str) -> InvalidParameterError:
    return invalid(
        param,
        owner,
        "an array whose features vary across examples (CKA is 0/0 otherwise)",
        _Text("an array whose features are all constant (its centered Gram matrix is zero)"),
    )


def gram_linear(x: ArrayLike) -> Tensor:
    """Linear-kernel Gram matrix ``X Xᵀ`` in float64.

    Parameters
    ----------
    x : Tensor or ndarray of shape (n, features, ...)
        One row per example; trailing dimensions are flattened.

    Returns
    -------
    Tensor of shape (n, n), float64, on ``x``'s device.
    """
    x = _as_tensor(x, "x", "gram_linear")
    x = _as_features(x, "x", "gram_linear", x.device)
    return x @ x.T


def center_gram(gram: ArrayLike, *, unbiased: bool = False) -> Tensor:
    """Center a symmetric Gram matrix.

    Parameters
    ----------
    gram : Tensor or ndarray of shape (n, n)
        Symmetric Gram matrix.
    unbiased : bool, default False
        False: double centering ``H K H`` with ``H = I − 11ᵀ/n`` (n ≥ 2).
        True: U-centering of Székely & Rizzo (2014) / Nguyen et al. (2021):
        zero diagonal, ``Ũ_ij = K_ij − r_i/(n−2) − c_j/(n−2) + S/((n−1)(n−2))``
        off the diagonal, where ``r``, ``c`` and ``S`` are row, column and total
        sums of the zero-diagonal ``K`` (n ≥ 4). ``<Ũ(K), Ũ(L)>/(n(n−3))`` is
        the unbiased HSIC.

    Returns
    -------
    Tensor of shape (n, n), float64.
    """
    owner = "center_gram"
    _check_bool("unbiased", owner, unbiased)
    g = _as_tensor(gram, "gram", owner)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise invalid("gram", owner, "a square (n, n) matrix", _Text(f"shape {tuple(g.shape)}"))
    g = g.detach().to(torch.float64)
    n = g.shape[0]
    minimum = 4 if unbiased else 2
    if n < minimum:
        raise invalid("gram", owner, f"an (n, n) matrix with n >= {minimum}", _Text(f"n = {n}"))
    if not bool(torch.isfinite(g).all()):
        raise invalid("gram", owner, "a matrix of finite values", _Text("a matrix containing NaN or inf"))
    scale = float(g.abs().max())
    if not torch.allclose(g, g.T, rtol=1e-5, atol=1e-8 * max(scale, 1.0)):
        raise invalid("gram", owner, "a symmetric matrix", _Text("an asymmetric matrix"))
    return _u_center(g) if unbiased else _double_center(g)


# --------------------------------------------------------------------------
# CKA
# --------------------------------------------------------------------------


def linear_cka(x: ArrayLike, y: ArrayLike, *, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same examples.

    Parameters
    ----------
    x : Tensor or ndarray of shape (n, p, ...)
    y : Tensor or ndarray of shape (n, q, ...)
        Row ``i`` of both is example ``i``; trailing dimensions are flattened.
    debiased : bool, default False
        Use the unbiased HSIC estimator (needs n ≥ 4). The result can then be
        slightly negative when the representations are unrelated.

    Returns
    -------
    float
        In [0, 1] (biased) or [−1, 1] (debiased), up to rounding.

    Raises
    ------
    InvalidParameterError
        Different numbers of examples (both are named), too few examples, a
        non-finite value, or an input whose features are all constant.
    """
    owner = "linear_cka"
    _check_bool("debiased", owner, debiased)
    xt = _as_tensor(x, "x", owner)
    _check_same_n([("x", [xt]), ("y", [y])], owner, debiased)
    device = xt.device
    kx, zero_x = _centered_gram(_as_features(xt, "x", owner, device), debiased)
    if zero_x:
        raise _constant_error("x", owner)
    ky, zero_y = _centered_gram(_as_features(y, "y", owner, device), debiased)
    if zero_y:
        raise _constant_error("y", owner)
    # (n-1)² or n(n-3) normalisations of HSIC cancel in the ratio.
    hsic_xy = torch.sum(kx * ky)
    return float(hsic_xy / (torch.linalg.vector_norm(kx) * torch.linalg.vector_norm(ky)))


def cka_matrix(
    feats_a: Sequence[ArrayLike],
    feats_b: Sequence[ArrayLike],
    *,
    debiased: bool = False,
    device: DeviceLike = None,
) -> Tensor:
    """Linear CKA for every pair of layers of two models, in one batched computation.

    Each layer's centered Gram matrix is computed once, flattened, and stacked
    into ``A`` (La, n²) and ``B`` (Lb, n²); one matrix product ``A Bᵀ`` gives
    every HSIC value and the row norms (the diagonal of ``A Aᵀ``, ``B Bᵀ``)
    the normalizers. A per-pair loop instead rebuilds two Gram matrices for
    each of the La·Lb pairs.

    Parameters
    ----------
    feats_a, feats_b : sequence (or mapping, values in order) of arrays (n, features, ...)
        Per-layer activations of the same n examples.
    debiased : bool, default False
        Use the unbiased HSIC estimator (n ≥ 4).
    device : str or torch.device, optional
        Where to compute; default CUDA when available, else CPU.

    Returns
    -------
    Tensor of shape (len(feats_a), len(feats_b)), float64, on the CPU.

    Notes
    -----
    Memory: (La + Lb) × n² float64 values on ``device`` (La × n² when
    ``feats_b is feats_a``), e.g. 2 × 41 layers at n = 2000 is 2.6 GB. For
    larger n use :class:`MinibatchCKA`.
    """
    owner = "cka_matrix"
    _check_bool("debiased", owner, debiased)
    same = feats_b is feats_a
    layers_a = _layer_list(feats_a, "feats_a", owner)
    layers_b = layers_a if same else _layer_list(feats_b, "feats_b", owner)
    n = _check_same_n([("feats_a", layers_a), ("feats_b", layers_b)], owner, debiased)
    dev = _resolve_device(device)
    grams_a, zero_a = _stacked_grams(layers_a, "feats_a", owner, debiased, dev, n)
    if same:
        grams_b, zero_b = grams_a, zero_a
    else:
        grams_b, zero_b = _stacked_grams(layers_b, "feats_b", owner, debiased, dev, n)
    for param, zeros in (("feats_a", zero_a), ("feats_b", zero_b)):
        if any(zeros):
            raise _constant_error(f"{param}[{zeros.index(True)}]", owner)
    hsic = grams_a @ grams_b.T
    norm_a = torch.linalg.vector_norm(grams_a, dim=1)
    norm_b = norm_a if same else torch.linalg.vector_norm(grams_b, dim=1)
    return (hsic / (norm_a[:, None] * norm_b[None, :])).cpu()


class MinibatchCKA:
    """Minibatch linear CKA (Nguyen, Raghu & Kornblith, 2021).

    For minibatches ``i = 1..k`` of the same examples seen by both models::

        CKA = mean_i HSIC₁(K_i, L_i) / sqrt(mean_i HSIC₁(K_i, K_i) · mean_i HSIC₁(L_i, L_i))

    with HSIC₁ the unbiased estimator, so the value does not depend on the
    batch size in expectation (the biased one would). Every batch counts
    equally (an unweighted mean, as in the paper); use equal batch sizes.

    Parameters
    ----------
    n_layers_a, n_layers_b : int
        Number of layers passed to every :meth:`update`.
    device : str or torch.device, optional
        Where to compute and accumulate (float64); default CUDA when available.
    """

    def __init__(self, n_layers_a: int, n_layers_b: int, *, device: DeviceLike = None) -> None:
        owner = "MinibatchCKA"
        _check_positive_int("n_layers_a", owner, n_layers_a)
        _check_positive_int("n_layers_b", owner, n_layers_b)
        self.n_layers_a = n_layers_a
        self.n_layers_b = n_layers_b
        self.device = _resolve_device(device)
        self.n_batches = 0
        self._hsic_ab = torch.zeros((n_layers_a, n_layers_b), dtype=torch.float64, device=self.device)
        self._hsic_aa = torch.zeros(n_layers_a, dtype=torch.float64, device=self.device)
        self._hsic_bb = torch.zeros(n_layers_b, dtype=torch.float64, device=self.device)

    def update(self, feats_a: Sequence[ArrayLike], feats_b: Sequence[ArrayLike]) -> None:
        """Accumulate unbiased HSIC for every (a, b) layer pair and every layer with itself.

        Parameters
        ----------
        feats_a : sequence of ``n_layers_a`` arrays (n, features, ...)
        feats_b : sequence of ``n_layers_b`` arrays (n, features, ...)
            This batch's activations; n ≥ 4 (the unbiased HSIC divides by n(n−3)).
        """
        owner = "MinibatchCKA.update"
        layers_a = _layer_list(feats_a, "feats_a", owner)
        layers_b = _layer_list(feats_b, "feats_b", owner)
        for param, layers, expected in (
            ("feats_a", layers_a, self.n_layers_a),
            ("feats_b", layers_b, self.n_layers_b),
        ):
            if len(layers) != expected:
                raise invalid(param, owner, f"a sequence of {expected} layers", _Text(f"{len(layers)} layers"))
        n = _check_same_n([("feats_a", layers_a), ("feats_b", layers_b)], owner, debiased=True)
        grams_a, _ = _stacked_grams(layers_a, "feats_a", owner, True, self.device, n)
        grams_b, _ = _stacked_grams(layers_b, "feats_b", owner, True, self.device, n)
        scale = 1.0 / (n * (n - 3))
        self._hsic_ab += (grams_a @ grams_b.T) * scale
        self._hsic_aa += torch.sum(grams_a * grams_a, dim=1) * scale
        self._hsic_bb += torch.sum(grams_b * grams_b, dim=1) * scale
        self.n_batches += 1

    def compute(self) -> Tensor:
        """CKA of every layer pair from the batches seen so far.

        Returns
        -------
        Tensor of shape (n_layers_a, n_layers_b), float64, on the CPU.

        Raises
        ------
        RuntimeError
            Before the first :meth:`update`.
        InvalidParameterError
            A layer whose features were constant in every batch.
        """
        if self.n_batches == 0:
            raise RuntimeError("MinibatchCKA.compute needs at least one update() call first.")
        for param, self_terms in (("feats_a", self._hsic_aa), ("feats_b", self._hsic_bb)):
            zero = (self_terms <= 0).nonzero()
            if zero.numel():
                raise _constant_error(f"{param}[{int(zero[0, 0])}]", "MinibatchCKA.update")
        # Means over batches: the 1/k factors cancel in the ratio.
        denom = torch.sqrt(self._hsic_aa[:, None] * self._hsic_bb[None, :])
        return (self._hsic_ab / denom).cpu()


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------


def _module_device(model: nn.Module) -> torch.device:
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def _module_float_dtype(model: nn.Module) -> torch.dtype | None:
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def _resolve_layer_names(model: nn.Module, layer_names: object, owner: str) -> list[str]:
    modules = {name: m for name, m in model.named_modules() if name}
    if isinstance(layer_names, str):
        if layer_names != "all":
            raise invalid("layer_names", owner, "'all' or a sequence of module names", layer_names)
        names = [name for name, m in modules.items() if isinstance(m, DEFAULT_LAYER_TYPES)]
        if not names:
            raise invalid("layer_names", owner, "'all' only for a model with Conv2d/Linear/BatchNorm2d modules", "all")
        return names
    if not isinstance(layer_names, Sequence) or len(layer_names) == 0:
        raise invalid("layer_names", owner, "'all' or a non-empty sequence of module names", layer_names)
    names = list(layer_names)
    for name in names:
        if not isinstance(name, str) or name not in modules:
            valid = list(modules)
            listed = ", ".join(repr(v) for v in valid[:_MAX_NAMES_LISTED])
            more = f" and {len(valid) - _MAX_NAMES_LISTED} more" if len(valid) > _MAX_NAMES_LISTED else ""
            raise invalid("layer_names", owner, f"names of modules of the model (valid: {listed}{more})", name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise invalid("layer_names", owner, "a sequence without repeated names", _Text(f"repeats of {duplicates}"))
    return names


@contextlib.contextmanager
def _evaluating(model: nn.Module, device: DeviceLike) -> Iterator[torch.device]:
    """Model in eval mode (and on ``device`` if given) for the block; mode and device restored after."""
    was_training = model.training
    original = _module_device(model)
    target = original if device is None else torch.device(device)
    try:
        if target != original:
            model.to(target)
        model.eval()
        yield target
    finally:
        model.train(was_training)
        if target != original:
            model.to(original)


def _forward_features(model: nn.Module, batch: Tensor, names: list[str], owner: str) -> dict[str, Tensor]:
    """One forward pass; each named module's output flattened to (batch, features).

    Hooks are registered for this call only and always removed.
    """
    modules = dict(model.named_modules())
    captured: dict[str, Tensor] = {}
    n = batch.shape[0]

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            if name in captured:
                raise invalid(
                    "layer_names", owner, "modules called once per forward pass", _Text(f"{name!r}, called again")
                )
            if not torch.is_tensor(output) or output.ndim == 0 or output.shape[0] != n:
                raise invalid(
                    "layer_names", owner, "modules whose output is a tensor of shape (batch, ...)",
                    _Text(f"{name!r}, which returned {type(output).__name__}"),
                )
            # clone: a following in-place op (ReLU(inplace=True), `out += identity`)
            # would otherwise overwrite the recorded activation.
            captured[name] = output.detach().reshape(n, -1).clone()

        return hook

    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in names if name not in captured]
    if missing:
        raise invalid("layer_names", owner, "modules that run in the forward pass", _Text(f"{missing} (never called)"))
    return {name: captured[name] for name in names}


def _prepare_inputs(inputs: object, model: nn.Module, owner: str) -> Tensor:
    x = _as_tensor(inputs, "inputs", owner)
    if x.ndim < 1 or x.shape[0] == 0:
        raise invalid("inputs", owner, "a batch of at least one example", _Text(f"shape {tuple(x.shape)}"))
    dtype = _module_float_dtype(model)
    if x.is_floating_point() and dtype is not None:
        x = x.to(dtype)  # numpy gives float64; the model's weights decide
    return x


def extract_features(
    model: nn.Module,
    inputs: ArrayLike,
    layer_names: Sequence[str] | str,
    *,
    batch_size: int = 256,
    device: DeviceLike = None,
) -> dict[str, Tensor]:
    """Activations of named modules, one row per input example.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode under ``torch.no_grad``; its training mode (and
        device, if moved) is restored afterwards. Forward hooks are removed
        even when the forward pass raises.
    inputs : Tensor or ndarray of shape (n, ...)
        Floating inputs are cast to the model's parameter dtype.
    layer_names : sequence of str, or "all"
        Names from ``model.named_modules()``; "all" = every Conv2d, Linear and
        BatchNorm2d module, in definition order (see the module docstring for
        why not ReLUs). Each module must be called exactly once per forward.
    batch_size : int, default 256
    device : str or torch.device, optional
        Where to run the model; default: where its parameters are.

    Returns
    -------
    dict mapping each layer name (in the order given) to a CPU tensor of shape
    (n, features) in the activation dtype.

    Notes
    -----
    Memory: n × Σ features activations on the CPU, e.g. ResNet-18 on CIFAR
    (41 conv/bn/linear layers, 1.23 M features) at n = 2000 is 9.8 GB in
    float32. Pass fewer layers, or use ``layerwise_cka(..., batch_size=...)``,
    which never holds more than one batch.
    """
    owner = "extract_features"
    if not isinstance(model, nn.Module):
        raise invalid("model", owner, "a torch.nn.Module", _Text(type(model).__name__))
    _check_positive_int("batch_size", owner, batch_size)
    x = _prepare_inputs(inputs, model, owner)
    names = _resolve_layer_names(model, layer_names, owner)
    n = x.shape[0]
    out: dict[str, Tensor] = {}
    with _evaluating(model, device) as dev:
        for start in range(0, n, batch_size):
            feats = _forward_features(model, x[start : start + batch_size].to(dev), names, owner)
            for name, f in feats.items():
                if name not in out:  # preallocate: concatenating would double peak memory
                    out[name] = torch.empty((n, f.shape[1]), dtype=f.dtype)
                out[name][start : start + f.shape[0]] = f.cpu()
    return out


def layerwise_cka(
    model_a: nn.Module,
    model_b: nn.Module,
    inputs: ArrayLike,
    layer_names: Sequence[str] | str,
    *,
    debiased: bool = False,
    batch_size: int | None = None,
    device: DeviceLike = None,
) -> Tensor:
    """Linear CKA between every layer of ``model_a`` and every layer of ``model_b``.

    Parameters
    ----------
    model_a, model_b : nn.Module
    inputs : Tensor or ndarray of shape (n, ...)
        The same fixed inputs for both models.
    layer_names : sequence of str, or "all"
        Resolved in each model (see :func:`extract_features`); the models must
        both have every named module.
    debiased : bool, default False
        Unbiased HSIC. Must be True when ``batch_size`` is given.
    batch_size : int, optional
        None: full-batch CKA over all n inputs (:func:`cka_matrix`; memory
        n × Σ features for the activations plus (La + Lb) × n² for the Gram
        matrices). Given: minibatch CKA (:class:`MinibatchCKA`) over
        consecutive batches of this size (≥ 4, in the order given; a last
        batch of fewer than 4 examples is dropped); memory of one batch.
    device : str or torch.device, optional
        Where the models run and CKA is computed; default CUDA when available.
        Models are moved there for the call and moved back after.

    Returns
    -------
    Tensor of shape (La, Lb), float64, on the CPU.
    """
    owner = "layerwise_cka"
    _check_bool("debiased", owner, debiased)
    for param, model in (("model_a", model_a), ("model_b", model_b)):
        if not isinstance(model, nn.Module):
            raise invalid(param, owner, "a torch.nn.Module", _Text(type(model).__name__))
    dev = _resolve_device(device)
    if batch_size is None:
        feats_a = extract_features(model_a, inputs, layer_names, device=dev)
        feats_b = extract_features(model_b, inputs, layer_names, device=dev)
        return cka_matrix(list(feats_a.values()), list(feats_b.values()), debiased=debiased, device=dev)

    _check_positive_int("batch_size", owner, batch_size)
    if batch_size < 4:
        raise invalid("batch_size", owner, "an int >= 4 (unbiased HSIC needs n >= 4)", batch_size)
    if not debiased:
        raise invalid(
            "debiased", owner, "True when batch_size is given (minibatch CKA averages unbiased HSIC)", debiased
        )
    names_a = _resolve_layer_names(model_a, layer_names, owner)
    names_b = _resolve_layer_names(model_b, layer_names, owner)
    x_a = _prepare_inputs(inputs, model_a, owner)
    x_b = _prepare_inputs(inputs, model_b, owner)
    n = x_a.shape[0]
    if n < 4:
        raise invalid("inputs", owner, "at least 4 examples for minibatch CKA", _Text(f"{n} examples"))
    accumulator = MinibatchCKA(len(names_a), len(names_b), device=dev)
    with _evaluating(model_a, dev), _evaluating(model_b, dev):
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if stop - start < 4:
                break
            feats_a = _forward_features(model_a, x_a[start:stop].to(dev), names_a, owner)
            feats_b = _forward_features(model_b, x_b[start:stop].to(dev), names_b, owner)
            accumulator.update(list(feats_a.values()), list(feats_b.values()))
    return accumulator.compute()


def normalized_grams(feats: Sequence[ArrayLike], *, debiased: bool = False, device: DeviceLike = None) -> Tensor:
    """Every layer's centered Gram matrix, flattened and scaled to unit norm: an (L, n²) matrix.

    Linear CKA between layer *i* of one model and layer *j* of another is the
    dot product of their rows, so a model's Gram matrices are computed once and
    serve every comparison it takes part in (``ga @ gb.T`` for all layer pairs,
    ``(ga * gb).sum(1)`` for corresponding layers). :func:`cka_matrix` is the
    two-model special case.
    """
    owner = "normalized_grams"
    _check_bool("debiased", owner, debiased)
    layers = _layer_list(feats, "feats", owner)
    n = _check_same_n([("feats", layers)], owner, debiased)
    grams, zeros = _stacked_grams(layers, "feats", owner, debiased, _resolve_device(device), n)
    if any(zeros):
        raise _constant_error(f"feats[{zeros.index(True)}]", owner)
    return grams / torch.linalg.vector_norm(grams, dim=1, keepdim=True)
