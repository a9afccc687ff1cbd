"""Round trips to Redis, counted twice: on the wire by the client, and by the server.

Issue 13's promise: a read-only request costs exactly ONE round trip, a read-and-write
request exactly TWO, through the store alone and through ``session_middleware``.

Each check counts two ways, so that neither can be fooled alone:

- the client's connection records every write to its socket (one write is one round
  trip: a command, a script call or a whole pipeline) and the commands each holds,
  parsed from the bytes sent;
- the server (a throwaway ``redis-server``, and a ``valkey-server``, of this module's
  own, so no other test's traffic mixes in) tells from ``INFO commandstats`` every
  command it ran, those its scripts ran included (``GETRANGE``, ``SET`` in the save
  script).

An extra command, an extra pipeline or an extra script call changes both counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from redis.asyncio import Connection, ConnectionPool, Redis

from typed_sessions import Expiry, Ok, new_session, replace_data, utc_now
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.stores.redis import RedisStore

from .conftest import SECRET
from .redis_server import RedisServer, redis_server

pytestmark = pytest.mark.anyio
BASE = "https://testserver"  # the default cookie is Secure
Data = dict[str, Any]
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def commands_in(packed: bytes) -> list[str]:
    """The command names in ``packed``: RESP arrays of bulk strings, one per command."""
    names: list[str] = []
    at = 0
    while at < len(packed):
        assert packed[at : at + 1] == b"*", packed[at : at + 20]
        end = packed.index(b"\r\n", at)
        count = int(packed[at + 1 : end])
        at = end + 2
        for i in range(count):
            assert packed[at : at + 1] == b"$", packed[at : at + 20]
            end = packed.index(b"\r\n", at)
            size = int(packed[at + 1 : end])
            if i == 0:
                names.append(packed[end + 2 : end + 2 + size].decode().upper())
            at = end + 2 + size + 2
    return names


class Wire:
    """What one client sent: one list of command names per write (per round trip)."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []

    def clear(self) -> None:
        self.writes.clear()

    def connection_class(self) -> type[Connection]:
        writes = self.writes

        class CountingConnection(Connection):
            async def send_packed_command(self, command: Any, *args: Any, **kwargs: Any) -> None:
                chunks: Sequence[bytes] = [command] if isinstance(command, bytes) else command
                writes.append(commands_in(b"".join(chunks)))
                await super().send_packed_command(command, *args, **kwargs)

        return CountingConnection


async def server_counts(client: Redis) -> Counter[str]:
    """How many times the server ran each command (``INFO commandstats``), but INFO."""
    stats = await client.info("commandstats")
    counts: Counter[str] = Counter()
    for name, fields in stats.items():
        command = name.removeprefix("cmdstat_").upper()
        if command != "INFO":
            counts[command] = int(fields["calls"])
    return counts


class Counted:
    """A store on the module's own server, and both counts of what it sends."""

    def __init__(self, store: RedisStore[Data], wire: Wire, probe: Redis) -> None:
        self.store = store
        self.wire = wire
        self.probe = probe
        self.before: Counter[str] = Counter()

    async def start(self) -> None:
        """Count from now on."""
        self.wire.clear()
        self.before = await server_counts(self.probe)

    async def ran(self) -> Counter[str]:
        """The commands the server ran since :meth:`start`."""
        return await server_counts(self.probe) - self.before


@pytest.fixture(scope="module", params=["redis", "valkey"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    with redis_server(valkey=request.param == "valkey") as started:
        yield started


@pytest.fixture
async def counted(server: RedisServer) -> AsyncIterator[Counted]:
    wire = Wire()
    pool = ConnectionPool.from_url(server.url, connection_class=wire.connection_class())
    client = Redis(connection_pool=pool)
    probe = Redis.from_url(server.url)
    store: RedisStore[Data] = RedisStore(client, Data, prefix="s:")
    # Connect, and have the server cache the save script (a fresh server answers the first
    # EVALSHA with NOSCRIPT): neither belongs to any call counted below.
    assert isinstance(await store.save(new_session({}, EXPIRY, now=utc_now())), Ok)
    try:
        yield Counted(store, wire, probe)
    finally:
        await client.aclose(close_connection_pool=True)
        await probe.aclose()


# A save of a record that exists: the script reads its header and writes it.
SAVE_EXISTING = Counter({"EVALSHA": 1, "GETRANGE": 1, "SET": 1})


async def test_the_store_alone_reads_in_one_round_trip_and_writes_in_one(
    counted: Counted,
) -> None:
    store = counted.store
    saved = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
    assert isinstance(saved, Ok)
    session_id = saved.value.id

    await counted.start()
    loaded = await store.load(session_id)
    assert loaded is not None
    assert counted.wire.writes == [["GET"]]
    assert await counted.ran() == Counter({"GET": 1})

    await counted.start()
    assert isinstance(await store.save(replace_data(loaded, {"n": 1}, now=utc_now())), Ok)
    assert counted.wire.writes == [["EVALSHA"]]
    assert await counted.ran() == SAVE_EXISTING

    await counted.start()  # a stale save: refused, in the same one round trip
    assert not isinstance(await store.save(replace_data(loaded, {"n": 2}, now=utc_now())), Ok)
    assert counted.wire.writes == [["EVALSHA"]]
    assert await counted.ran() == Counter({"EVALSHA": 1, "GETRANGE": 1})


async def test_a_load_and_save_with_a_subject_is_still_two_round_trips(
    counted: Counted,
) -> None:
    store = counted.store
    first = new_session({"n": 0}, EXPIRY, now=utc_now(), subject="ada")
    saved = await store.save(first)  # EVALs the indexed save script once on this server
    assert isinstance(saved, Ok)

    await counted.start()
    loaded = await store.load(saved.value.id)
    assert loaded is not None
    assert isinstance(await store.save(replace_data(loaded, {"n": 1}, now=utc_now())), Ok)
    assert counted.wire.writes == [["GET"], ["EVALSHA"]]
    ran = await counted.ran()
    assert (ran["GET"], ran["EVALSHA"], ran["EVAL"]) == (1, 1, 0)


def counter_app(store: RedisStore[Data]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET)

    @app.get("/count")
    async def count(request: Request) -> dict[str, int]:
        session = request.state.session.get_session()
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    @app.get("/peek")
    async def peek(request: Request) -> dict[str, int]:
        return {"n": request.state.session.get_session().get("n", 0)}

    return app


async def test_through_the_middleware_a_read_is_one_round_trip_and_an_update_two(
    counted: Counted,
) -> None:
    transport = httpx.ASGITransport(app=counter_app(counted.store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        await counted.start()
        assert (await browser.get("/count")).json() == {"n": 1}  # a new session: no read
        assert counted.wire.writes == [["EVALSHA"]]
        assert await counted.ran() == Counter({"EVALSHA": 1, "GETRANGE": 1, "EXISTS": 1, "SET": 1})

        for _ in range(3):
            await counted.start()
            assert (await browser.get("/peek")).json() == {"n": 1}
            assert counted.wire.writes == [["GET"]]
            assert await counted.ran() == Counter({"GET": 1})

        for n in (2, 3, 4):
            await counted.start()
            assert (await browser.get("/count")).json() == {"n": n}
            assert counted.wire.writes == [["GET"], ["EVALSHA"]]
            assert await counted.ran() == Counter({"GET": 1}) + SAVE_EXISTING

    async with httpx.AsyncClient(transport=transport, base_url=BASE) as anonymous:
        await counted.start()
        assert (await anonymous.get("/peek")).json() == {"n": 0}
        assert counted.wire.writes == []  # no cookie: Redis is not asked at all
        assert await counted.ran() == Counter()


def test_the_wire_parser_reads_commands_and_pipelines() -> None:
    """The counting itself: one name per command, however many in one write."""
    one = b"*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n"
    script = b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$4\r\n\r\n\r\n\r\n"  # CRLF in data
    assert commands_in(one) == ["GET"]
    assert commands_in(one + script + one) == ["GET", "EVALSHA", "GET"]
    assert commands_in(b"") == []
