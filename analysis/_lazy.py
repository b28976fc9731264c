"""Lazy package attributes (PEP 562), the one helper both libraries' ``__init__`` use.

Its home is here for the reason ``_validation`` is: importing it has no side
effects (no torch, no numpy), so ``compress`` may import it (DESIGN.md: the
libraries do not import each other; ``tests/test_layering.py`` allows exactly
these two modules) without ``analysis`` ever importing ``compress``.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``package.name`` imports ``package.<exports[name]>`` on first use."""
    names = sorted(exports)

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
