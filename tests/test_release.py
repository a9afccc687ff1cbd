"""Release basics, read from pyproject.toml: true dependency floors (the lowest versions
are run by .ci/run), extras that say what they are for, the licence, URLs, classifiers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from typed_sessions.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CI = (ROOT / ".ci" / "run").read_text()


def _floors(requirements: list[str]) -> dict[str, str]:
    floors: dict[str, str] = {}
    for text in requirements:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                floors[requirement.name] = spec.version
    return floors


def test_dependency_floors_are_the_lowest_versions_the_suite_passes_on() -> None:
    """fastapi < 0.123.7: 422 or import errors; starlette <= 0.37.2: the middleware
    fails; pydantic < 2.10: codec of a forward-referenced model; 4.12.2: pydantic's."""
    assert _floors(PROJECT["dependencies"]) == {
        "fastapi": "0.123.7",
        "starlette": "0.40",
        "pydantic": "2.10",
        "cryptography": "42",
        "typing-extensions": "4.12.2",
    }
    extras: dict[str, list[str]] = PROJECT["optional-dependencies"]
    assert _floors(extras["redis"]) == {"redis": "5.0.2"}
    assert _floors(extras["sql"]) == {"sqlalchemy": "2.1.5"}  # 2.0.x, 2.1.0 to 2.1.4: see pyproject
    assert "--resolution lowest-direct" in CI  # and CI runs the suite on exactly those
    assert "--extra redis --extra sql" in CI  # the extras' floors too
    assert "--resolution highest" in CI


def test_the_demo_extra_needs_no_redis() -> None:
    extras: dict[str, list[str]] = PROJECT["optional-dependencies"]
    assert [Requirement(r).name for r in extras["demo"]] == ["uvicorn"]
    assert extras["demo-redis"] == ["typed-sessions[demo,redis]"]
    assert extras["dev"] == ["typed-sessions[test,build]"]
    assert {"pyright", "mypy"} <= {Requirement(r).name for r in extras["test"]}
    assert {"build", "twine"} == {Requirement(r).name for r in extras["build"]}


def test_demo_with_redis_but_without_redis_py_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> None:
        return None

    monkeypatch.setattr("importlib.util.find_spec", not_installed)
    assert main(["demo", "--redis", "redis://127.0.0.1:6379"]) == 2
    assert "typed-sessions[demo-redis]" in capsys.readouterr().err


def test_licence_urls_and_classifiers() -> None:
    assert PROJECT["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert {"Homepage", "Documentation", "Source", "Changelog"} <= set(PROJECT["urls"])
    classifiers: list[str] = PROJECT["classifiers"]
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    claimed = {
        c.rsplit(" ", 1)[1] for c in classifiers if c.count("::") == 2 and "Python :: 3." in c
    }
    assert claimed == {"3.11", "3.12", "3.13"}  # each run by .ci/run
    match = re.search(r"^for version in ([\d. ]+);", CI, re.M)
    assert match is not None
    assert set(match.group(1).split()) == claimed - {"3.11"}  # 3.11: the other stages
    assert "python -m build" in CI or ".venv/bin/python -m build" in CI
    assert "twine check" in CI
