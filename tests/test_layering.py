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
    ("compress", "from fixtures.papers.gc import gc_specs", True),
    ("compress", "import pytest", True),
    ("compress", "from .store import Spec", False),
    ("analysis", "from compress._validation import invalid", True),
    ("analysis", "from compress.store.artifacts import Spec", True),
    ("analysis", "from ._validation import invalid", False),
    ("analysis", "from analysis.stats.evidence import jsonable", False),
])
def test_the_layering_check_allows_exactly_the_shared_helpers(package, source, bad):
    assert bool(violations(source, package, f"{package}.module")) is bad


def test_relative_imports_resolve_against_the_module():
    assert imported_modules("from ..stats.evidence import VERDICTS", "analysis", "analysis.report.document") == [
        (1, "analysis.stats.evidence.VERDICTS")]
    assert imported_modules("from . import numerics", "compress", "compress.runtime.__init__") == [
        (1, "compress.runtime.numerics")]


def test_the_validation_helpers_import_without_side_effects():
    """compress imports them first thing; they must not pull in torch or compress (and its dispatch pinning)."""
    code = ("import sys, analysis._validation, analysis._lazy; "
            "print(sorted(m for m in ('torch', 'numpy', 'compress', 'fixtures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the shape of the house

#: compress/'s subpackages, lowest first: each imports only from those before it (and itself).
COMPRESS_LAYERS = ("runtime", "store", "models", "data", "measure", "training", "prune", "quant", "build")
#: analysis/'s: the statistics, then what reads them.
ANALYSIS_LAYERS = ("_files", "_lazy", "_validation", "stats", "measure", "plots", "findings", "report")
LIBRARIES = ("compress", "analysis", "fixtures")
MAX_MODULES_PER_FOLDER = 12
MAX_LINES = 600
#: Modules over MAX_LINES that own one thing (the reason is the test's documentation).
ONE_THING = {
    "compress/store/artifacts.py": "the artifact store: locking, building, loading (its file format is store/files.py)",
    "compress/training/distill.py": "the distiller table and its strategies (Hinton, MW code, SimKD, FitNets, CRD)",
    "compress/measure/cka.py": "linear CKA: Gram matrices, minibatch HSIC, feature extraction for it",
    "compress/data/datasets.py": "the dataset table: loaders, shapes, file checks, the in-memory dataset",
    "compress/prune/structured.py": "structured channel pruning on Torch-Pruning's dependency graph",
    "analysis/stats/rules.py": "the decision rules (one vectorised t machinery, the rules, their combinators)",
}


def module_graph() -> dict[str, set[str]]:
    """Every module of the three libraries → the modules of them it imports (anywhere in the file)."""
    names = {module.removesuffix(".__init__"): path for package in LIBRARIES for path, module in _modules(package)}
    graph = {}
    for name, path in names.items():
        module = name + ".__init__" if path.name == "__init__.py" else name
        edges = set()
        for _, imported in imported_modules(path.read_text(encoding="utf-8"), name.split(".")[0], module):
            # ``from a import b``: the module a.b when there is one, else a.
            target = imported if imported in names else imported.rpartition(".")[0]
            if target in names and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_anywhere_in_the_libraries():
    assert cycles(module_graph()) == []


def test_the_cycle_finder_finds_a_circle_and_only_it():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package, layers", [("compress", COMPRESS_LAYERS), ("analysis", ANALYSIS_LAYERS)])
def test_subpackages_import_only_the_layers_below_them(package, layers):
    def layer(module: str) -> int | None:
        part = module.split(".")[1] if module.count(".") else None
        return layers.index(part) if part in layers else None

    upward = sorted(f"{a} imports {b}" for a, targets in module_graph().items() if a.startswith(package + ".")
                    for b in targets if b.startswith(package + ".") and None not in (layer(a), layer(b))
                    and layer(b) > layer(a))
    assert upward == []
    on_disk = {p.stem if p.is_file() else p.name for p in (ROOT / package).iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert on_disk == set(layers)


def test_no_folder_holds_more_than_a_dozen_modules_and_no_module_owns_two_things():
    folders = {path.parent for package in LIBRARIES for path, _ in _modules(package)}
    crowded = {str(f.relative_to(ROOT)): n for f in folders
               if (n := len([p for p in f.glob("*.py") if p.name != "__init__.py"])) > MAX_MODULES_PER_FOLDER}
    assert crowded == {}
    long = {str(path.relative_to(ROOT)) for package in LIBRARIES for path, _ in _modules(package)
            if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES}
    assert long <= set(ONE_THING), sorted(long - set(ONE_THING))


def test_every_kind_and_section_is_listed_not_registered_by_an_import():
    """A fresh interpreter that imports only the tables finds every kind and every profile section."""
    code = ("from compress.build.kinds import KINDS; from fixtures.profile import SECTIONS, load_profile; "
            "print(len(KINDS), sorted(SECTIONS), sorted(load_profile('paper').sections))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["13", "['gc',", "'mh',", "'mw',", "'sh']", "['gc',", "'mh',", "'mw',", "'sh']"]
    registering = {str(path.relative_to(ROOT)) for package in LIBRARIES for path, _ in _modules(package)
                   if any(line.startswith(("register_kind(", "@register_section", "register_model("))
                          for line in path.read_text(encoding="utf-8").splitlines())}
    assert registering == set()


@pytest.mark.parametrize("package", ["compress", "analysis"])
def test_no_public_name_of_a_package_is_shadowed_by_one_of_its_modules(package):
    """``from compress.quant import quantize`` must give the function even after the module was imported."""
    code = (f"import importlib, pkgutil, {package}\n"
            f"subs = [m.name for m in pkgutil.walk_packages({package}.__path__, '{package}.') if m.ispkg]\n"
            f"bad = [f'{{s}}.{{n}}' for s in ['{package}', *subs] for n in getattr(importlib.import_module(s), '__all__', [])\n"
            f"       if importlib.util.find_spec(f'{{s}}.{{n}}') is not None]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
