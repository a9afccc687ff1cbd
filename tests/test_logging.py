"""The ``typed_sessions`` logger: used by default, one record per store failure behind a
503 (its error class and a digest of the session ID), and nothing secret ever."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Response

from typed_sessions import (
    Keyring,
    Ok,
    Session,
    SessionDep,
    StoreError,
    make_cookie_dependency,
    session_middleware,
    store_error_handler,
    verify_session_token,
)
from typed_sessions.core.ids import id_digest, new_session_id

from .conftest import SECRET, leaks
from .middleware.conftest import SpyStore

pytestmark = pytest.mark.anyio
BASE = "https://testserver"


def test_the_leak_check_sees_ids_tokens_urls_and_the_secret() -> None:
    session_id = new_session_id()
    for message in [
        f"session {session_id} saved",
        "token " + "A" * 127,
        "cannot reach redis://user:pw@db:6379/0",
        "postgresql+asyncpg://app@db/sessions refused",
        f"secret is {SECRET}",
    ]:
        record = logging.LogRecord("typed_sessions", logging.ERROR, __file__, 1, message, (), None)
        assert leaks(record), message
    digest = logging.LogRecord(
        "typed_sessions", logging.ERROR, __file__, 1, f"x [sid#{id_digest(session_id)}]", (), None
    )
    assert leaks(digest) == []


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "typed_sessions" and r.levelno >= logging.WARNING
    ]


async def test_a_store_outage_behind_the_middlewares_503_is_logged_once(
    caplog: pytest.LogCaptureFixture, clock: Any
) -> None:
    store = SpyStore(clock)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET, clock=clock)

    @app.get("/")
    async def counter(session: SessionDep) -> int:
        data = session.get_session()
        data["n"] = data.get("n", 0) + 1
        return int(data["n"])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        first = await c.get("/")
        token = first.cookies["__Host-session"]
        checked = verify_session_token(token, Keyring.from_secrets(SECRET), now=clock())
        assert isinstance(checked, Ok)
        session_id = checked.value
        store.fail_load = True
        caplog.set_level(logging.INFO, "typed_sessions")
        assert (await c.get("/")).status_code == 503
    (record,) = failures(caplog)
    assert record.levelno == logging.ERROR
    assert "StoreUnavailableError" in record.getMessage()
    assert f"sid#{id_digest(session_id)}" in record.getMessage()


async def test_a_store_outage_behind_the_dependencys_503_is_logged_once(
    caplog: pytest.LogCaptureFixture, clock: Any
) -> None:
    store = SpyStore(clock)
    current = make_cookie_dependency(store, lambda s: True, keys=SECRET, clock=clock)
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)

    @app.post("/login")
    async def login(response: Response) -> str:
        await current.start(response, {"user": "ada"})
        return "ok"

    @app.get("/me")
    async def me(session: Session[dict[str, Any]] = Depends(current)) -> str:  # noqa: B008 - a local dependency, as FastAPI resolves it
        return str(session.data["user"])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.post("/login")
        store.fail_load = True
        caplog.set_level(logging.INFO, "typed_sessions")
        assert (await c.get("/me")).status_code == 503
        (record,) = failures(caplog)
        assert record.levelno == logging.ERROR  # (was WARNING: alerts never heard of it)
        assert "StoreUnavailableError" in record.getMessage()
        caplog.clear()
        store.fail_save = True
        assert (await c.post("/login")).status_code == 503  # store_error_handler
        (record,) = failures(caplog)
        assert record.levelno == logging.ERROR
