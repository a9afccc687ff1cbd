"""The session middleware: WebSockets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from starlette.types import Message, Scope

from tests.conftest import FakeClock
from typed_sessions.adapters.headers import refuse
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.result import Err, Result
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict

from .conftest import BASE, COOKIE, SpyStore, build_app, id_of, token_of

pytestmark = pytest.mark.anyio

# --- WebSockets --------------------------------------------------------------------------------


async def websocket_call(
    app: FastAPI,
    path: str,
    *,
    cookie: str | None = None,
    extra: tuple[bytes, bytes] | None = None,
    denial: bool = False,
) -> list[Any]:
    """Open a WebSocket on ``app`` over raw ASGI; return what the endpoint sent, decoded.

    ``denial``: the server offers the ``websocket.http.response`` extension, as uvicorn
    does. (Starlette's TestClient warns on import without httpx2, so these tests talk ASGI.)
    """
    route, _, query = path.partition("?")
    headers = [] if cookie is None else [(b"cookie", f"{COOKIE}={cookie}".encode())]
    headers += [] if extra is None else [extra]
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "http_version": "1.1",
        "path": route,
        "raw_path": route.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("testclient", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Any] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            sent.append(json.loads(message["text"]))
        elif message["type"] == "websocket.http.response.start":
            sent.append((message["type"], message["status"]))
        else:
            sent.append(message["type"] if message["type"] != "websocket.close" else message)

    await app(scope, receive, send)
    return sent


async def test_websocket_reads_the_session(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    token = token_of(await client.get("/set/user?value=alice"))
    sent = await websocket_call(build_app(store, keyring, clock), "/ws", cookie=token)
    assert sent[0] == "websocket.accept"
    assert sent[1] == {"session": {"user": "alice"}, "id": id_of(token, keyring, clock)}
    assert store.saves == 1


async def test_websocket_change_to_existing_session_is_saved(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    token = token_of(await client.get("/set/user?value=alice"))
    app = build_app(store, keyring, clock)
    sent = await websocket_call(app, "/ws?write=note", cookie=token)
    assert sent[2] == {"ok": True}
    assert (await client.get("/read")).json() == {"user": "alice", "note": "from-websocket"}


async def test_websocket_cannot_create_a_session(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    sent = await websocket_call(build_app(store, keyring, clock), "/ws?write=note")
    assert sent[1:3] == [{"session": {}, "id": None}, {"error": "WebSocketSessionError"}]
    assert store.calls == 0


async def test_websocket_cannot_regenerate(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    token = token_of(await client.get("/set/user?value=alice"))
    app = build_app(store, keyring, clock)
    sent = await websocket_call(app, "/ws?regenerate=1", cookie=token)
    assert sent[2] == {"error": "WebSocketSessionError"}
    assert await store.data(id_of(token, keyring, clock)) == {"user": "alice"}


CLOSED_1013 = {"type": "websocket.close", "code": 1013, "reason": ""}
CLOSED_1008 = {"type": "websocket.close", "code": 1008, "reason": ""}


@pytest.mark.parametrize("denial", [False, True])
async def test_websocket_store_failure_on_load_is_a_clear_refusal(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock, denial: bool
) -> None:
    """A close before accept reaches a client as a bare 403 (ASGI): where the server
    offers denial responses, a 503; elsewhere accepted, then closed with 1013."""
    token = token_of(await client.get("/set/user?value=alice"))
    store.fail_load = True
    app = build_app(store, keyring, clock)
    sent = await websocket_call(app, "/ws", cookie=token, denial=denial)
    if denial:
        assert sent == [("websocket.http.response.start", 503), "websocket.http.response.body"]
    else:
        assert sent == ["websocket.accept", CLOSED_1013]


@pytest.mark.parametrize("denial", [False, True])
async def test_websocket_with_skip_header_is_refused_clearly(
    store: SpyStore, keyring: Keyring, clock: FakeClock, denial: bool
) -> None:
    app = build_app(store, keyring, clock, skip_header="x-skip")
    sent = await websocket_call(app, "/ws", extra=(b"x-skip", b"1"), denial=denial)
    if denial:
        assert sent == [("websocket.http.response.start", 400), "websocket.http.response.body"]
    else:
        assert sent == ["websocket.accept", CLOSED_1008]
    assert store.calls == 0


async def test_a_save_that_keeps_losing_races_is_a_503_logged_as_a_warning(
    keyring: Keyring, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After save_attempts, 503; the store worked, so the log says WARNING, not ERROR."""
    inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)

    class AlwaysStale:
        load, delete = inner.load, inner.delete

        async def save(
            self, session: Session[dict[str, Any]]
        ) -> Result[Session[dict[str, Any]], Conflict]:
            if session.version == 0:
                return await inner.save(session)
            return Err(Conflict(expected=session.version, found=session.version + 1))

    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=AlwaysStale(),
        keys=keyring,
        clock=clock,
        save_attempts=3,
        logger=logging.getLogger("sessions"),
    )

    @app.get("/bump")
    async def bump(manager: SessionDep) -> int:
        data = manager.get_session()
        data["n"] = data.get("n", 0) + 1
        return int(data["n"])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/bump")).status_code == 200
        with caplog.at_level(logging.DEBUG, logger="sessions"):
            response = await c.get("/bump")
    assert response.status_code == 503
    levels = {record.levelname for record in caplog.records}
    assert "ERROR" not in levels
    assert any("kept changing" in r.message and r.levelname == "WARNING" for r in caplog.records)


async def test_an_open_websocket_does_not_hold_its_sessions_turn() -> None:
    """With ``take_turns=True`` a socket loads in turn, then lets the session's HTTP
    requests go: a page open for an hour does not refuse its own reloads with 409."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(
        session_middleware, store=store, keys=Keyring.from_secrets("s" * 43),
        take_turns=True, turn_timeout=1.0,
    )  # fmt: skip

    @app.get("/count")
    async def count(session: SessionDep) -> int:
        data = session.get_session()
        data["n"] = data.get("n", 0) + 1
        return int(data["n"])

    @app.get("/data")
    async def everything(session: SessionDep) -> dict[str, Any]:
        return dict(session.get_session())

    opened, closing = asyncio.Event(), asyncio.Event()

    @app.websocket("/ws")
    async def socket(websocket: WebSocket, session: SessionDep) -> None:
        await websocket.accept()
        opened.set()
        await closing.wait()  # open, as a page's socket is
        session.get_session()["seen"] = True
        await websocket.close()

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).json() == 1
        cookie = client.cookies[COOKIE]
        scope: Scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "wss",
            "path": "/ws", "raw_path": b"/ws", "root_path": "", "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"cookie", f"{COOKIE}={cookie}".encode())],
            "client": ("testclient", 50000), "server": ("testserver", 443),
            "subprotocols": [], "extensions": {},
        }  # fmt: skip
        inbox: list[Message] = [{"type": "websocket.connect"}]

        async def receive() -> Message:
            return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

        async def send(message: Message) -> None:
            return None

        task = asyncio.create_task(app(scope, receive, send))
        await asyncio.wait_for(opened.wait(), 5)
        assert (await client.get("/count")).json() == 2  # not 409 after turn_timeout
        closing.set()
        await task
        assert (await client.get("/count")).json() == 3
        assert (await client.get("/data")).json() == {"n": 3, "seen": True}  # the socket's


@pytest.mark.parametrize(("status", "code"), [(423, 1008), (429, 1008), (507, 1013)])
async def test_a_refusal_with_an_on_error_status_of_its_own_closes_the_socket(
    status: int, code: int
) -> None:
    """Found by an audit: an ``on_error`` mapping a refusal to another status than 400,
    409 or 503 raised ``KeyError`` on a server without denial responses (the socket
    accepted and never closed). Such a status gets 1008, or 1013 for a 5xx."""
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await refuse({"type": "websocket"}, receive, send, status, b"no")
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": code, "reason": ""},
    ]
