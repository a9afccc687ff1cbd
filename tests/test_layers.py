"""The layers hold: core -> stores -> adapters, no import cycle, each module small and each
function short.

A layer imports only from layers below it; the core imports no web framework, and the
stores layer no signing code (a store names a record by ``SessionId``, never a token).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "typed_sessions"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50  # the body, docstring aside

# layer -> what it must never import (prefix match on the imported module's name)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": (
        "typed_sessions.stores",
        "typed_sessions.adapters",
        "typed_sessions.compat",
        "typed_sessions.demo",
        "typed_sessions.cli",
        "fastapi",
        "starlette",
    ),
    "stores": (
        "typed_sessions.adapters",
        "typed_sessions.compat",
        "typed_sessions.demo",
        "typed_sessions.cli",
        "typed_sessions.core.signing",
        "fastapi",
        "starlette",
    ),
    "adapters": ("typed_sessions.compat", "typed_sessions.demo", "typed_sessions.cli"),
    "compat": ("typed_sessions.demo", "typed_sessions.cli"),
}


def modules(layer: str | None = None) -> list[Path]:
    root = PACKAGE if layer is None else PACKAGE / layer
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    """Every module name ``path`` imports, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offences(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported(path)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    )


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_upward(layer: str) -> None:
    bad = {
        str(path.relative_to(PACKAGE)): found
        for path in modules(layer)
        if (found := offences(path, FORBIDDEN[layer]))
    }
    assert bad == {}


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from starlette.requests import Request\n    return Request\n")
    assert offences(sneaky, FORBIDDEN["core"]) == [
        "starlette.requests",
        "starlette.requests.Request",
    ]


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(paths: list[Path], root: Path = PACKAGE) -> list[list[str]]:
    """The cycles among ``paths``' imports of each other (any depth, type-only imports
    too), each as the modules met on it; ``root``: the package's folder."""
    names = {_module_name(path, root): path for path in paths}
    edges = {
        name: sorted(
            other
            for other in {n if n in names else n.rpartition(".")[0] for n in imported(path)}
            if other in names and other != name and not name.startswith(other + ".")
        )
        for name, path in names.items()
    }
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append(trail[trail.index(name) :])
            return
        if name in done:
            return
        for other in edges[name]:
            visit(other, [*trail, name])
        done.add(name)

    for name in sorted(names):
        visit(name, [])
    return cycles


def test_no_modules_import_each_other_in_a_cycle() -> None:
    assert import_cycles(modules()) == []


def test_the_check_sees_an_import_cycle_through_a_type_only_import(tmp_path: Path) -> None:
    package = tmp_path / "typed_sessions"
    package.mkdir()
    (package / "a.py").write_text("from typed_sessions.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typed_sessions import a\n"
    )
    assert import_cycles(sorted(package.glob("*.py")), package) == [
        ["typed_sessions.a", "typed_sessions.b"]
    ]


def _size(path: Path) -> int:
    """Lines of ``path``, typed ``@overload`` signatures aside (they repeat a signature
    for the type checker, and add no code)."""
    text = path.read_text()
    overloads = 0
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            isinstance(d, ast.Name) and d.id == "overload" for d in node.decorator_list
        ):
            overloads += (node.end_lineno or node.lineno) - node.decorator_list[0].lineno + 1
    return len(text.splitlines()) - overloads


def test_modules_are_small() -> None:
    sizes = {str(p.relative_to(PACKAGE)): _size(p) for p in modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    end = max(getattr(n, "end_lineno", n.lineno) or n.lineno for n in body)
    return end - body[0].lineno + 1


def test_functions_are_short() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and (n := _body_lines(node)) > MAX_FUNCTION_LINES
            ):
                long[f"{path.relative_to(PACKAGE)}:{node.name}"] = n
    assert long == {}
