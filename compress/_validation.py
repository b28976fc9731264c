"""The one message format for bad input, re-exported from its single home, ``analysis._validation``.

``compress`` and ``analysis`` do not import each other (DESIGN.md), with this one
exception: the error helper both libraries raise lives in ``analysis`` because
``analysis`` imports nothing on import (its ``__init__`` is lazy), while
importing ``compress`` pins the CPU kernel dispatch (``compress/numerics.py``).
One home also means one ``InvalidParameterError`` class, so a caller catching
it catches the errors of both libraries. ``tests/test_layering.py`` keeps this the only
crossing.
"""
from __future__ import annotations

from analysis._validation import InvalidParameterError, check_choice, check_in_range, invalid

__all__ = ["InvalidParameterError", "check_choice", "check_in_range", "invalid"]
