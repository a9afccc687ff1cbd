"""The FastAPI adapters over RedisStore: round trips per request, and 503 when Redis fails.

- Through ``session_middleware``: a read-only request costs one Redis round trip (``GET``),
  a read-and-write one two (``GET``, ``EVALSHA``), a request without a cookie none; on
  Redis and on Valkey.
- Through the middleware and through ``make_cookie_dependency``: Redis paused, killed or
  holding garbage gives 503 (never 500, never a fresh session), and service resumes
  without rebuilding anything once Redis is back.
"""

# No `from __future__ import annotations`: FastAPI must see the real annotations of routes
# defined inside functions (their dependencies are local variables).
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from redis.asyncio import Connection, ConnectionPool, Redis

from typed_sessions import Keyring, Ok, Session, StoreError, verify_session_token
from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.lifecycle import start_session
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.responses import store_error_handler
from typed_sessions.stores.redis import RedisStore

from .conftest import SECRET
from .redis_server import (
    RedisServer,
    delete_prefix,
    redis_server,
    require_redis,
    require_valkey,
    unique_prefix,
)

pytestmark = pytest.mark.anyio
BASE = "https://testserver"  # the default cookie is Secure
TIMEOUT = 0.5
Data = dict[str, Any]


def middleware_app(store: RedisStore[Data]) -> FastAPI:
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


# -- round trips -------------------------------------------------------------------------


@pytest.fixture(params=["redis", "valkey"])
async def counted(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[RedisStore[Data], list[str]]]:
    url = require_redis() if request.param == "redis" else require_valkey()
    prefix = unique_prefix()
    sent: list[str] = []

    class CountingConnection(Connection):
        async def send_command(self, *args: Any, **kwargs: Any) -> None:
            sent.append(str(args[0]).upper())
            await super().send_command(*args, **kwargs)

    client = Redis(
        connection_pool=ConnectionPool.from_url(url, connection_class=CountingConnection)
    )
    await client.ping()
    sent.clear()
    yield RedisStore(client, Data, prefix=prefix), sent
    await delete_prefix(client, prefix)
    await client.aclose(close_connection_pool=True)


async def test_middleware_round_trips_per_request(
    counted: tuple[RedisStore[Data], list[str]],
) -> None:
    store, sent = counted
    transport = httpx.ASGITransport(app=middleware_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).json() == {"n": 1}  # new: no read, one save
        assert sent in (["EVALSHA"], ["EVALSHA", "EVAL"])  # EVAL once if the script is new
        sent.clear()
        assert (await client.get("/peek")).json() == {"n": 1}
        assert sent == ["GET"]  # read-only: one round trip
        sent.clear()
        assert (await client.get("/count")).json() == {"n": 2}
        assert sent == ["GET", "EVALSHA"]  # read and write: two
        sent.clear()
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as anonymous:
        assert (await anonymous.get("/peek")).json() == {"n": 0}
        assert sent == []  # no cookie: Redis is not asked at all


async def test_the_valkey_server_is_valkey() -> None:
    client = Redis.from_url(require_valkey())
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    assert "valkey_version" in info, sorted(info)


# -- failures through the middleware -----------------------------------------------------


@pytest.fixture(params=["redis", "valkey"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    with redis_server(valkey=request.param == "valkey") as started:
        yield started


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore[Data]]:
    async with RedisStore[Data].from_url(server.url, Data, timeout=TIMEOUT) as made:
        yield made


async def test_middleware_503_while_paused_then_resumes(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    transport = httpx.ASGITransport(app=middleware_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).json() == {"n": 1}
        cookie = client.cookies["__Host-session"]
        server.pause()
        try:
            for path in ("/count", "/peek"):
                reply = await client.get(path)
                assert reply.status_code == 503
                assert "set-cookie" not in reply.headers  # no fresh session handed out
        finally:
            server.resume()
        assert client.cookies["__Host-session"] == cookie
        assert (await client.get("/count")).json() == {"n": 2}  # nothing lost


async def test_middleware_503_while_killed_then_resumes(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    transport = httpx.ASGITransport(app=middleware_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).json() == {"n": 1}
        server.kill()
        assert (await client.get("/count")).status_code == 503
        server.start()  # no persistence: that session is gone, which reads as "no session"
        assert (await client.get("/count")).json() == {"n": 1}
        assert (await client.get("/count")).json() == {"n": 2}


async def test_middleware_garbage_record_gives_503(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    transport = httpx.ASGITransport(app=middleware_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).status_code == 200
        verified = verify_session_token(
            client.cookies["__Host-session"],
            Keyring.from_secrets(SECRET),
            now=store._clock(),  # pyright: ignore[reportPrivateUsage]  # the store's own time
        )
        assert isinstance(verified, Ok)
        raw = Redis.from_url(server.url)
        try:
            await raw.set(store.key_for(verified.value), b"\xffgarbage", ex=60)
        finally:
            await raw.aclose()
        assert (await client.get("/peek")).status_code == 503


# -- failures through the cookie dependency ----------------------------------------------


def dependency_app(store: RedisStore[Data]) -> FastAPI:
    keys = Keyring.from_secrets(SECRET)
    current = make_cookie_dependency(store, lambda _: True, keys=keys)
    app = FastAPI(exception_handlers={StoreError: store_error_handler})  # for start_session

    @app.post("/login")
    async def login(response: Response) -> dict[str, str]:
        await start_session(response, store, {"user": "ada"}, keys=keys)
        return {"ok": "yes"}

    @app.get("/me")
    async def me(session: Annotated[Session[Data], Depends(current)]) -> Data:
        return session.data

    return app


async def test_dependency_503_while_paused_then_resumes(
    server: RedisServer, store: RedisStore[Data]
) -> None:
    transport = httpx.ASGITransport(app=dependency_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.post("/login")).status_code == 200
        assert (await client.get("/me")).json() == {"user": "ada"}
        server.pause()
        try:
            assert (await client.get("/me")).status_code == 503
            assert (await client.post("/login")).status_code == 503
        finally:
            server.resume()
        assert (await client.get("/me")).json() == {"user": "ada"}
