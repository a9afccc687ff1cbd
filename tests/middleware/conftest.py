"""The middleware tests' app, store and fixtures (one module per concern beside it)."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from tests.conftest import FakeClock
from typed_sessions.adapters.errors import (
    SessionClosedError,
    SessionNotLoadedError,
    WebSocketSessionError,
)
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.session_deps import LoadedSessionDep, SessionDep
from typed_sessions.core.codec import SessionCodec
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring, verify_session_token
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict, StoreUnavailableError

pytestmark = pytest.mark.anyio

BASE = "https://testserver"
COOKIE = "__Host-session"  # the default name: Secure, Path=/, no Domain


class Color(enum.StrEnum):
    RED = "red"


class SpyStore:
    """A MemoryStore that counts its calls and can be told to fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
        self.loads = 0
        self.saves = 0
        self.deletes = 0
        self.fail_load = False
        self.fail_save = False
        self.fail_delete = False

    @property
    def calls(self) -> int:
        return self.loads + self.saves + self.deletes

    async def load(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        self.loads += 1
        if self.fail_load:
            raise StoreUnavailableError("redis://secret-host: connection refused")
        return await self.inner.load(session_id)

    async def save(
        self, session: Session[dict[str, Any]]
    ) -> Result[Session[dict[str, Any]], Conflict]:
        self.saves += 1
        if self.fail_save:
            raise StoreUnavailableError("timeout")
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        self.deletes += 1
        if self.fail_delete:
            raise StoreUnavailableError("timeout")
        await self.inner.delete(session_id)

    async def data(self, session_id: str) -> dict[str, Any] | None:
        record = await self.inner.load(SessionId(session_id))
        return None if record is None else record.data


class LaneSpyStore(SpyStore):
    """A :class:`SpyStore` that also offers the memory store's lane (the middleware's
    fast path), counting and failing its calls as loads and saves."""

    @property
    def codec(self) -> SessionCodec[dict[str, Any]]:
        return self.inner.codec

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        self.loads += 1
        if self.fail_load:
            raise StoreUnavailableError("redis://secret-host: connection refused")
        return await self.inner.load_record(session_id)

    async def save_record(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        self.saves += 1
        if self.fail_save:
            raise StoreUnavailableError("timeout")
        return await self.inner.save_record(session_id, loaded, data, last, expires)

    def session_of(self, session_id: SessionId, stored: StoredRecord) -> Session[dict[str, Any]]:
        return self.inner.session_of(session_id, stored)


def build_app(store: SpyStore, keyring: Keyring, clock: FakeClock, **options: Any) -> FastAPI:
    """An app with one route per behaviour under test."""
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring, clock=clock, **options)

    @app.get("/counter")
    async def counter(request: Request) -> dict[str, int]:
        session = request.state.session.get_session()
        if "test_counter" not in session:
            session["test_counter"] = 0
        session["test_counter"] += 1
        return {"test_counter": session["test_counter"]}

    @app.get("/read")
    async def read(manager: SessionDep) -> dict[str, Any]:
        return dict(manager.get_session())

    @app.get("/none")
    async def none() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/set/{key}")
    async def set_key(key: str, value: str, manager: SessionDep) -> dict[str, Any]:
        session = manager.get_session()
        session[key] = value
        return dict(session)

    @app.get("/id")
    async def session_id(manager: SessionDep) -> dict[str, str | None]:
        return {"id": manager.get_session_id()}

    @app.get("/nested")
    async def nested(manager: SessionDep) -> dict[str, Any]:
        session = manager.get_session()
        session.setdefault("cart", {"items": []})["items"].append("apple")
        return dict(session)

    @app.get("/own-cookies")
    async def own_cookies(response: Response, manager: SessionDep) -> str:
        response.set_cookie("theme", "dark")
        response.set_cookie("lang", "en")
        manager.get_session()["user"] = "alice"
        return "ok"

    @app.get("/own-headers")
    async def own_headers(manager: SessionDep) -> JSONResponse:
        manager.get_session()["user"] = "alice"
        return JSONResponse(
            {}, headers={"vary": "Accept-Encoding", "cache-control": "public, max-age=60"}
        )

    @app.get("/boom")
    async def boom(manager: SessionDep) -> str:
        manager.get_session()["user"] = "mallory"
        raise RuntimeError("handler failed")

    @app.get("/status500")
    async def status500(manager: SessionDep) -> JSONResponse:
        manager.get_session()["user"] = "mallory"
        return JSONResponse({"error": "oops"}, status_code=500)

    @app.get("/status404")
    async def status404(manager: SessionDep) -> JSONResponse:
        manager.get_session()["seen404"] = True
        return JSONResponse({"error": "nope"}, status_code=404)

    @app.get("/bad-json")
    async def bad_json(manager: SessionDep) -> str:
        manager.get_session()["when"] = datetime(2026, 1, 1)
        return "ok"

    @app.get("/unstorable/{kind}")
    async def unstorable(kind: str, manager: SessionDep) -> str:
        if kind == "str-enum-key":  # a str subclass encodes as its value: allowed
            manager.get_session()["prefs"] = {Color.RED: 1}
            return "ok"
        if kind.startswith("keys"):  # JSON object keys are str: 1 and "1" would collide
            nested: dict[Any, str] = {1: "a", "1": "b"} if kind == "keys" else {None: "c"}
            manager.get_session()["prefs"] = [{"ok": nested}]
            return "ok"
        deep: list[Any] = []
        cursor = deep
        # "deep": past what pydantic serializes; "readable-depth": it serializes this
        # deep, but its parser could never load it again.
        for _ in range(220 if kind == "readable-depth" else 400):
            cursor.append([])
            cursor = cursor[0]
        manager.get_session()["text" if kind == "surrogate" else "deep"] = (
            "lone \ud800 surrogate" if kind == "surrogate" else deep
        )
        return "ok"

    @app.get("/regenerate")
    async def regenerate(manager: SessionDep) -> dict[str, str | None]:
        manager.regenerate()
        return {"id": manager.get_session_id()}

    @app.get("/invalidate")
    async def invalidate(manager: SessionDep) -> str:
        manager.invalidate()
        return "bye"

    @app.get("/invalidate-then-flash")
    async def invalidate_then_flash(
        manager: SessionDep, tasks: BackgroundTasks
    ) -> dict[str, str | None]:
        manager.invalidate()
        manager.get_session()["flash"] = "logged out"
        tasks.add_task(lambda: ids_later.append(manager.get_session_id()))
        return {"id": manager.get_session_id()}

    @app.get("/loaded")
    async def loaded(manager: LoadedSessionDep) -> dict[str, Any]:
        return dict(manager.get_session())

    @app.get("/loaded-counter")
    async def loaded_counter(request: Request) -> dict[str, int]:
        session = await request.state.session.load()
        session["n"] = session.get("n", 0) + 1
        return {"n": session["n"]}

    @app.get("/sync-unloaded")
    async def sync_unloaded(manager: SessionDep) -> str:
        try:
            manager.get_session()
        except SessionNotLoadedError as exc:
            return f"not loaded: {type(exc).__name__}"
        return "loaded"

    @app.get("/background")
    async def background(tasks: BackgroundTasks, manager: SessionDep) -> str:
        session = manager.get_session()
        session["before"] = 1

        def later() -> None:
            try:
                session["after"] = 2
            except SessionClosedError:
                session_errors.append("closed")

        tasks.add_task(later)
        return "ok"

    session_errors: list[str] = []
    app.state.session_errors = session_errors

    @app.get("/id-later/{action}")
    async def id_later(action: str, tasks: BackgroundTasks, manager: SessionDep) -> Response:
        if action.startswith("regenerate"):
            manager.regenerate()
        else:
            manager.get_session()["user"] = action
        if action == "emptied":
            minted = manager.get_session_id()  # mints an ID for the new session...
            manager.get_session().clear()  # ...which then holds nothing: never saved
            ids_during.extend([minted, manager.get_session_id()])

        def later() -> None:  # after the response started: the session is saved (or not)
            ids_later.append(manager.get_session_id())

        tasks.add_task(later)
        status = 500 if action.endswith("-fails") else 200
        return Response("ok", status_code=status, background=tasks)

    ids_later: list[SessionId | None] = []
    app.state.ids_later = ids_later
    ids_during: list[SessionId | None] = []
    app.state.ids_during = ids_during

    @app.websocket("/ws")
    async def ws_read(websocket: WebSocket, manager: SessionDep) -> None:
        await websocket.accept()
        session = manager.get_session()
        await websocket.send_json({"session": dict(session), "id": manager.get_session_id()})
        if (key := websocket.query_params.get("write")) is not None:
            try:
                session[key] = "from-websocket"
            except WebSocketSessionError as exc:
                await websocket.send_json({"error": type(exc).__name__})
            else:
                await websocket.send_json({"ok": True})
        if websocket.query_params.get("regenerate"):
            try:
                manager.regenerate()
            except WebSocketSessionError as exc:
                await websocket.send_json({"error": type(exc).__name__})
        await websocket.close()

    return app


@pytest.fixture(params=["lane", "typed"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> SpyStore:
    """The store, with the lane the memory store offers (the middleware's usual path with
    it), and without (the typed protocol alone, as other stores offer)."""
    return LaneSpyStore(clock) if request.param == "lane" else SpyStore(clock)


@pytest.fixture
def make_client(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> Callable[..., httpx.AsyncClient]:
    def make(*, raise_app_exceptions: bool = True, **options: Any) -> httpx.AsyncClient:
        app = build_app(store, keyring, clock, **options)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    return make


@pytest.fixture
async def client(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


def session_cookies(response: httpx.Response, name: str = COOKIE) -> list[str]:
    return [v for v in response.headers.get_list("set-cookie") if v.startswith(name + "=")]


def token_of(response: httpx.Response, name: str = COOKIE) -> str:
    (header,) = session_cookies(response, name)
    return header.split(";", 1)[0].split("=", 1)[1]


def id_of(token: str, keyring: Keyring, clock: FakeClock) -> SessionId:
    result = verify_session_token(token, keyring, now=clock())
    assert isinstance(result, Ok)
    return result.value
