"""No example falls back to a public secret: secret_from_env refuses to start without one,
except in an explicit development mode, where it warns and makes a random one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from typed_sessions import DEVELOPMENT_ENV, secret_from_env

ROOT = Path(__file__).resolve().parent.parent


def test_the_secret_comes_from_the_environment() -> None:
    assert secret_from_env(environ={"SESSION_SECRET": "s" * 43}) == "s" * 43
    assert secret_from_env("APP_SECRET", environ={"APP_SECRET": "t" * 43}) == "t" * 43


def test_without_it_the_app_refuses_to_start() -> None:
    blank = {"SESSION_SECRET": " \n"}  # a template that filled in nothing
    for environ in ({}, {"SESSION_SECRET": ""}, blank, {DEVELOPMENT_ENV: "yes"}):
        with pytest.raises(RuntimeError, match=r"SESSION_SECRET is not set.*keygen"):
            secret_from_env(environ=environ)


def test_development_mode_warns_and_makes_a_random_secret() -> None:
    with pytest.warns(RuntimeWarning, match="random secret for this process only"):
        first = secret_from_env(environ={DEVELOPMENT_ENV: "1"})
    with pytest.warns(RuntimeWarning):
        second = secret_from_env(environ={DEVELOPMENT_ENV: "1"})
    assert len(first) >= 43
    assert first != second  # never a fixed, public one


def test_no_example_or_readme_holds_a_fallback_secret() -> None:
    """The old pattern: ``os.environ.get("SESSION_SECRET", "<a secret in the source>")``."""
    examples = sorted((ROOT / "examples").rglob("*.py"))
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    texts += [path for path in examples if not path.name.startswith("before_")]  # the peers
    for path in texts:
        text = path.read_text()
        assert not re.search(r"environ\.get\(\s*\"\w*SECRET\w*\"\s*,", text), path
        assert "DONOTUSE" not in text, path
        if path.suffix == ".py":  # nor a secret written out, nor a silent random one
            assert not re.search(r"\b(secret_key|secret)\s*=\s*\"|from_secrets\(\s*\"", text), path
            assert "or secrets.token_urlsafe" not in text, path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SESSION_SECRET is not set"),
        ({DEVELOPMENT_ENV: "1"}, "RuntimeWarning: SESSION_SECRET is not set"),
    ],
)
def test_the_readme_app_without_a_secret(env: dict[str, str], expected: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import examples.readme_app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert expected in run.stderr
    assert run.returncode == (0 if env else 1)
