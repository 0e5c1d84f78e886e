"""The house rules import-linter cannot state: no module reaches into another module's private
names (what two modules share is public where it belongs), and every subpackage says what
lives in it. (The one-way layers and the absence of cycles are import-linter contracts in
pyproject.toml, run by the lint step.)"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p
    for folder in ("bench", "methods", "datasets", "docs")
    for p in (REPO / folder).rglob("*.py")
    if "__pycache__" not in p.parts
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path) -> list[str]:
    """``from bench.x import _y`` and ``<module of bench>._y`` in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    modules: set[str] = set()  # local names bound to bench modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "bench":
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    found = {str(p.relative_to(REPO)): uses for p in SOURCES if (uses := private_uses(p))}
    assert found == {}


def test_the_private_name_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from bench.evaluation.kernels import _T\n"
        "from bench.api import registry\n"
        "registry._METHODS.clear()\n"
    )
    assert private_uses(bad) == [
        "line 1: from bench.evaluation.kernels import _T",
        "line 3: registry._METHODS",
    ]


def test_every_subpackage_says_what_lives_there() -> None:
    for init in sorted((REPO / "bench").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, f"{init.relative_to(REPO)} needs a docstring"
