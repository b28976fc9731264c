"""The layering of DESIGN.md, read from the source: who may import whom.

``compress`` (torch side) and ``analysis`` (statistics side) are plain
libraries: neither imports pytest or the glue (``fixtures``, ``claims``), and
they do not import each other, with one exception: ``compress`` takes the
helpers both need from ``analysis._validation`` (the one validation message
format) and ``analysis._lazy`` (lazy package attributes). Their home is
``analysis`` because importing ``analysis`` has no side effects while importing
``compress`` pins the CPU kernel dispatch.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Top-level packages each library must not import, and the modules of them it may import after all.
FORBIDDEN = {
    "compress": ({"analysis", "fixtures", "claims", "pytest"}, {"analysis._validation", "analysis._lazy"}),
    "analysis": ({"compress", "fixtures", "claims", "pytest"}, set()),
}


def imported_modules(source: str, package: str, module: str) -> list[tuple[int, str]]:
    """Every module an import statement in ``source`` names (anywhere in the file), as absolute dotted names.

    ``module`` is the dotted name of the file's module; relative imports resolve
    against it. ``from a import b`` counts as ``a.b`` (``b`` may be a submodule).
    """
    out = []
    parts = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(parts[: len(parts) - node.level] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == "__future__":
                continue
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def violations(source: str, package: str, module: str) -> list[str]:
    """``"line N: imports X"`` for each import of ``source`` that ``package``'s layer forbids."""
    forbidden, allowed = FORBIDDEN[package]
    out = []
    for line, name in imported_modules(source, package, module):
        if name.split(".")[0] not in forbidden:
            continue
        if any(name == ok or name.startswith(ok + ".") for ok in allowed):
            continue
        out.append(f"line {line}: imports {name}")
    return out


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1] + ["__init__"]  # relative imports of a package resolve against the package
        yield path, ".".join(parts)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_library_imports_follow_the_layers(package):
    found = {str(path.relative_to(ROOT)): v for path, module in _modules(package)
             if (v := violations(path.read_text(encoding="utf-8"), package, module))}
    assert found == {}


@pytest.mark.parametrize("package, source, bad", [
    ("compress", "from analysis._validation import invalid", False),
    ("compress", "def f():\n    from analysis._validation import check_choice", False),
    ("compress", "from analysis import _validation", False),
    ("compress", "from analysis._lazy import lazy_exports", False),
    ("compress", "from analysis.cka import normalized_grams", True),
    ("compress", "def f():\n    import analysis.cka", True),
    ("compress", "from analysis import cka", True),
    ("compress", "import analysis", True),
    ("compress", "from fixtures.gc import gc_specs", True),
    ("compress", "import pytest", True),
    ("compress", "from .store import Spec", False),
    ("analysis", "from compress._validation import invalid", True),
    ("analysis", "from compress.store import Spec", True),
    ("analysis", "from ._validation import invalid", False),
    ("analysis", "from analysis.evidence import jsonable", False),
])
def test_the_layering_check_allows_exactly_the_shared_helpers(package, source, bad):
    assert bool(violations(source, package, f"{package}.module")) is bad


def test_relative_imports_resolve_against_the_module():
    assert imported_modules("from ..evidence import VERDICTS", "analysis", "analysis.report.document") == [
        (1, "analysis.evidence.VERDICTS")]
    assert imported_modules("from . import numerics", "compress", "compress.__init__") == [(1, "compress.numerics")]


def test_the_validation_helpers_import_without_side_effects():
    """compress imports them first thing; they must not pull in torch or compress (and its dispatch pinning)."""
    code = ("import sys, analysis._validation, analysis._lazy; "
            "print(sorted(m for m in ('torch', 'numpy', 'compress', 'fixtures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
