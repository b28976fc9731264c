"""The libraries' import rules (DESIGN.md, "Layers and who may import whom"), checked on the source."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: (importing package, imported top-level package) -> the only modules allowed across that line.
ALLOWED = {("compress", "analysis"): {"analysis._validation"}}
FORBIDDEN = {"compress": {"analysis", "fixtures", "claims", "pytest"}, "analysis": {"compress", "fixtures", "claims", "pytest"}}


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def crossings(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[package] and module not in ALLOWED.get((package, top), set()):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_the_libraries_do_not_import_each_other_or_the_glue(package):
    assert crossings(package) == []


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    fake = tmp_path / "analysis"
    fake.mkdir()
    (fake / "bad.py").write_text("import os\nfrom compress.store import Spec\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert crossings("analysis") == ["analysis/bad.py:2 imports compress.store"]


def test_both_libraries_raise_one_error_class():
    from analysis._validation import InvalidParameterError as from_analysis
    from compress._validation import InvalidParameterError as from_compress

    assert from_compress is from_analysis
