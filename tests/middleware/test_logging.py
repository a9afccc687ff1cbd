"""The session middleware: Logging."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import FakeClock
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.core.signing import Keyring

from .conftest import COOKIE, SpyStore, id_of, token_of

pytestmark = pytest.mark.anyio

# --- logging -----------------------------------------------------------------------------------


async def test_logger_never_sees_tokens_or_ids(
    make_client: Callable[..., httpx.AsyncClient],
    store: SpyStore,
    keyring: Keyring,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.sessions")
    caplog.set_level(logging.DEBUG, logger="test.sessions")
    async with make_client(logger=logger) as client:
        first = await client.get("/counter")
        token = token_of(first)
        session_id = id_of(token, keyring, clock)
        await client.get("/counter")
        regenerated = await client.get("/regenerate")
        new_token = token_of(regenerated)
        await client.get("/invalidate")
        client.cookies.clear()
        tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
        await client.get("/read", headers={"cookie": f"{COOKIE}={tampered}"})
        await client.get("/read", headers={"cookie": f"{COOKIE}={token}"})
        store.fail_load = True
        await client.get("/read", headers={"cookie": f"{COOKIE}={new_token}"})
    text = caplog.text
    assert "session saved" in text
    assert "refused: bad_signature" in text
    assert "store failed on load" in text
    for secret in (token, tampered, new_token, session_id, id_of(new_token, keyring, clock)):
        assert secret not in text
        assert secret[:16] not in text
    assert "secret-host" not in text  # store error messages are not logged either


async def test_a_logger_adapter_works_and_a_duck_typed_logger_is_refused_at_once(
    make_client: Callable[..., httpx.AsyncClient],
    store: SpyStore,
    keyring: Keyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = logging.LoggerAdapter(logging.getLogger("test.adapted"), {"app": "shop"})
    caplog.set_level(logging.DEBUG, logger="test.adapted")
    async with make_client(logger=adapter) as client:
        assert (await client.get("/counter")).status_code == 200
    assert "session saved" in caplog.text

    class PrintLogger:  # has info() and debug(), as authx-extra's page allows
        def info(self, message: str) -> None: ...
        def debug(self, message: str) -> None: ...

    with pytest.raises(TypeError, match=r"logging\.Logger"):  # at start-up, not per request
        session_middleware(FastAPI(), store=store, keys=keyring, logger=PrintLogger())  # type: ignore[arg-type]
