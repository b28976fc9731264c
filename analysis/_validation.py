"""One message format for bad input, at every boundary (scikit-learn style).

"The 'sparsity' parameter of prune_spec must be a number in [0.0, 1.0). Got 1.5 instead."

The one home of these helpers for both libraries: ``compress`` imports them
from here, the one import allowed from ``compress`` into ``analysis`` (DESIGN.md,
layers). They live on this side because importing ``analysis`` has no side
effects (its ``__init__`` is lazy), while importing ``compress`` pins the CPU
kernel dispatch (compress/runtime/numerics.py); this module imports nothing else.
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["InvalidParameterError", "check_choice", "check_in_range", "invalid"]


class InvalidParameterError(ValueError):
    """A parameter value outside its documented domain."""


def invalid(param: str, owner: str, expected: str, got: object) -> InvalidParameterError:
    """Build the one-format error: ``The 'param' parameter of owner must be expected. Got got instead.``"""
    return InvalidParameterError(
        f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    )


def check_choice(param: str, owner: str, value: object, valid: Iterable[object]) -> None:
    """Raise :class:`InvalidParameterError` unless ``value`` is one of ``valid``."""
    valid = list(valid)
    if value not in valid:
        names = ", ".join(repr(v) for v in valid)
        raise invalid(param, owner, f"one of {names}", value)


def check_in_range(
    param: str,
    owner: str,
    value: float,
    low: float,
    high: float,
    *,
    closed: str = "neither",
) -> None:
    """Raise unless ``low < value < high`` (``closed`` in {'neither','left','right','both'})."""
    # Type first: comparing a str (or None) with a number would raise TypeError, not our error.
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    lo_ok = is_number and (value >= low if closed in ("left", "both") else value > low)
    hi_ok = is_number and (value <= high if closed in ("right", "both") else value < high)
    if not (lo_ok and hi_ok):
        lb = "[" if closed in ("left", "both") else "("
        rb = "]" if closed in ("right", "both") else ")"
        raise invalid(param, owner, f"a number in {lb}{low}, {high}{rb}", value)
