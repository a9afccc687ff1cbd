"""Production hardening as docs/production.md and operations.md describe it: readiness
probes that fail where requests would, options refused at start-up, secrets and session
data kept out of errors and logs. Found by an audit."""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from typed_sessions import (
    Keyring,
    MemoryStore,
    SessionDep,
    secret_from_env,
    session_middleware,
)
from typed_sessions.compat.fastapi_sessions import CookieParameters, SessionCookie

from .redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio
BASE = "https://testserver"
SECRET = "hardening-0123456789abcdef0123456789abcdef"


# --- Readiness: ping() answers OK while the store cannot serve a single request ---------


async def test_sql_ping_fails_when_the_sessions_table_is_missing(tmp_path: Path) -> None:
    """A SqlStore whose table was never made answers every load with a 503: so does
    its readiness probe."""
    from typed_sessions.core.ids import new_session_id
    from typed_sessions.stores.protocol import StoreUnavailableError
    from typed_sessions.stores.sql import SqlStore

    store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'hardening.db'}", dict[str, Any])
    try:
        with pytest.raises(StoreUnavailableError):  # the store is unusable...
            await store.load(new_session_id())
        with pytest.raises(StoreUnavailableError):  # ...so readiness must say so
            await store.ping()
    finally:
        await store.aclose()


async def test_redis_ping_fails_on_a_read_only_server() -> None:
    """Pointed at a read-only replica (a failover gone wrong), every save fails with a
    503: so does the readiness probe."""
    from typed_sessions import Expiry, new_session
    from typed_sessions.stores.protocol import StoreUnavailableError
    from typed_sessions.stores.redis import RedisStore

    server = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(free_port())))
    server.start()
    store = RedisStore.from_url(server.url, dict[str, Any], prefix="hardening:")
    try:
        with pytest.raises(StoreUnavailableError):  # the store cannot save...
            await store.save(new_session({"a": 1}, Expiry(), now=datetime.now(UTC)))
        with pytest.raises(StoreUnavailableError):  # ...so readiness must say so
            await store.ping()
    finally:
        await store.aclose()
        server.stop()


async def test_memory_store_has_the_documented_readiness_probe() -> None:
    """production.md: "A readiness probe calls `await store.ping()`", on every store."""
    store = MemoryStore(dict[str, Any])
    await store.ping()


# --- Purging: a bad option accepted, purging silently never runs ------------------------


async def test_purging_refuses_an_invalid_batch_before_the_app_runs(tmp_path: Path) -> None:
    """`store.purging(batch=0)` entered, and its task died at once unseen: nothing was
    ever purged, and the error surfaced at shutdown."""
    from typed_sessions.stores.sql import SqlStore

    store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'hardening.db'}", dict[str, Any])
    await store.create_table()
    try:
        with pytest.raises(ValueError, match="batch"):
            async with store.purging(batch=0):
                pytest.fail("the app ran with a purge task that died at once")
    finally:
        await store.aclose()


# --- Secrets from the environment: a malformed variable gives a raw traceback -----------


def test_a_non_utf8_secret_variable_gives_a_clear_error() -> None:
    """On POSIX, os.environ holds a non-UTF-8 value as lone surrogates: the variable is
    named, and no UnicodeEncodeError (whose `.object` holds the whole secret) escapes."""
    environ = {"SESSION_SECRET": "\udcff" * 40}  # os.fsdecode(b"\xff" * 40)
    with pytest.raises((RuntimeError, ValueError)) as caught:
        Keyring.from_secrets(secret_from_env("SESSION_SECRET", environ=environ))
    assert not isinstance(caught.value, UnicodeError), repr(caught.value)
    assert "SESSION_SECRET" in str(caught.value)


@pytest.mark.parametrize("secret", [4096, 64, None, 1.5, ["s" * 32]])
def test_a_secret_that_is_not_text_or_bytes_is_refused(secret: object) -> None:
    """``bytes(4096)`` is 4,096 zero bytes: long enough to pass the length warning, and
    the same key for every app making that mistake. Found by an audit through the
    fastapi-sessions shim's ``secret_key``."""
    with pytest.raises(TypeError, match="secret #1 must be str or bytes"):
        Keyring.from_secrets(secret)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret #2 must be str or bytes"):
        Keyring.from_secrets(SECRET, secret)  # type: ignore[arg-type]


def test_the_fastapi_sessions_shim_refuses_a_secret_key_that_is_not_text() -> None:
    with pytest.raises(TypeError, match="must be str or bytes"):
        SessionCookie(
            cookie_name="cookie", identifier="general_verifier",
            secret_key=4096,  # type: ignore[arg-type]
            cookie_params=CookieParameters(),
        )  # fmt: skip


def test_bytes_like_secrets_still_derive_the_same_keys() -> None:
    raw = SECRET.encode()
    forms: list[str | bytes] = [SECRET, raw]
    assert len({Keyring.from_secrets(form).signing_key.prefix for form in forms}) == 1
    from_bytearray = Keyring.from_secrets(bytearray(raw))  # type: ignore[arg-type]
    assert from_bytearray.signing_key.prefix == Keyring.from_secrets(raw).signing_key.prefix


# --- Logging: session data reaches the log -------------------------------------------


async def test_the_409_log_line_carries_no_session_data(caplog: pytest.LogCaptureFixture) -> None:
    """operations.md, "What never reaches a log": "Session data". The INFO line for a
    refused concurrent change counts the keys; it quoted them (here an e-mail address)."""
    private = f"hardening-{uuid.uuid4().hex[:6]}@example.com"
    store = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(SECRET))
    first_read = asyncio.Event()
    second_done = asyncio.Event()

    @app.post("/start")
    async def start(manager: SessionDep) -> dict[str, int]:
        manager.get_session()[private] = 0
        return {}

    @app.post("/slow")
    async def slow(manager: SessionDep) -> dict[str, int]:
        session = manager.get_session()
        value = session[private]
        first_read.set()
        await second_done.wait()
        session[private] = value + 1  # rests on a value the other request changed
        return {}

    @app.post("/fast")
    async def fast(manager: SessionDep) -> dict[str, int]:
        session = manager.get_session()
        session[private] = session[private] + 1
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.post("/start")).status_code == 200

        async def fast_after_read() -> httpx.Response:
            await first_read.wait()
            try:
                return await client.post("/fast")
            finally:
                second_done.set()

        with caplog.at_level(logging.DEBUG, logger="typed_sessions"):
            slow_answer, fast_answer = await asyncio.gather(client.post("/slow"), fast_after_read())
    assert fast_answer.status_code == 200
    assert slow_answer.status_code == 409  # the scenario happened
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("typed_sessions")]
    assert logged, "expected the 409 to be logged"
    assert not [line for line in logged if private in line], logged


# --- A malformed Redis URL option: accepted at start-up, a raw TypeError on every call ---


def test_an_unknown_redis_url_option_is_refused_at_start_up() -> None:
    """A misspelt query option (`socket_timeot=1`) is refused by from_url, as any invalid
    URL, quoting none of it; it was accepted, and then every call raised TypeError."""
    from typed_sessions.stores.redis import RedisStore

    url = "redis://:hunter2@127.0.0.1:6379/0?socket_timeot=1"
    with pytest.raises(ValueError, match="invalid Redis URL") as caught:
        RedisStore.from_url(url, dict[str, Any], prefix="hardening:")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


# --- A synchronous Redis client: refused when the store is made -------------------------


def test_a_synchronous_redis_client_is_refused_before_any_write() -> None:
    """Found by an audit: ``RedisBackend(redis.Redis(...))`` was accepted; its first
    ``create`` wrote the record (blocking the loop), then raised ``TypeError`` on the
    reply: a 500 and an orphaned session. No connection is made here."""
    import redis

    from typed_sessions import RedisStore
    from typed_sessions.compat.fastapi_sessions import RedisBackend

    sync_client = redis.Redis.from_url("redis://127.0.0.1:1/0")  # never connected
    with pytest.raises(TypeError, match=r"needs a redis\.asyncio client"):
        RedisStore(sync_client, dict[str, Any])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"needs a redis\.asyncio client"):
        RedisBackend[uuid.UUID, dict[str, Any]](sync_client)  # type: ignore[arg-type]
    # The synchronous cluster client (no subclass of redis.Redis), made without the
    # cluster it would connect to on construction: the type alone is refused.
    cluster_class: Any = importlib.import_module("redis.cluster").RedisCluster
    with pytest.raises(TypeError, match=r"not the synchronous redis\.cluster\.RedisCluster"):
        RedisStore(object.__new__(cluster_class), dict[str, Any])


def test_a_client_that_is_not_redis_pys_or_not_utf_8_is_refused() -> None:
    """Found by an audit: valkey-py's client was accepted, and failed at the first save on
    a server without the script cached (its ``NoScriptError`` is not redis-py's); one with
    ``encoding="latin-1"`` read records back changed and never matched a subject."""
    from redis.asyncio import Redis

    from typed_sessions import RedisStore

    class LooksLikeRedis:
        async def get(self, name: str) -> bytes | None:
            return None

    with pytest.raises(TypeError, match=r"not tests\.test_production_hardening\.LooksLikeRedis"):
        RedisStore(LooksLikeRedis(), dict[str, Any])  # type: ignore[call-overload]
    for decode in (False, True):
        client = Redis.from_url(
            "redis://127.0.0.1:1/0", encoding="latin-1", decode_responses=decode
        )
        with pytest.raises(ValueError, match="encoding='utf-8', not 'latin-1'"):
            RedisStore(client, dict[str, Any])  # (never connected)
    utf8 = Redis.from_url("redis://127.0.0.1:1/0", encoding="UTF8")
    assert RedisStore(utf8, dict[str, Any]).client is utf8
