"""Model accounting: parameters, non-zeros, bytes."""
from __future__ import annotations

from torch import nn

__all__ = ["count_parameters", "count_nonzero", "model_bytes"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameter entries (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    """Number of parameter entries that are not exactly zero."""
    return sum(int(p.count_nonzero()) for p in model.parameters())


def model_bytes(model: nn.Module, *, bits: int | None = None, sparse: bool = False) -> int:
    """Storage for the parameters.

    Parameters
    ----------
    bits : int, optional
        Bits per stored value (default: each tensor's own element size).
    sparse : bool
        Store only non-zeros, each with a 32-bit index (COO-style upper bound).
    """
    total = 0
    for p in model.parameters():
        value_bits = bits if bits is not None else p.element_size() * 8
        n = int(p.count_nonzero()) if sparse else p.numel()
        total += n * value_bits + (n * 32 if sparse else 0)
    return (total + 7) // 8
