"""Redis failing: refused, killed, paused, holding garbage. Calls fail closed and in time,
with ``StoreUnavailableError`` (HTTP 503 in the example app), nothing saved is lost, and the
same store serves again once Redis is back.

Each test runs its own ``redis-server`` on a spare loopback port (see ``redis_server.py``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from examples.redis_app import Counter, create_app
from typed_sessions import (
    Expiry,
    Keyring,
    Ok,
    Session,
    StoreUnavailableError,
    new_session,
    replace_data,
    utc_now,
    verify_session_token,
)
from typed_sessions.stores.redis import RedisStore

from .conftest import SECRET
from .redis_server import RedisServer, free_port, redis_server

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
TIMEOUT = 0.5
BOUND = TIMEOUT + 1.5  # generous: the point is "bounded by the timeout", not a speed claim
Data = dict[str, Any]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore[Data]]:
    async with RedisStore[Data].from_url(server.url, Data, timeout=TIMEOUT) as made:
        yield made


async def saved(store: RedisStore[Data], data: Data) -> Session[Data]:
    result = await store.save(new_session(data, EXPIRY, now=utc_now()))
    assert isinstance(result, Ok)
    return result.value


async def fails_in_time(call: Callable[[], Awaitable[object]]) -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await call()
    assert time.monotonic() - start < BOUND


async def all_calls_fail_in_time(store: RedisStore[Data], session: Session[Data]) -> None:
    """Load ``session``; save and delete another one (whether a write sent just before the
    failure still lands is not defined, so none is aimed at what the test checks later)."""
    probe = new_session({"probe": True}, EXPIRY, now=utc_now())
    await fails_in_time(lambda: store.load(session.id))
    await fails_in_time(lambda: store.save(probe))
    await fails_in_time(lambda: store.delete(probe.id))
    await fails_in_time(store.ping)


async def test_closed_port_fails_fast_with_store_unavailable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with RedisStore[Data].from_url(url, Data, timeout=TIMEOUT) as store:
        await all_calls_fail_in_time(store, new_session({}, EXPIRY, now=utc_now()))


async def test_a_given_client_without_timeouts_is_still_bounded() -> None:
    """The store's own timeout bounds calls whatever the client's settings (and retries)."""
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # no socket timeouts
    try:
        store: RedisStore[Data] = RedisStore(client, Data, timeout=TIMEOUT)
        await all_calls_fail_in_time(store, new_session({}, EXPIRY, now=utc_now()))
    finally:
        await client.aclose()


async def test_paused_server_times_out_then_resumes_with_nothing_lost(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    first = await saved(store, {"who": "first"})
    second = await saved(store, {"who": "second"})
    server.pause()
    try:
        await all_calls_fail_in_time(store, first)
    finally:
        server.resume()
    # The same store serves again; what was saved before is intact.
    assert await store.load(first.id) == first
    # Replies that arrive late for timed-out calls never answer a later call.
    assert await store.load(second.id) == second
    assert isinstance(await store.save(replace_data(second, {"n": 1}, now=utc_now())), Ok)


async def test_ending_everything_is_bounded_by_the_timeout_too(server: RedisServer) -> None:
    """``end_all``'s ``SCAN`` pages are round trips like any other: each bounded, with a
    client of the app's own that has no socket timeout (it used to wait for the server)."""
    client = Redis.from_url(server.url)  # no socket timeouts
    try:
        store: RedisStore[Data] = RedisStore(client, Data, timeout=TIMEOUT)
        signed_in: Session[Data] = new_session({}, EXPIRY, now=utc_now(), subject="ada")
        assert isinstance(await store.save(signed_in), Ok)
        server.pause()
        try:
            await fails_in_time(store.end_all)
            await fails_in_time(lambda: store.list_subject("ada"))
        finally:
            server.resume()
        assert await store.end_all() == 1
    finally:
        await client.aclose()


async def test_killed_server_fails_fast_and_service_resumes_after_restart() -> None:
    with redis_server(persistent=True) as server:  # AOF, fsync always: survives SIGKILL
        async with RedisStore[Data].from_url(server.url, Data, timeout=TIMEOUT) as store:
            first = await saved(store, {"who": "first"})
            server.kill()
            await all_calls_fail_in_time(store, first)
            server.start()  # same port, same data directory
            assert await store.load(first.id) == first  # nothing lost, same store object
            assert isinstance(await store.save(replace_data(first, {"n": 1}, now=utc_now())), Ok)


async def test_killed_server_without_persistence_still_recovers(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    first = await saved(store, {"who": "first"})
    server.kill()
    await all_calls_fail_in_time(store, first)
    server.start()
    assert await store.load(first.id) is None  # that server kept nothing: gone, not an error
    assert isinstance(await store.save(new_session({}, EXPIRY, now=utc_now())), Ok)


# -- through HTTP (the example app maps StoreError to 503) -------------------------------


@pytest.fixture
async def app_client(server: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    store: RedisStore[Counter] = RedisStore.from_url(server.url, Counter, timeout=TIMEOUT)
    app = create_app(store, Keyring.from_secrets(SECRET), close_store=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await store.aclose()


async def test_http_503_while_paused_and_the_session_survives(
    server: RedisServer, app_client: httpx.AsyncClient
) -> None:
    token = (await app_client.post("/session")).json()["token"]
    headers = {"X-Session": token}
    assert (await app_client.post("/count", headers=headers)).json()["count"] == 1
    server.pause()
    try:
        for method in ("GET", "POST"):
            reply = await app_client.request(method, "/count", headers=headers)
            assert reply.status_code == 503
            assert reply.headers["retry-after"] == "1"
        assert (await app_client.post("/session")).status_code == 503
        assert (await app_client.get("/healthz")).status_code == 503
    finally:
        server.resume()
    assert (await app_client.get("/count", headers=headers)).json()["count"] >= 1
    assert (await app_client.get("/healthz")).status_code == 200


async def test_http_503_while_killed_and_recovery_after_restart(
    server: RedisServer, app_client: httpx.AsyncClient
) -> None:
    assert (await app_client.post("/session")).status_code == 200
    server.kill()
    assert (await app_client.post("/session")).status_code == 503
    server.start()
    token = (await app_client.post("/session")).json()["token"]
    reply = await app_client.post("/count", headers={"X-Session": token})
    assert (reply.status_code, reply.json()["count"]) == (200, 1)


async def test_http_garbage_record_gives_503_not_500(
    server: RedisServer, app_client: httpx.AsyncClient
) -> None:
    token = (await app_client.post("/session")).json()["token"]
    verified = verify_session_token(token, Keyring.from_secrets(SECRET), now=utc_now())
    assert isinstance(verified, Ok)
    raw = Redis.from_url(server.url)
    try:
        key = RedisStore(raw, Counter).key_for(verified.value)
        assert await raw.exists(key) == 1
        await raw.set(key, b"\x00\xffnot a session", ex=60)
    finally:
        await raw.aclose()
    for method in ("GET", "POST"):
        reply = await app_client.request(method, "/count", headers={"X-Session": token})
        assert reply.status_code == 503
