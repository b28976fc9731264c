"""The model registry: :func:`create_model` is the one entry point (timm style), over the table of every
architecture (:data:`MODELS`: the CIFAR-style ones of :mod:`compress.models.cifar`, torchvision's of
:mod:`compress.models.imagenet`).

An architecture is a short function with keyword-only ``num_classes`` and
``in_shape``; its other keyword-only arguments are the overrides
:func:`create_model` accepts, and the first line of its docstring is its
:func:`model_info`. :func:`register_model` adds one of your own.
"""
from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence

from torch import nn

from analysis._validation import InvalidParameterError, check_choice, invalid
from compress.models import cifar, imagenet

__all__ = ["MODELS", "create_model", "list_models", "model_info", "model_structure", "register_model"]

ModelFn = Callable[..., nn.Module]
_REQUIRED = ("num_classes", "in_shape")
# --------------------------------------------------------------------------- registry


def _checked(fn: ModelFn) -> ModelFn:
    """``fn``, if it has the signature and docstring of an architecture function."""
    name = fn.__name__
    params = inspect.signature(fn).parameters
    for required in _REQUIRED:
        if required not in params or params[required].kind is not inspect.Parameter.KEYWORD_ONLY:
            raise InvalidParameterError(
                f"The model function {name!r} must take a keyword-only {required!r} argument."
            )
    if not (fn.__doc__ or "").strip():
        raise InvalidParameterError(f"The model function {name!r} needs a one-line docstring.")
    return fn


#: Every architecture, by name.
MODELS: dict[str, ModelFn] = {fn.__name__: _checked(fn) for fn in (
    cifar.lenet5,
    cifar.resnet18,
    cifar.resnet34,
    cifar.resnet50,
    cifar.vgg11,
    cifar.vgg16,
    cifar.vgg19,
    cifar.vgg11_fc,
    cifar.vgg16_fc,
    cifar.vgg19_fc,
    cifar.mobilenet_v1,
    cifar.mobilenet_v2,
    imagenet.tv_resnet18,
    imagenet.tv_resnet34,
    imagenet.tv_resnet50,
    imagenet.tv_resnet101,
    imagenet.tv_resnet152,
    imagenet.tv_mobilenet_v2,
    imagenet.tv_vgg11_bn,
    imagenet.tv_vgg11,
    imagenet.tv_vgg16,
    imagenet.tv_vgg19,
    imagenet.tv_densenet161,
    imagenet.tv_densenet169,
    imagenet.tv_densenet201,
    imagenet.tv_efficientnet_b0,
    imagenet.tv_efficientnet_b1,
    imagenet.tv_efficientnet_b2,
    imagenet.tv_efficientnet_b3,
    imagenet.tv_efficientnet_b4,
    imagenet.tv_efficientnet_b5,
)}


def register_model(fn: ModelFn) -> ModelFn:
    """Add ``fn`` to :data:`MODELS` under its ``__name__`` (usable as a decorator): an architecture of your own.

    ``fn`` must take keyword-only ``num_classes`` and ``in_shape``; its other
    keyword-only arguments are the overrides :func:`create_model` accepts. The
    first line of its docstring is the model's :func:`model_info`.
    """
    if fn.__name__ in MODELS:
        raise InvalidParameterError(f"A model named {fn.__name__!r} is already registered.")
    MODELS[fn.__name__] = _checked(fn)
    return fn


def list_models() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(MODELS)


def _lookup(name: str, owner: str) -> ModelFn:
    check_choice("name", owner, name, list_models())
    return MODELS[name]


def _allowed_overrides(fn: ModelFn) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _REQUIRED
    ]


def model_info(name: str) -> str:
    """Return a one-line description of the registered model ``name``."""
    fn = _lookup(name, "model_info")
    return (fn.__doc__ or "").strip().splitlines()[0]


def _check_num_classes(num_classes: object) -> int:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise invalid("num_classes", "create_model", "an int >= 1", num_classes)
    return int(num_classes)


def _check_in_shape(in_shape: object) -> tuple[int, int, int]:
    ok = (
        isinstance(in_shape, Sequence)
        and not isinstance(in_shape, str)
        and len(in_shape) == 3
        and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
            for d in in_shape
        )
    )
    if not ok:
        raise invalid(
            "in_shape", "create_model", "a (channels, height, width) tuple of 3 ints >= 1", in_shape
        )
    return tuple(int(d) for d in in_shape)  # type: ignore[return-value]


def create_model(
    name: str, num_classes: int, in_shape: tuple[int, int, int], **overrides: object
) -> nn.Module:
    """Build the registered model ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    num_classes : int
        Number of output logits, >= 1.
    in_shape : tuple of int
        ``(channels, height, width)`` of one input example (a list is accepted).
    **overrides
        Keyword-only options of the model function, e.g. ``width=0.25`` for
        the CIFAR-style models; ``tv_`` models take none.

    Returns
    -------
    torch.nn.Module
        A freshly initialised model (in training mode) mapping
        ``(batch, *in_shape)`` to ``(batch, num_classes)``. Initialisation
        draws only from torch's global RNG, so ``torch.manual_seed`` fixes it.

    Raises
    ------
    InvalidParameterError
        Unknown ``name`` (the message lists the known names), unknown override
        (the message lists the allowed ones), or a bad value.
    """
    fn = _lookup(name, "create_model")
    num_classes = _check_num_classes(num_classes)
    in_shape = _check_in_shape(in_shape)
    allowed = _allowed_overrides(fn)
    for key in overrides:
        if key not in allowed:
            expected = (
                "one of " + ", ".join(repr(k) for k in allowed)
                if allowed
                else f"absent ({name} takes no overrides)"
            )
            raise invalid("override", f"create_model({name!r})", expected, key)
    return fn(num_classes=num_classes, in_shape=in_shape, **overrides)


def model_structure(name: str, num_classes: int, in_shape: tuple[int, int, int], **overrides: object) -> nn.Module:
    """:func:`create_model` on the ``meta`` device: modules, names and parameter shapes, no values.

    For checks before any training (a profile's parameter counts, layer names,
    hint-layer shapes): it skips the initialisation (seconds for a paper-size model
    such as ``tv_vgg11``; the paper profile's checks take 3 s instead of 14 s) and
    leaves torch's RNG as it was. Raises as :func:`create_model`.
    """
    import torch

    with torch.device("meta"):
        return create_model(name, num_classes, in_shape, **overrides)
