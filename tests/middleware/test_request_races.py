"""Races of one request with itself and with its session's other requests, found by an
audit: overlapping loads, a socket's turn, concurrent sign-ins, ``popitem``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.types import Message, Scope

from tests.conftest import SECRET
from typed_sessions import (
    Keyring,
    Ok,
    SessionDep,
    session_middleware,
    utc_now,
    verify_session_token,
)
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.sql import SqlStore

pytestmark = pytest.mark.anyio

KEYS = Keyring.from_secrets(SECRET)
BASE = "https://testserver"
COOKIE = "__Host-session"


def sid(token: str) -> Any:
    result = verify_session_token(token, KEYS, now=utc_now())
    assert isinstance(result, Ok)
    return result.value


async def start_session(app: FastAPI, path: str = "/init") -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.post(path)
        assert response.status_code == 200
        token = c.cookies.get(COOKIE)
        assert token is not None
        return token


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    if token is not None:
        c.cookies.set(COOKIE, token)
    return c


def counter_app(store: Any, **options: Any) -> FastAPI:
    """An app with ``autoload=False`` whose ``/init`` starts a counter, ``/inc`` adds one."""
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, autoload=False, **options)

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        (await manager.load())["n"] = 0
        return "ok"

    @app.post("/inc")
    async def inc(manager: SessionDep) -> int:
        session = await manager.load()
        session["n"] += 1
        return int(session["n"])

    return app


class OpenSocket:
    """A raw-ASGI WebSocket kept open until closed by the test."""

    def __init__(self, app: FastAPI, path: str, token: str) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: asyncio.Queue[Any] = asyncio.Queue()
        self.scope: Scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "wss",
            "http_version": "1.1", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "client": ("testclient", 50000),
            "headers": [(b"host", b"testserver"), (b"cookie", f"{COOKIE}={token}".encode())],
            "server": ("testserver", 443), "subprotocols": [], "extensions": {},
        }  # fmt: skip
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.ensure_future(app(self.scope, self.inbox.get, self._send))

    async def _send(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            await self.sent.put(json.loads(message["text"]))
        else:
            await self.sent.put(message["type"])

    async def close(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await self.task


async def test_websocket_load_with_autoload_off_does_not_block_the_sessions_http_requests() -> None:
    """take_turns=True, autoload=False: a socket that awaits load() lets the session's
    HTTP requests go once it loaded, as with autoload; it held the turn for as long as
    it stayed open (every request of the session: 409 after turn_timeout)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = counter_app(store, take_turns=True, turn_timeout=0.5)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, manager: SessionDep) -> None:
        await websocket.accept()
        session = await manager.load()
        await websocket.send_json({"n": session["n"]})
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()  # stays open until the client leaves

    token = await start_session(app)
    socket = OpenSocket(app, "/ws", token)
    assert await socket.sent.get() == "websocket.accept"
    assert await socket.sent.get() == {"n": 0}
    async with client(app, token) as c:
        response = await c.post("/inc")
    await socket.close()
    assert response.status_code == 200, (response.status_code, response.text)


def hold_the_turn(app: FastAPI) -> tuple[asyncio.Event, asyncio.Event]:
    """Add ``POST /slow`` to ``app``: it loads the session (taking its turn, with
    ``take_turns=True``), sets the first event, and answers once the second is set."""
    holding, release = asyncio.Event(), asyncio.Event()

    @app.post("/slow")
    async def slow(manager: SessionDep) -> str:
        await manager.load()
        holding.set()
        await release.wait()
        return "ok"

    return holding, release


def login_app(store: MemoryStore[dict[str, Any]], **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, **options)

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session()["cart"] = ["book"]
        return "ok"

    @app.post("/login/{user}")
    async def login(user: str, manager: SessionDep) -> str:
        session = manager.get_session()
        await asyncio.sleep(0)  # the other tab's request runs meanwhile
        session[f"user_{user}"] = user
        manager.sign_in(user)
        return "ok"

    return app


async def test_two_concurrent_sign_ins_never_acknowledge_a_dropped_write() -> None:
    """Two tabs sign in at once: the second finds the session moved by the first. Its
    write and sign-in were answered 200 and dropped (no cookie, its data nowhere); it is
    refused (409), as a plain write to a session ended meanwhile is."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = login_app(store)
    token = await start_session(app)
    async with client(app, token) as c:
        first, second = await asyncio.gather(c.post("/login/ada"), c.post("/login/bob"))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    for user, response in (("ada", first), ("bob", second)):
        if response.status_code != 200:
            assert "set-cookie" not in response.headers
            continue  # refused visibly: fine
        new_token = response.cookies.get(COOKIE)
        assert new_token is not None, f"{user}: 200 without a session cookie"
        record = await store.load(sid(new_token))
        assert record is not None
        assert record.data.get(f"user_{user}") == user, user


class GatedLoads:
    """Delegates to a real store; the ``gated``-th load waits for ``gate`` before reading."""

    def __init__(self, inner: Any, gated: int) -> None:
        self.inner, self.gated, self.loads = inner, gated, 0
        self.gate = asyncio.Event()
        self.codec = inner.codec

    async def load(self, session_id: Any) -> Any:
        self.loads += 1
        if self.loads == self.gated:
            await self.gate.wait()
        return await self.inner.load(session_id)

    async def save(self, session: Any) -> Any:
        return await self.inner.save(session)

    async def delete(self, session_id: Any) -> None:
        await self.inner.delete(session_id)


@pytest.fixture
async def sqlite_store(tmp_path: Any) -> Any:

    store = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path}/s.db", dict[str, Any])
    await store.create_table()
    yield store
    await store.aclose()


async def test_overlapping_loads_in_one_request_do_not_lose_another_requests_write(
    sqlite_store: Any,
) -> None:
    """A handler whose helpers both ``await manager.load()`` (under asyncio.gather): one
    read serves both. The second read used to land after another request saved, and the
    manager compared-and-set against that newer record with the older one's data: both
    answered 200 and one increment was gone."""
    store = GatedLoads(sqlite_store, gated=2)  # a second read by /double waits
    app = counter_app(store)
    loaded_once = asyncio.Event()

    @app.post("/double")
    async def double(manager: SessionDep) -> int:
        async def first() -> Any:
            session = await manager.load()
            loaded_once.set()
            return session

        results = await asyncio.gather(first(), manager.load())
        session = results[0]
        session["n"] += 1
        return int(session["n"])

    token = await start_session(app)
    store.loads = 0
    async with client(app, token) as c:
        doubled = asyncio.ensure_future(c.post("/double"))
        await loaded_once.wait()  # /double read n == 0 (a second read would wait)
        store.gated = 0  # no other read waits
        other = await c.post("/inc")  # another tab: n 0 -> 1, or 409 if /double saved first
        store.gate.set()
        second = await doubled
        final = await sqlite_store.load(sid(token))
    acknowledged = [r.status_code for r in (other, second)].count(200)
    assert acknowledged >= 1
    assert final.data["n"] == acknowledged, (final.data, other.status_code, second.status_code)


async def test_popitem_racing_a_write_to_the_popped_key_is_refused_not_merged() -> None:
    """Request A moves the last item with ``popitem()``; request B, meanwhile, sets that
    key (200). ``popitem()`` reads the key it returns, as ``pop(key)`` does: A is
    refused, not merged with the old value archived and B's value in neither place."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)
    gate = asyncio.Event()
    loaded = asyncio.Event()

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session().update({"a": 1, "last": "x"})
        return "ok"

    @app.post("/archive")
    async def archive(manager: SessionDep) -> str:
        session = manager.get_session()
        loaded.set()
        await gate.wait()
        _, value = session.popitem()
        session["archived"] = value
        return "ok"

    @app.post("/set-last")
    async def set_last(manager: SessionDep) -> str:
        manager.get_session()["last"] = "y"
        return "ok"

    token = await start_session(app)
    async with client(app, token) as c:
        a = asyncio.ensure_future(c.post("/archive"))
        await loaded.wait()
        b = await c.post("/set-last")
        gate.set()
        a_response = await a
    record = await store.load(sid(token))
    assert record is not None
    assert b.status_code == 200
    assert a_response.status_code == 409
    assert record.data == {"a": 1, "last": "y"}
