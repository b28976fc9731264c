"""Model accounting: parameters, non-zeros, bytes.

Every model payload of :mod:`compress.build.recipes` carries :func:`account`'s
summary. Counts are over parameters (``model.parameters()``); buffers such
as BatchNorm running statistics are state, not parameters, and are not
counted.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from analysis._validation import invalid

__all__ = ["count_parameters", "count_nonzero", "model_bytes", "account"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameter entries (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    """Number of parameter entries that are not exactly zero."""
    return sum(int(p.count_nonzero()) for p in model.parameters())


def model_bytes(model: nn.Module, *, bits: int | Mapping[str, int] | None = None, sparse: bool = False) -> int:
    """Storage for the parameters, rounded up to whole bytes.

    Parameters
    ----------
    bits : int or mapping of str to int, optional
        Bits per stored value: one width for every parameter, or a width per
        parameter name (:func:`compress.quant.schemes.storage_bits`; names missing
        from it keep their own). Default: each tensor's own element size.
    sparse : bool
        Store only non-zeros, each with a 32-bit index (COO-style upper bound).
    """
    widths, default = (dict(bits), None) if isinstance(bits, Mapping) else ({}, bits)
    for value in (default, *widths.values()):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise invalid("bits", "model_bytes", "a positive integer (or a mapping of names to them)", value)
    total = 0
    for name, p in model.named_parameters():
        value_bits = widths.get(name, default or p.element_size() * 8)
        n = int(p.count_nonzero()) if sparse else p.numel()
        total += n * value_bits + (n * 32 if sparse else 0)
    return (total + 7) // 8


def account(model: nn.Module, *, bits: int | Mapping[str, int] | None = None) -> dict[str, int]:
    """``{"parameters", "nonzero", "bytes"}`` of ``model``: entries, non-zero entries, dense storage.

    ``bits`` as in :func:`model_bytes` (the storage format of a quantized model).
    """
    return {"parameters": count_parameters(model), "nonzero": count_nonzero(model),
            "bytes": model_bytes(model, bits=bits)}
