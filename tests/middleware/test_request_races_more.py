"""More races of one request with itself and with its session's other requests (found by
a review): a failed load on a socket, overlapping loads taking turns or failing, a
regeneration that only read, a refused sign-in's log line; and the cases that held."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from tests.middleware.test_request_races import (
    COOKIE,
    KEYS,
    OpenSocket,
    client,
    counter_app,
    hold_the_turn,
    sid,
    start_session,
)
from typed_sessions import SessionDep, session_middleware
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import StoreError, StoreUnavailableError

pytestmark = pytest.mark.anyio


class Wrapped:
    """A MemoryStore behind a plain store (no lane): loads can be held or made to fail."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.codec = self.inner.codec
        self.loads = 0
        self.fail_load: int | None = None  # the n-th load raises
        self.hold_load: int | None = None  # the n-th load waits for gate
        self.gate = asyncio.Event()
        self.saved_ids: set[Any] = set()

    async def load(self, session_id: Any) -> Any:
        self.loads += 1
        n = self.loads
        await asyncio.sleep(0)  # a real store's read suspends
        if n == self.hold_load:
            await self.gate.wait()
        if n == self.fail_load:
            raise StoreUnavailableError("down")
        return await self.inner.load(session_id)

    async def save(self, session: Any) -> Any:
        self.saved_ids.add(session.id)
        return await self.inner.save(session)

    async def delete(self, session_id: Any) -> None:
        await self.inner.delete(session_id)


# --- a WebSocket whose load() failed --------------------------------------------------


async def test_a_socket_whose_load_failed_gives_the_turn_back() -> None:
    store = Wrapped()
    app = counter_app(store, take_turns=True, turn_timeout=0.5)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, manager: SessionDep) -> None:
        await websocket.accept()
        try:
            await manager.load()
        except StoreError:
            await websocket.send_json({"error": "store down, live updates only"})
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()  # stays open

    token = await start_session(app)
    store.loads = 0
    store.fail_load = 1  # the socket's load fails
    socket = OpenSocket(app, "/ws", token)
    assert await socket.sent.get() == "websocket.accept"
    assert await socket.sent.get() == {"error": "store down, live updates only"}
    async with client(app, token) as c:
        response = await c.post("/inc")
    await socket.close()
    assert response.status_code == 200, (response.status_code, response.text)


# --- overlapping load() calls with take_turns=True ------------------------------------


async def test_overlapping_loads_taking_turns_share_one_turn() -> None:
    """Two load() calls of one request while another request holds the turn: the second
    queued behind the first, for its own request's turn, and got 409 (SessionBusyError)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = counter_app(store, take_turns=True, turn_timeout=1.0)
    holding, gate = hold_the_turn(app)

    @app.post("/double")
    async def double(manager: SessionDep) -> int:
        a, _ = await asyncio.gather(manager.load(), manager.load())
        a["n"] += 1
        return int(a["n"])

    token = await start_session(app)
    async with client(app, token) as c:
        slow_request = asyncio.ensure_future(c.post("/slow"))
        await holding.wait()  # /slow holds the session's turn
        double_request = asyncio.ensure_future(c.post("/double"))
        await asyncio.sleep(0.05)  # both of /double's loads queue behind /slow
        gate.set()
        assert (await slow_request).status_code == 200
        response = await double_request
    assert response.status_code == 200, (response.status_code, response.text)


# --- the second of two overlapping reads fails after the first succeeded ---------------


async def test_an_overlapping_read_failing_after_the_load_changes_nothing() -> None:
    """The later of two overlapping reads fails after the earlier loaded the session: the
    request goes on with the earlier read (it was a 503)."""
    store = Wrapped()
    app = counter_app(store)

    @app.post("/double")
    async def double(manager: SessionDep) -> int:
        a, _ = await asyncio.gather(manager.load(), manager.load())
        a["n"] += 1
        return int(a["n"])

    token = await start_session(app)
    store.loads = 0
    store.hold_load = 2  # the second read lands after the first loaded the session...
    store.fail_load = 2  # ...and fails

    async def release() -> None:
        while store.loads < 2:  # noqa: ASYNC110 - the store counts its reads
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        store.gate.set()

    async with client(app, token) as c:
        response, _ = await asyncio.gather(c.post("/double"), release())
    record = await store.inner.load(sid(token))
    assert record is not None
    assert response.status_code == 200, (response.status_code, response.text, record.data)


# --- a regeneration that only read (changed nothing) ----------------------------------


async def test_a_regenerate_that_only_read_carries_the_newest_data() -> None:
    """A regenerate() that read a key another request changed meanwhile, and changed
    nothing: the new record carries the newest data (it was refused with 409, though it
    would lose nothing)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)
    gate = asyncio.Event()
    loaded = asyncio.Event()

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session()["n"] = 0
        return "ok"

    @app.post("/inc")
    async def inc(manager: SessionDep) -> int:
        session = manager.get_session()
        session["n"] += 1
        return int(session["n"])

    @app.post("/rotate")
    async def rotate(manager: SessionDep) -> int:
        n = manager.get_session()["n"]  # read, shown to the user; nothing written
        loaded.set()
        await gate.wait()
        manager.regenerate()
        return int(n)

    token = await start_session(app)
    async with client(app, token) as c:
        rotating = asyncio.ensure_future(c.post("/rotate"))
        await loaded.wait()
        assert (await c.post("/inc")).status_code == 200
        gate.set()
        response = await rotating
    assert response.status_code == 200, (response.status_code, response.text)


@pytest.mark.parametrize("value", [1, [1]])  # scalar-only data: a dict snapshot; a list: JSON
async def test_a_bare_regenerate_whose_session_ended_is_200_without_cookie(value: Any) -> None:
    """Data read and unchanged (a dict snapshot, and a JSON
    text snapshot), session ended meanwhile: 200, no cookie, no record left behind."""
    store = Wrapped()
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)
    gate, loaded = asyncio.Event(), asyncio.Event()

    @app.post("/init")
    async def init(manager: SessionDep, v: Any = value) -> str:
        manager.get_session()["n"] = v
        return "ok"

    @app.post("/logout")
    async def logout(manager: SessionDep) -> str:
        manager.invalidate()
        return "ok"

    @app.post("/rotate")
    async def rotate(manager: SessionDep) -> str:
        session = manager.get_session()
        session["n"] = session["n"]  # written, unchanged
        loaded.set()
        await gate.wait()
        manager.regenerate()
        return "ok"

    token = await start_session(app)
    async with client(app, token) as c:
        rotating = asyncio.ensure_future(c.post("/rotate"))
        await loaded.wait()
        assert (await c.post("/logout")).status_code == 200
        gate.set()
        response = await rotating
    assert response.status_code == 200, value
    assert "set-cookie" not in response.headers
    for saved in store.saved_ids:  # the old record and the new one: both gone
        assert await store.inner.load(saved) is None


async def test_a_sign_in_refused_when_the_session_ended_leaves_nothing() -> None:
    """A sign_in without data (data None), session ended meanwhile: 409 via the
    error mapping, no cookie, no new record left behind."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    response = await race_login(*signin_race_app(store))
    assert response.status_code == 409
    assert "set-cookie" not in response.headers
    assert COOKIE not in response.cookies
    assert await store.list_subject("ada") == []


# --- what held, and the refusal's message ------------------------------------------------


def signin_race_app(store: Any, **options: Any) -> tuple[FastAPI, asyncio.Event, asyncio.Event]:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, **options)
    gate, loaded = asyncio.Event(), asyncio.Event()

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session()["n"] = 1
        return "ok"

    @app.post("/logout")
    async def logout(manager: SessionDep) -> str:
        manager.invalidate()
        return "ok"

    @app.post("/login")
    async def login(manager: SessionDep) -> str:
        loaded.set()
        await gate.wait()
        manager.sign_in("ada")
        return "ok"

    return app, gate, loaded


async def race_login(app: FastAPI, gate: asyncio.Event, loaded: asyncio.Event) -> Any:
    token = await start_session(app)
    async with client(app, token) as c:
        logging_in = asyncio.ensure_future(c.post("/login"))
        await loaded.wait()
        assert (await c.post("/logout")).status_code == 200
        gate.set()
        return await logging_in


async def test_a_refused_sign_in_goes_through_on_error() -> None:
    from starlette.exceptions import HTTPException

    from typed_sessions.adapters.responses import SessionFailure, default_error_mapping

    seen: list[SessionFailure] = []

    def mapping(failure: SessionFailure) -> HTTPException:
        seen.append(failure)
        if failure.kind == "conflict":
            return HTTPException(429, "busy", headers={"Retry-After": "1"})
        return default_error_mapping(failure)

    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    response = await race_login(*signin_race_app(store, on_error=mapping))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert [(f.kind, f.reason) for f in seen] == [("conflict", "concurrent_change")]


async def test_a_refused_sign_in_is_logged_as_one(caplog: pytest.LogCaptureFixture) -> None:
    """A sign-in (no data touched) refused because the session ended meanwhile is logged
    as 'the session ended ... before 0 keys were saved': what was refused is the
    sign-in, not zero keys."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    caplog.set_level(logging.INFO, "typed_sessions")
    response = await race_login(*signin_race_app(store))
    assert response.status_code == 409
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused
    assert "0 keys" not in refused[0], refused


async def test_a_failing_first_overlapping_load_then_a_succeeding_second() -> None:
    store = Wrapped()
    app = counter_app(store)

    @app.post("/double")
    async def double(manager: SessionDep) -> Any:
        results = await asyncio.gather(manager.load(), manager.load(), return_exceptions=True)
        session = next(r for r in results if not isinstance(r, BaseException))
        session["n"] += 1
        return [type(r).__name__ for r in results]

    token = await start_session(app)
    store.loads = 0
    store.fail_load = 1
    async with client(app, token) as c:
        response = await c.post("/double")
    record = await store.inner.load(sid(token))
    assert record is not None
    assert response.status_code == 200, response.text
    assert record.data == {"n": 1}


async def test_popitem_on_an_empty_session() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.sign_in("ada")  # a stored session holding no data
        return "ok"

    @app.post("/pop")
    async def pop(manager: SessionDep) -> str:
        try:
            manager.get_session().popitem()
        except KeyError:
            return "empty"
        return "popped"

    token = await start_session(app)
    async with client(app, token) as c:
        response = await c.post("/pop")
        token = c.cookies.get(COOKIE) or token
    assert response.status_code == 200
    assert response.json() == "empty"
    assert "set-cookie" not in response.headers
