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


def _needs(path: Path, name: str, names: set[str]) -> set[str]:
    """The modules among ``names`` whose code module ``name`` (at ``path``) needs run:
    ``import m`` needs ``m``; ``from m import x`` needs ``m.x`` when that is a module,
    else ``m`` (the parent packages an import runs on the way are not counted: a module
    half-run by then is no cycle unless the module needs a name from it). Relative
    imports resolved; imports inside functions and ``TYPE_CHECKING`` blocks counted."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in names else module)
    return {other for other in found if other in names and other != name}


def import_cycles(paths: list[Path], root: Path = PACKAGE) -> list[list[str]]:
    """The cycles among ``paths``' imports of each other (see :func:`_needs`), each as the
    modules met on it; ``root``: the package's folder."""
    names = {_module_name(path, root): path for path in paths}
    edges = {name: sorted(_needs(path, name, set(names))) for name, path in names.items()}
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


@pytest.mark.parametrize(
    ("init", "child"),
    [
        ("from typed_sessions.core.x import X\nY = 1\n", "from typed_sessions import Y\n"),
        ("from .core.x import X\nY = 1\n", "from .. import Y\n"),
        ("from typed_sessions.core import x\n", "from . import y\n"),
    ],
    ids=["a name of the parent", "relative", "relative, a sibling"],
)
def test_the_check_sees_a_cycle_through_a_package_or_a_relative_import(
    tmp_path: Path, init: str, child: str
) -> None:
    package = tmp_path / "typed_sessions"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "x.py").write_text(child)
    (package / "core" / "y.py").write_text("from typed_sessions import Y\n")
    paths = sorted(package.rglob("*.py"))
    assert import_cycles(paths, package) != []


def test_importing_from_a_module_of_a_package_is_no_cycle_with_the_package(
    tmp_path: Path,
) -> None:
    package = tmp_path / "typed_sessions"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("from typed_sessions.core.x import X\n")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "x.py").write_text("from typed_sessions.core.z import Z\nX = 1\n")
    (package / "core" / "z.py").write_text("Z = 1\n")
    assert import_cycles(sorted(package.rglob("*.py")), package) == []


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
