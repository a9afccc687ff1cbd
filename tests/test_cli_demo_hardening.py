"""What an operator meets: the command line and the demo answer bad input with a clear
message and an exit code (or a redirect), never a traceback, a 500 or a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from typed_sessions.demo import create_app
from typed_sessions.stores.redis import RedisStore

SECRET = "demo-secret-for-tests-0123456789abcdef"


def _cli(args: list[str], cwd: Path, *, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``python -m typed_sessions ARGS`` (after ``prelude``, e.g. hiding a package)."""
    code = f"import sys\n{prelude}\nfrom typed_sessions.cli import main\nsys.exit(main({args!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_user_error(run: subprocess.CompletedProcess[str], code: int | None = 2) -> None:
    assert "Traceback" not in run.stderr, run.stderr[-600:]
    if code is None:
        assert run.returncode != 0
    else:
        assert run.returncode == code, (run.returncode, run.stderr[-300:])


# --- the demo app -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["a\x01b", "a\tb", "a\u200bb", "\u202eevil", "a\u2028b"])
async def test_demo_login_with_control_character_name_is_not_a_500(name: str) -> None:
    """A name with a control or format character cannot be a subject: refused as a
    name (the redirect to /?error=name), never a 500."""
    app = create_app(secret=SECRET)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.post("/login", content="name=" + quote(name, safe=""))
        assert response.status_code == 303, response.status_code
        assert response.headers["location"] == "/?error=name"


@pytest.mark.anyio
async def test_demo_relogin_with_control_character_name_is_not_a_500() -> None:
    """The same when signed in already (the sign-in rotates the session)."""
    app = create_app(secret=SECRET)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.post("/login", content="name=Ada")).status_code == 303
        response = await client.post("/login", content="name=a%01b")
        assert response.status_code == 303, response.status_code


# --- the command line -------------------------------------------------------------------


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_cli_demo_port_out_of_range_is_a_usage_error(port: str, tmp_path: Path) -> None:
    _assert_user_error(_cli(["demo", "--port", port], tmp_path))


@pytest.mark.parametrize(
    "url", ["notaurl", "http://127.0.0.1:6379/0", "redis://127.0.0.1:notaport/0"]
)
def test_cli_demo_bad_redis_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    _assert_user_error(_cli(["demo", "--port", "8781", "--redis", url], tmp_path))


@pytest.mark.parametrize(
    "url", ["notaurl", "sqlite:///demo.db", "postgresql+asyncpg://u@127.0.0.1:notaport/db"]
)
def test_cli_demo_bad_sql_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    _assert_user_error(_cli(["demo", "--port", "8782", "--sql", url], tmp_path))


def test_cli_demo_unreachable_sql_database_has_no_traceback(tmp_path: Path) -> None:
    """The tables are made at start: a database that is down ends the command with a
    message (no password in it)."""
    url = "postgresql+asyncpg://u:hunter2pw@127.0.0.1:1/db"  # nothing listens on port 1
    run = _cli(["demo", "--port", "8783", "--sql", url], tmp_path)
    _assert_user_error(run, code=1)
    assert "unavailable" in run.stderr
    assert "hunter2pw" not in run.stderr + run.stdout


def test_cli_demo_sql_without_sqlalchemy_says_what_to_install(tmp_path: Path) -> None:
    run = _cli(
        ["demo", "--port", "8784", "--sql", "sqlite+aiosqlite:///demo.db"],
        tmp_path,
        prelude="sys.modules['sqlalchemy'] = None",
    )
    _assert_user_error(run)
    assert "pip install" in run.stderr


def test_cli_demo_without_uvicorn_says_what_to_install(tmp_path: Path) -> None:
    run = _cli(["demo", "--port", "8785"], tmp_path, prelude="sys.modules['uvicorn'] = None")
    _assert_user_error(run)
    assert "pip install" in run.stderr


def test_cli_keygen_huge_bytes_is_refused_cleanly(tmp_path: Path) -> None:
    _assert_user_error(_cli(["keygen", "--bytes", str(10**15)], tmp_path))


# --- secrets in exception messages ------------------------------------------------------


def test_redis_from_url_error_does_not_echo_the_password() -> None:
    """A password with an unescaped '/' is read as a port by redis-py, whose message
    quotes it: the store's error shows no part of the URL."""
    with pytest.raises(ValueError, match="invalid Redis URL") as raised:
        RedisStore.from_url("redis://:hunter2/more@127.0.0.1/0", dict[str, Any])
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in repr(raised.value)


def test_cli_demo_redis_url_error_does_not_print_the_password(tmp_path: Path) -> None:
    run = _cli(["demo", "--port", "8786", "--redis", "redis://:hunter2/more@127.0.0.1/0"], tmp_path)
    assert "hunter2" not in run.stderr + run.stdout
