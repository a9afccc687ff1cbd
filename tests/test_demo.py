"""The demo app, in-process: sign in, see the name, count visits, rotate, sign out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from typed_sessions import MemoryStore, RedisStore, SessionStore
from typed_sessions.cli import main
from typed_sessions.demo import create_app
from typed_sessions.demo.app import SESSIONS_PER_USER, User, demo_stores
from typed_sessions.stores.sql import SqlStore

from .redis_server import delete_prefix, require_redis, unique_prefix

pytestmark = pytest.mark.anyio


def client_for(
    users: SessionStore[User], visits: SessionStore[dict[str, Any]]
) -> httpx.AsyncClient:
    app = create_app(secret="demo-secret-for-tests-0123456789abcdef", users=users, visits=visits)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def test_sign_in_rotate_sign_out() -> None:
    users, visits = MemoryStore(User), MemoryStore(dict[str, Any])
    async with client_for(users, visits) as client:
        page = await client.get("/")
        assert "You are not signed in" in page.text
        assert "Visits in this browser (middleware session): 1" in page.text
        assert len(users) == 0

        response = await client.post("/login", content="name=Ada+%3Cb%3E", follow_redirects=True)
        assert "Signed in as <strong>Ada &lt;b&gt;</strong>" in response.text
        assert "(middleware session): 2" in response.text
        assert len(users) == 1
        first = re.search(r'id="sid">(\w+)<', response.text)
        old_cookie = client.cookies["demo_login"]

        response = await client.post("/rotate", follow_redirects=True)
        second = re.search(r'id="sid">(\w+)<', response.text)
        assert first is not None
        assert second is not None
        assert first.group(1) != second.group(1)
        assert "Signed in as <strong>Ada" in response.text
        assert len(users) == 1

        async with client_for(users, visits) as replay:
            replay.cookies.set("demo_login", old_cookie)
            assert (await replay.post("/rotate")).status_code == 401

        response = await client.post("/logout", follow_redirects=True)
        assert "You are not signed in" in response.text
        assert len(users) == 0
        assert "(middleware session): 4" in response.text  # visits survive signing out


async def test_one_name_keeps_a_bounded_number_of_sign_ins() -> None:
    """Anyone may sign in as any name: the demo keeps a name's newest sign-ins only, so
    nobody can make its session list (and the page showing it) as long as the store."""
    app = create_app(secret="demo-secret-for-tests-0123456789abcdef")
    browsers = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
        for _ in range(SESSIONS_PER_USER + 2)
    ]
    for browser in browsers:
        await browser.post("/login", content="name=Ada")
    first, second, *_, last = browsers
    for ended in (first, second):
        assert "You are not signed in" in (await ended.get("/")).text
    assert "Signed in as <strong>Ada</strong>" in (await last.get("/")).text
    page = (await last.get("/sessions")).text
    assert page.count('<tr class="session') == SESSIONS_PER_USER
    # A rotation at the cap moves one session: it signs no other browser out.
    rotated = await last.post("/rotate", headers={"origin": "http://127.0.0.1"})
    assert rotated.status_code == 303
    for kept in browsers[2:]:
        assert "Signed in as <strong>Ada</strong>" in (await kept.get("/")).text
    for browser in browsers:
        await browser.aclose()


async def test_bad_name_is_refused() -> None:
    async with client_for(MemoryStore(User), MemoryStore(dict[str, Any])) as client:
        response = await client.post("/login", content="name=", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/?error=name"
        assert "set-cookie" not in response.headers


async def test_cross_site_forms_are_refused() -> None:
    """CSRF: SameSite=Lax keeps the cookie off a cross-site POST, but signing in or out
    needs no cookie; the demo checks Origin on every POST."""
    users = MemoryStore(User)
    async with client_for(users, MemoryStore(dict[str, Any])) as client:
        own = {"origin": "http://127.0.0.1"}
        assert (await client.post("/login", content="name=Ada", headers=own)).status_code == 303
        cookie = client.cookies["demo_login"]
        for origin in ("http://evil.example", "null", "http://127.0.0.1:9"):
            for path in ("/login", "/rotate", "/logout"):
                response = await client.post(path, content="name=Eve", headers={"origin": origin})
                assert response.status_code == 403, (origin, path)
                assert "set-cookie" not in response.headers
        assert client.cookies["demo_login"] == cookie  # still signed in as Ada
        assert len(users) == 1


async def test_the_same_flow_on_redis() -> None:
    """``demo --redis URL`` builds the app over two RedisStores; the flow is the same."""
    url = require_redis()
    prefix = unique_prefix()
    users = RedisStore.from_url(url, User, prefix=prefix + "users:")
    visits = RedisStore.from_url(url, dict[str, Any], prefix=prefix + "visits:")
    try:
        async with client_for(users, visits) as client:
            response = await client.post("/login", content="name=Ada", follow_redirects=True)
            assert "Signed in as <strong>Ada</strong>" in response.text
            response = await client.post("/logout", follow_redirects=True)
            assert "You are not signed in" in response.text
            assert "(middleware session): 2" in response.text
    finally:
        await users.aclose()
        await visits.aclose()
        raw = Redis.from_url(url)
        await delete_prefix(raw, prefix)
        await raw.aclose()


def test_the_demo_without_a_secret_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No public default: a random secret for this process, with a warning."""
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    with caplog.at_level("WARNING", logger="typed_sessions"):
        create_app()
    assert "SESSION_SECRET is not set" in caplog.text
    caplog.clear()
    monkeypatch.setenv("SESSION_SECRET", "   ")  # blank, as secret_from_env reads it: unset
    with caplog.at_level("WARNING", logger="typed_sessions"):
        create_app()
    assert "SESSION_SECRET is not set" in caplog.text
    caplog.clear()
    monkeypatch.setenv("SESSION_SECRET", "demo-secret-for-tests-0123456789abcdef")
    with caplog.at_level("WARNING", logger="typed_sessions"):
        create_app()
    assert caplog.text == ""


def test_keygen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--count", "2"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 2
    assert all(len(line) == 43 for line in lines)
    assert lines[0] != lines[1]
    assert main(["keygen", "--bytes", "8"]) == 2
    assert main(["keygen", "--count", "0"]) == 2  # an empty secret, silently: refused
    assert capsys.readouterr().out == ""


def test_keygen_help_explains_rotation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["keygen", "--help"])
    assert "Rotating without logging anybody out" in capsys.readouterr().out


async def _signed_in_then_restarted(url: str) -> None:
    """Sign in through one demo app over ``url``; a new app (new stores, new engines,
    same secret) over the same database still knows the visitor."""
    users, visits = await asyncio.to_thread(demo_stores, sql_url=url)
    assert users is not None
    assert visits is not None
    async with client_for(users, visits) as client:
        response = await client.post("/login", content="name=Ada", follow_redirects=True)
        assert "Signed in as <strong>Ada</strong>" in response.text
        assert "(middleware session): 1" in response.text
        cookies = dict(client.cookies)
    for store in (users, visits):
        assert isinstance(store, SqlStore)
        await store.aclose()
    users, visits = await asyncio.to_thread(demo_stores, sql_url=url)  # "restarted"
    assert users is not None
    assert visits is not None
    try:
        async with client_for(users, visits) as client:
            client.cookies.update(cookies)
            page = await client.get("/")
            assert "Signed in as <strong>Ada</strong>" in page.text
            assert "(middleware session): 2" in page.text
    finally:
        for store in (users, visits):
            assert isinstance(store, SqlStore)
            await store.drop_table()
            await store.aclose()


async def test_sessions_in_an_sqlite_file_survive_a_restart(tmp_path: Path) -> None:
    """``demo --sql sqlite+aiosqlite:///file`` keeps its sessions across restarts."""
    await _signed_in_then_restarted(f"sqlite+aiosqlite:///{tmp_path}/demo.db")


def test_demo_takes_one_store_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--redis", "redis://x", "--sql", "sqlite+aiosqlite://"])
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not both"):
        demo_stores(redis_url="redis://x", sql_url="sqlite+aiosqlite://")
