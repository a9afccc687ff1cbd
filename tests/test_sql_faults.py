"""PostgreSQL failing under load: stopped and started again, the store's own server.

Calls fail with ``StoreUnavailableError`` (HTTP 503 through the middleware, never 500)
while the server is down, every save acknowledged before is still there afterwards, and
the same store serves again without a restart. Each test runs its own PostgreSQL
(``initdb`` + ``pg_ctl``, see ``sql_server.py``) on a spare loopback port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from examples.sql_app import create_app
from typed_sessions import (
    CookieSettings,
    Expiry,
    Keyring,
    Ok,
    Session,
    StoreUnavailableError,
    new_session,
    replace_data,
    utc_now,
)
from typed_sessions.stores.sql import SqlStore

from .conftest import SECRET
from .sql_server import PostgresServer, postgres_server

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
TIMEOUT = 1.0
BOUND = TIMEOUT + 2.0  # generous: the point is "bounded by the timeout", not a speed claim
Data = dict[str, Any]


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    with postgres_server() as started:
        yield started


@pytest.fixture
async def store(server: PostgresServer) -> AsyncIterator[SqlStore[Data]]:
    async with SqlStore.from_url(server.url, Data, timeout=TIMEOUT) as made:
        await made.create_table()
        yield made


async def stop(server: PostgresServer) -> None:
    await asyncio.to_thread(server.stop)


async def start(server: PostgresServer) -> None:
    await asyncio.to_thread(server.start)


class Writer:
    """Bumps one session's counter in a loop; remembers the last save acknowledged."""

    def __init__(self, store: SqlStore[Data], session: Session[Data]) -> None:
        self.store = store
        self.acked = session
        self.failures = 0

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            try:
                current = await self.store.load(self.acked.id)
                assert current is not None  # never "no session" for a live one
                changed = replace_data(current, {"n": current.data["n"] + 1}, now=utc_now())
                result = await self.store.save(changed)
                assert isinstance(result, Ok)  # one writer per session: no conflict
                self.acked = result.value
            except StoreUnavailableError:  # any other error ends the test
                self.failures += 1
                await asyncio.sleep(0.05)


async def until_it_answers(store: SqlStore[Data]) -> None:
    """Wait until the store serves again (a bounded number of tries)."""
    for _ in range(100):
        try:
            await store.ping()
        except StoreUnavailableError:
            await asyncio.sleep(0.1)
        else:
            return
    pytest.fail("the store did not serve again after the server came back")


async def test_stopped_under_load_then_started_loses_nothing_and_resumes(
    server: PostgresServer, store: SqlStore[Data]
) -> None:
    sessions: list[Session[Data]] = []
    for i in range(8):
        result = await store.save(new_session({"n": 0, "i": i}, EXPIRY, now=utc_now()))
        assert isinstance(result, Ok)
        sessions.append(result.value)
    writers = [Writer(store, session) for session in sessions]
    done = asyncio.Event()
    load = [asyncio.create_task(writer.run(done)) for writer in writers]
    await asyncio.sleep(0.3)
    await stop(server)
    # While down: every call fails, in time, with StoreUnavailableError.
    probe = new_session({"n": 0}, EXPIRY, now=utc_now())
    for call in (store.load(sessions[0].id), store.save(probe), store.delete(probe.id)):
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await call
        assert time.monotonic() - began < BOUND
    await start(server)
    await until_it_answers(store)
    await asyncio.sleep(0.3)  # the writers get going again
    done.set()
    await asyncio.gather(*load)
    assert all(writer.failures > 0 for writer in writers)
    for writer in writers:
        stored = await store.load(writer.acked.id)
        assert stored is not None
        # The last acknowledged save is there (a later one whose reply was lost may be).
        assert stored.version >= writer.acked.version
        if stored.version == writer.acked.version:
            assert stored == writer.acked
        assert stored.data["n"] == stored.version - 1


@pytest.fixture
async def app_client(server: PostgresServer) -> AsyncIterator[httpx.AsyncClient]:
    store: SqlStore[Data] = SqlStore.from_url(server.url, Data, timeout=TIMEOUT)
    await store.create_table()
    app = create_app(
        store, Keyring.from_secrets(SECRET), cookie=CookieSettings(secure=False), close_store=False
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await store.aclose()


async def test_http_503_while_stopped_no_500_and_the_session_survives(
    server: PostgresServer, app_client: httpx.AsyncClient
) -> None:
    assert (await app_client.post("/count")).json()["count"] == 1
    assert (await app_client.post("/count")).json()["count"] == 2
    await stop(server)
    for method, path in (("GET", "/session"), ("POST", "/count"), ("GET", "/healthz")):
        reply = await app_client.request(method, path)
        assert reply.status_code == 503, (method, path, reply.text)
    await start(server)
    statuses: list[int] = []
    for _ in range(50):  # resumes by itself: no restart of the app or the store
        reply = await app_client.get("/session")
        statuses.append(reply.status_code)
        if reply.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == 200
    assert set(statuses) <= {200, 503}  # never a 500
    assert reply.json()["data"] == {"count": 2}  # nothing acknowledged was lost
    assert (await app_client.post("/count")).json()["count"] == 3
