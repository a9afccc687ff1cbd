"""The session middleware, through a real FastAPI app over ASGI (httpx and TestClient)."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from typed_sessions.adapters.middleware import (
    LoadedSessionDep,
    SessionDep,
    SessionMiddleware,
    _session_headers,
    get_session_manager,
    session_middleware,
)
from typed_sessions.adapters.session_state import (
    SessionClosedError,
    SessionMiddlewareMissingError,
    SessionNotLoadedError,
    SessionSkippedError,
    WebSocketSessionError,
)
from typed_sessions.core.codec import SessionCodec, SessionEncodeError
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring, sign_session_id, verify_session_token
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict, StoreUnavailableError

from .conftest import FakeClock

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


@pytest.fixture
def store(clock: FakeClock) -> SpyStore:
    return SpyStore(clock)


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


# --- the seed's counter ---------------------------------------------------------------


async def test_counter_goes_one_two_three(client: httpx.AsyncClient, store: SpyStore) -> None:
    results = []
    for _ in range(3):
        response = await client.get("/counter")
        assert response.status_code == 200
        results.append(response.json()["test_counter"])
    assert results == [1, 2, 3]
    assert len(store.inner) == 1


async def test_new_session_sets_one_secure_cookie_then_none(client: httpx.AsyncClient) -> None:
    first = await client.get("/counter")
    (header,) = session_cookies(first)
    assert "; Path=/; HttpOnly; Secure; SameSite=lax" in header
    assert "Max-Age" not in header  # a browser-session cookie by default
    assert first.headers["cache-control"] == "no-store"
    second = await client.get("/counter")
    assert session_cookies(second) == []
    assert "cache-control" not in second.headers


# --- no store work for requests that never write ----------------------------------------


async def test_thousand_cookieless_reads_leave_no_trace(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    for _ in range(1000):
        client.cookies.clear()
        response = await client.get("/read")
        assert response.json() == {}
        assert response.headers.get_list("set-cookie") == []
    assert len(store.inner) == 0
    assert store.calls == 0


async def test_route_that_never_asks_has_no_vary_and_no_store_access(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    response = await client.get("/none")
    assert response.json() == {"hello": "world"}
    assert "vary" not in response.headers
    assert store.calls == 0


async def test_unchanged_read_does_not_save(client: httpx.AsyncClient, store: SpyStore) -> None:
    await client.get("/set/user?value=alice")
    assert store.saves == 1
    for _ in range(5):
        response = await client.get("/read")
        assert response.json() == {"user": "alice"}
        assert session_cookies(response) == []
    assert store.saves == 1
    assert store.loads == 5


async def test_setting_a_key_to_its_own_value_does_not_save(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    await client.get("/set/user?value=alice")
    assert store.saves == 1


async def test_nested_change_is_saved(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/nested")
    await client.get("/nested")
    session_id = id_of(token_of(first), keyring, clock)
    assert await store.data(session_id) == {"cart": {"items": ["apple", "apple"]}}
    assert store.saves == 2


# --- strict IDs -------------------------------------------------------------------------


async def test_tampered_cookie_gets_a_fresh_id_and_is_never_written(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    token = token_of(first)
    original = id_of(token, keyring, clock)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    client.cookies.clear()
    response = await client.get(
        "/set/user?value=mallory", headers={"cookie": f"{COOKIE}={tampered}"}
    )
    fresh = id_of(token_of(response), keyring, clock)
    assert fresh != original
    assert await store.data(original) == {"user": "alice"}
    assert await store.data(fresh) == {"user": "mallory"}
    assert len(store.inner) == 2


async def test_attacker_chosen_id_is_never_adopted(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    chosen = "attacker-chosen-id"
    response = await client.get("/set/user?value=x", headers={"cookie": f"{COOKIE}={chosen}"})
    fresh = id_of(token_of(response), keyring, clock)
    assert fresh != chosen
    assert await store.data(chosen) is None
    assert store.loads == 0  # a cookie that does not verify never reaches the store


async def test_cookie_split_over_several_headers_is_found(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    token = token_of(await client.get("/set/user?value=alice"))
    client.cookies.clear()
    headers = [("cookie", "theme=dark"), ("cookie", f"{COOKIE}={token}; lang=en")]
    response = await client.get("/read", headers=headers)
    assert response.json() == {"user": "alice"}


async def test_token_for_another_key_is_refused(
    client: httpx.AsyncClient, store: SpyStore, clock: FakeClock
) -> None:
    other = Keyring.from_secrets("another-secret-of-enough-length-0123456789")
    forged = sign_session_id(new_session_id(), other, now=clock())
    response = await client.get("/read", headers={"cookie": f"{COOKIE}={forged}"})
    assert response.json() == {}
    assert store.loads == 0
    assert session_cookies(response) == []  # not provably ours: left alone


async def test_cookie_naming_a_deleted_record_is_not_adopted(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    old = id_of(token_of(first), keyring, clock)
    await store.inner.delete(old)
    read = await client.get("/read")
    assert read.json() == {}
    (cleared,) = session_cookies(read)  # ours, but dead: cleared
    assert "Max-Age=0" in cleared
    assert read.headers["cache-control"] == "no-store"
    client.cookies.set(COOKIE, token_of(first), domain="testserver")
    write = await client.get("/set/user?value=bob")
    fresh = id_of(token_of(write), keyring, clock)
    assert fresh != old
    assert await store.data(old) is None
    assert await store.data(fresh) == {"user": "bob"}


async def test_expired_token_is_not_adopted_and_is_cleared(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    clock.advance(timedelta(hours=13))  # past the absolute lifetime and the token's age
    response = await client.get("/read")
    assert response.json() == {}
    (cleared,) = session_cookies(response)
    assert "Max-Age=0" in cleared
    assert id_of(token_of(first), keyring, clock)  # verifies without max_age; not adopted


async def test_expired_record_from_a_lagging_store_is_not_adopted(
    keyring: Keyring, clock: FakeClock
) -> None:
    store = SpyStore(FakeClock())  # the store's clock stays behind the middleware's
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/set/user?value=alice")
        clock.advance(timedelta(minutes=31))
        response = await c.get("/read")
        assert response.json() == {}
        assert store.loads == 1
        assert "Max-Age=0" in session_cookies(response)[0]


# --- the app's own headers ---------------------------------------------------------------


async def test_app_cookies_survive_next_to_one_session_cookie(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/own-cookies")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 3
    assert any(c.startswith("theme=dark") for c in cookies)
    assert any(c.startswith("lang=en") for c in cookies)
    assert len(session_cookies(response)) == 1


async def test_vary_and_cache_control_merge_with_the_apps(client: httpx.AsyncClient) -> None:
    response = await client.get("/own-headers")
    assert response.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    assert response.headers.get_list("cache-control") == ["no-store"]
    again = await client.get("/own-headers")  # no cookie set: the app's caching stands
    assert again.headers.get_list("cache-control") == ["public, max-age=60"]
    assert again.headers.get_list("vary") == ["Accept-Encoding, Cookie"]


@pytest.mark.parametrize(
    ("app_headers", "vary", "cache_control"),
    [
        ([], ["Cookie"], ["no-store"]),
        ([(b"vary", b"X-Cookie-Consent")], ["X-Cookie-Consent, Cookie"], ["no-store"]),
        ([(b"Vary", b"Accept"), (b"vary", b"cookie")], ["Accept", "cookie"], ["no-store"]),
        ([(b"vary", b"*")], ["*"], ["no-store"]),
        ([(b"vary", b"")], ["Cookie"], ["no-store"]),
        ([(b"cache-control", b"private, No-Store")], ["Cookie"], ["private, No-Store"]),
        ([(b"cache-control", b"x-no-store-ext")], ["Cookie"], ["no-store"]),
        (
            [(b"cache-control", b"public"), (b"cache-control", b"max-age=60")],
            ["Cookie"],
            ["no-store"],
        ),
    ],
)
def test_vary_and_cache_control_are_read_as_lists_of_tokens(
    app_headers: list[tuple[bytes, bytes]], vary: list[str], cache_control: list[str]
) -> None:
    out = _session_headers(app_headers, "session=x", vary=True)
    values = {
        field: [v.decode() for n, v in out if n.lower() == field.encode()]
        for field in ("vary", "cache-control", "set-cookie")
    }
    assert values == {"vary": vary, "cache-control": cache_control, "set-cookie": ["session=x"]}


async def test_reading_routes_vary_on_cookie(client: httpx.AsyncClient) -> None:
    assert (await client.get("/read")).headers["vary"] == "Cookie"
    assert (await client.get("/id")).headers["vary"] == "Cookie"
    assert "vary" not in (await client.get("/none")).headers


# --- failures ----------------------------------------------------------------------------


async def test_raised_500_leaves_stored_data_unchanged(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(raise_app_exceptions=False) as client:
        first = await client.get("/set/user?value=alice")
        response = await client.get("/boom")
        assert response.status_code == 500
        assert session_cookies(response) == []
        assert (await client.get("/read")).json() == {"user": "alice"}
    assert store.saves == 1
    assert token_of(first)


async def test_returned_500_leaves_stored_data_unchanged(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    response = await client.get("/status500")
    assert response.status_code == 500
    assert (await client.get("/read")).json() == {"user": "alice"}
    assert store.saves == 1


async def test_500_on_a_new_session_stores_nothing(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    response = await client.get("/status500")
    assert response.status_code == 500
    assert session_cookies(response) == []
    assert len(store.inner) == 0


async def test_4xx_still_saves(client: httpx.AsyncClient, store: SpyStore) -> None:
    response = await client.get("/status404")
    assert response.status_code == 404
    assert len(session_cookies(response)) == 1
    assert len(store.inner) == 1


async def test_store_failure_on_load_is_503_and_handler_not_run(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    store.fail_load = True
    response = await client.get("/set/user?value=mallory")
    assert response.status_code == 503
    assert response.text == "Service Unavailable"
    assert "redis" not in response.text
    assert session_cookies(response) == []
    store.fail_load = False
    assert (await client.get("/read")).json() == {"user": "alice"}


async def test_store_failure_on_save_is_503_without_cookie(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    store.fail_save = True
    response = await client.get("/counter")
    assert response.status_code == 503
    assert response.text == "Service Unavailable"
    assert response.headers.get_list("set-cookie") == []
    assert len(store.inner) == 0


async def test_store_failure_on_save_of_existing_session_is_503(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/counter")
    store.fail_save = True
    response = await client.get("/counter")
    assert response.status_code == 503
    store.fail_save = False
    assert (await client.get("/counter")).json() == {"test_counter": 2}


async def test_store_failure_on_delete_is_503(client: httpx.AsyncClient, store: SpyStore) -> None:
    await client.get("/set/user?value=alice")
    store.fail_delete = True
    response = await client.get("/invalidate")
    assert response.status_code == 503
    assert session_cookies(response) == []


async def test_non_json_data_raises_before_anything_is_written(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    with pytest.raises(SessionEncodeError, match="'when'"):
        await client.get("/bad-json")
    assert store.calls == 0
    await client.get("/set/user?value=alice")
    with pytest.raises(SessionEncodeError):
        await client.get("/bad-json")
    assert store.saves == 1
    assert (await client.get("/read")).json() == {"user": "alice"}


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("surrogate", "'text'"),
        ("deep", "'deep'"),
        ("readable-depth", "'deep'"),
        ("keys", "'prefs' holds a dict with the key 1"),
        ("keys-none", "'prefs' holds a dict with the key None"),
    ],
)
async def test_data_the_store_cannot_encode_is_refused_before_writing(
    client: httpx.AsyncClient, store: SpyStore, kind: str, key: str
) -> None:
    """A lone surrogate (e.g. from a hostile JSON body) or too-deep nesting: the same
    clear error as any non-JSON value, raised before the store is touched."""
    await client.get("/set/user?value=alice")
    saves = store.saves
    with pytest.raises(SessionEncodeError, match=key):
        await client.get(f"/unstorable/{kind}")
    assert store.saves == saves
    assert (await client.get("/read")).json() == {"user": "alice"}


async def test_a_nested_str_subclass_key_is_stored_as_its_value(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/unstorable/str-enum-key")).status_code == 200
    assert (await client.get("/read")).json() == {"prefs": {"red": 1}}


class RecordEncodingStore(SpyStore):
    """Encodes the whole record before saving, as RedisStore does (one level deeper than
    the data alone, which is what MemoryStore encodes)."""

    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])

    async def save(
        self, session: Session[dict[str, Any]]
    ) -> Result[Session[dict[str, Any]], Conflict]:
        self.codec.encode(session)
        return await super().save(session)


@pytest.mark.parametrize("depth", [198, 199])
async def test_the_depth_check_comes_before_invalidate_deletes(
    keyring: Keyring, clock: FakeClock, depth: int
) -> None:
    """invalidate() then new data: the old record is deleted first, so the new data must
    be known storable before that; at the very edge of what a record can nest too."""
    store = RecordEncodingStore(clock)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring, clock=clock)

    @app.get("/login")
    async def login(manager: SessionDep) -> str:
        manager.get_session()["user"] = "ada"
        return "ok"

    @app.get("/logout-with-flash")
    async def logout_with_flash(manager: SessionDep) -> str:
        manager.invalidate()
        value: Any = 1
        for _ in range(depth):
            value = [value]
        manager.get_session()["flash"] = value
        return "ok"

    @app.get("/read")
    async def read(manager: SessionDep) -> dict[str, Any]:
        return dict(manager.get_session())

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/login")
        if depth == 198:  # storable: the old session ends, the flash is a new one
            assert (await c.get("/logout-with-flash")).status_code == 200
            assert "user" not in (await c.get("/read")).json()
            return
        with pytest.raises(SessionEncodeError, match="'flash'"):
            await c.get("/logout-with-flash")
        assert (await c.get("/read")).json() == {"user": "ada"}  # nothing was deleted


async def test_write_after_the_response_started_raises_not_lost_silently(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.get("/background")
        assert response.status_code == 200
        assert app.state.session_errors == ["closed"]
        assert (await c.get("/read")).json() == {"before": 1}


async def test_session_id_after_the_response_is_the_one_saved(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """From a background task, get_session_id() names the record the cookie carries: a
    new session, a regenerated one, and none at all when the save failed."""
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        created = await c.get("/id-later/ada")
        new_id = id_of(token_of(created), keyring, clock)
        regenerated = await c.get("/id-later/regenerate")
        moved_id = id_of(token_of(regenerated), keyring, clock)
        assert app.state.ids_later == [new_id, moved_id]
        assert new_id != moved_id
        assert await store.inner.load(moved_id) is not None
        store.fail_save = True
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as fresh:
            failed = await fresh.get("/id-later/bob")
        assert failed.status_code == 503
        assert session_cookies(failed) == []
        kept = await c.get("/id-later/regenerate")  # regenerating fails: the old ID stays
        assert kept.status_code == 503
        store.fail_save = False
        failed_handler = await c.get("/id-later/regenerate-fails")  # a 500: nothing saved
        assert failed_handler.status_code == 500
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as fresh:
            emptied = await fresh.get("/id-later/emptied")
        assert session_cookies(emptied) == []
    # Background tasks run after a 503 or a 500 too.
    assert app.state.ids_later[2:] == [None, moved_id, moved_id, None]


async def test_no_id_after_the_response_when_the_store_failed_before_saving(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """Invalidate, then a flash message: the old record's deletion fails, so the flash
    session is never saved, and a background task is told there is no session ID."""
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/set/user?value=alice")
        store.fail_delete = True
        response = await c.get("/invalidate-then-flash")
    assert response.status_code == 503
    assert session_cookies(response) == []
    assert app.state.ids_later == [None]


async def test_an_emptied_new_session_has_no_id_during_and_after_the_request(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """A new session emptied again is no session: get_session_id() says None in the
    handler and afterwards, also when a dead cookie of ours is cleared on the way."""
    app = build_app(store, keyring, clock)
    dead = sign_session_id(new_session_id(), keyring, now=clock())  # names no record
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        c.cookies.set(COOKIE, dead)
        response = await c.get("/id-later/emptied")
    assert response.status_code == 200
    [cleared] = session_cookies(response)
    assert "Max-Age=0" in cleared
    minted, emptied = app.state.ids_during
    assert minted is not None
    assert emptied is None
    assert app.state.ids_later == [None]
    assert await store.inner.load(minted) is None


# --- sliding expiry ------------------------------------------------------------------------


async def test_sliding_expiry_saves_only_past_the_step(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")  # idle 30 min, step 3 min
    session_id = id_of(token_of(first), keyring, clock)
    saved = await store.inner.load(session_id)
    assert saved is not None
    clock.advance(timedelta(minutes=2))
    await client.get("/read")
    assert store.saves == 1
    clock.advance(timedelta(minutes=2))  # 4 minutes later: the deadline moves by 4 >= 3
    response = await client.get("/read")
    assert response.json() == {"user": "alice"}
    assert session_cookies(response) == []
    assert store.saves == 2
    touched = await store.inner.load(session_id)
    assert touched is not None
    assert touched.expires_at == saved.expires_at + timedelta(minutes=4)


async def test_session_idle_past_expiry_is_gone(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await client.get("/set/user?value=alice")
    clock.advance(timedelta(minutes=31))
    assert (await client.get("/read")).json() == {}


# --- regenerate and invalidate --------------------------------------------------------------


async def test_regenerate_changes_id_keeps_data_and_kills_the_old_one(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    old_token = token_of(first)
    old = id_of(old_token, keyring, clock)
    response = await client.get("/regenerate")
    new_token = token_of(response)
    new = id_of(new_token, keyring, clock)
    assert response.json() == {"id": new}
    assert new != old
    assert await store.data(old) is None
    assert await store.data(new) == {"user": "alice"}
    assert (await client.get("/read")).json() == {"user": "alice"}
    client.cookies.clear()
    stale = await client.get("/read", headers={"cookie": f"{COOKIE}={old_token}"})
    assert stale.json() == {}


async def test_regenerate_without_a_session_does_nothing(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    response = await client.get("/regenerate")
    assert response.json() == {"id": None}
    assert session_cookies(response) == []
    assert store.calls == 0


async def test_invalidate_deletes_and_clears(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    token = token_of(first)
    response = await client.get("/invalidate")
    (cleared,) = session_cookies(response)
    assert cleared.startswith(f'{COOKIE}=""; Max-Age=0;')
    assert response.headers["cache-control"] == "no-store"
    assert len(store.inner) == 0
    client.cookies.clear()
    replay = await client.get("/read", headers={"cookie": f"{COOKIE}={token}"})
    assert replay.json() == {}
    assert id_of(token, keyring, clock)  # the token still verifies; its record is gone


async def test_invalidate_then_write_starts_a_new_session(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    old = id_of(token_of(first), keyring, clock)
    response = await client.get("/invalidate-then-flash")
    fresh = id_of(token_of(response), keyring, clock)
    assert response.json() == {"id": fresh}
    assert len(session_cookies(response)) == 1
    assert await store.data(old) is None
    assert await store.data(fresh) == {"flash": "logged out"}


async def test_get_session_id_is_none_then_the_cookie_id(
    client: httpx.AsyncClient, keyring: Keyring, clock: FakeClock
) -> None:
    assert (await client.get("/id")).json() == {"id": None}
    first = await client.get("/set/user?value=alice")
    assert (await client.get("/id")).json() == {"id": id_of(token_of(first), keyring, clock)}


# --- skip header ---------------------------------------------------------------------------


async def test_skip_header_does_nothing_and_never_500s(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(skip_header="X-Skip-Session") as client:
        first = await client.get("/counter")
        calls = store.calls
        skipped = {"x-skip-session": "1"}
        response = await client.get("/none", headers=skipped)
        assert response.status_code == 200
        assert "vary" not in response.headers
        response = await client.get("/counter", headers=skipped)
        assert response.status_code == 400
        assert response.text == "Bad Request"
        response = await client.get("/read", headers=skipped)  # via the dependency
        assert response.status_code == 400
        assert response.headers.get_list("set-cookie") == []
        assert store.calls == calls
        assert (await client.get("/counter")).json() == {"test_counter": 2}
        assert token_of(first)


async def test_skip_header_with_a_value(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(skip_header=("x-health", "probe")) as client:
        assert (await client.get("/counter", headers={"x-health": "other"})).status_code == 200
        assert (await client.get("/counter", headers={"x-health": "probe"})).status_code == 400


async def test_skipped_handler_that_catches_the_error(store: SpyStore, keyring: Keyring) -> None:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring, skip_header="x-skip")

    @app.get("/")
    async def handler(request: Request) -> str:
        try:
            request.state.session.get_session()
        except SessionSkippedError:
            return "skipped"
        return "session"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/", headers={"x-skip": ""})).json() == "skipped"
        assert (await c.get("/")).json() == "session"


# --- autoload=False ---------------------------------------------------------------------------


async def test_autoload_false_touches_no_store_until_asked(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(autoload=False) as client:
        assert (await client.get("/loaded-counter")).json() == {"n": 1}
        assert (await client.get("/loaded-counter")).json() == {"n": 2}
        calls = store.calls
        for _ in range(5):
            response = await client.get("/none")
            assert response.status_code == 200
        assert store.calls == calls
        response = await client.get("/sync-unloaded")
        assert response.json() == "not loaded: SessionNotLoadedError"
        assert store.calls == calls
        assert (await client.get("/loaded")).json() == {"n": 2}
        assert store.loads == 2  # the second counter and /loaded; the first had no cookie


async def test_autoload_false_without_cookie_loads_nothing(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(autoload=False) as client:
        assert (await client.get("/loaded")).json() == {}
        assert (await client.get("/sync-unloaded")).json() == "not loaded: SessionNotLoadedError"
    assert store.calls == 0


async def test_autoload_false_store_failure_in_handler_is_503(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(autoload=False) as client:
        await client.get("/loaded-counter")
        store.fail_load = True
        response = await client.get("/loaded-counter")
        assert response.status_code == 503
        response = await client.get("/loaded")  # through the dependency
        assert response.status_code == 503


# --- concurrent changes ------------------------------------------------------------------------


async def test_concurrent_save_is_merged_not_lost(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """A request that saves while another holds the session: both changes survive."""
    app = build_app(store, keyring, clock)
    inner: list[httpx.AsyncClient] = []

    @app.get("/slow-set/{key}")
    async def slow_set(key: str, manager: SessionDep) -> str:
        session = manager.get_session()
        session[key] = "slow"
        await inner[0].get("/set/fast?value=fast")  # another request saves first
        return "ok"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        inner.append(c)
        first = await c.get("/set/user?value=alice")
        response = await c.get("/slow-set/mine")
        assert response.status_code == 200
        session_id = id_of(token_of(first), keyring, clock)
        assert await store.data(session_id) == {"user": "alice", "fast": "fast", "mine": "slow"}


async def test_concurrent_invalidate_is_not_undone(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    app = build_app(store, keyring, clock)
    inner: list[httpx.AsyncClient] = []

    @app.get("/write-during-logout")
    async def write_during_logout(manager: SessionDep) -> str:
        manager.get_session()["late"] = "write"
        await inner[0].get("/invalidate")
        return "ok"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        inner.append(c)
        first = await c.get("/set/user?value=alice")
        old = id_of(token_of(first), keyring, clock)
        response = await c.get("/write-during-logout")
        assert response.status_code == 200
        assert session_cookies(response) == []  # the logout response cleared it already
        assert await store.data(old) is None
        assert len(store.inner) == 0


# --- options ---------------------------------------------------------------------------------


async def test_flat_cookie_options(make_client: Callable[..., httpx.AsyncClient]) -> None:
    async with make_client(
        cookie_name="sid",
        secure=True,
        http_only=False,
        max_age=3600,
        same_site="strict",
        path="/",
        domain="testserver.local",
    ) as client:
        (header,) = session_cookies(await client.get("/counter"), "sid")
        assert header.endswith(
            "; Max-Age=3600; Path=/; Domain=testserver.local; Secure; SameSite=strict"
        )


async def test_cookie_settings_object_and_state_attribute(
    store: SpyStore, keyring: Keyring
) -> None:
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=store,
        keys=keyring,
        cookie=CookieSettings(name="__Host-s"),
        state_attribute="sess",
    )

    @app.get("/")
    async def handler(request: Request) -> int:
        session = request.state.sess.get_session()
        session["n"] = session.get("n", 0) + 1
        return int(session["n"])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        first = await c.get("/")
        (header,) = session_cookies(first, "__Host-s")
        assert "Max-Age" not in header  # None: a browser-session cookie
        assert (await c.get("/")).json() == 2


def test_invalid_options_raise_at_construction(store: SpyStore, keyring: Keyring) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        pass

    with pytest.raises(ValueError, match="either"):
        session_middleware(app, store=store, keys=keyring, cookie=CookieSettings(), secure=False)
    with pytest.raises(ValueError, match=r"not both \(given: secure\)"):  # even at its default
        session_middleware(
            app, store=store, keys=keyring, cookie=CookieSettings(secure=False), secure=True
        )
    with pytest.raises(TypeError, match="cookie_nmae"):
        session_middleware(app, store=store, keys=keyring, cookie_nmae="x")  # type: ignore[call-arg]
    typed = FastAPI()  # mypy checks the flat options through add_middleware too
    typed.add_middleware(session_middleware, store=store, keys=keyring, secure="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        session_middleware(app, store=store, keys=keyring, state_attribute="not valid")
    with pytest.raises(ValueError, match="identifier"):  # request.state's own "_state"
        session_middleware(app, store=store, keys=keyring, state_attribute="_state")
    bad_skips: list[Any] = [
        "bad header",
        "cookie",  # the session cookie itself: never a skip signal
        {"header_name": "X-Skip", "header_value": "1"},  # authx-extra's shape
        ["x-skip", "x-health"],  # authx-extra's list of headers
        ("x-a", 1),
        ("x-a", "1", "2"),
        ("x-a", " 1"),  # servers strip outer spaces: could never match
        ("x-a", "1\r\nX-Evil: 1"),
        ("x-a", "\u20ac"),  # not Latin-1: no header carries it
    ]
    for bad in bad_skips:
        with pytest.raises(ValueError, match="skip_header"):
            session_middleware(app, store=store, keys=keyring, skip_header=bad)
    for good in [("x-a", ""), ("x-a", "a\tb"), ("x-a", "caf\u00e9"), ("x-a", "Bearer abc==")]:
        assert isinstance(
            session_middleware(app, store=store, keys=keyring, skip_header=good), SessionMiddleware
        )
    with pytest.raises(ValueError, match="SameSite=None"):
        session_middleware(app, store=store, keys=keyring, same_site="none", secure=False)
    with pytest.raises(ValueError, match="empty"):
        session_middleware(app, store=store, keys="")
    built = session_middleware(app, store=store, keys="k" * 32)
    assert isinstance(built, SessionMiddleware)


async def test_lifespan_and_other_scopes_pass_through(store: SpyStore, keyring: Keyring) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:  # pragma: no cover
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:  # pragma: no cover
        pass

    middleware = session_middleware(app, store=store, keys=keyring)
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await middleware(scope, receive, send)
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]
    assert store.calls == 0


async def test_dependency_without_middleware_is_a_clear_error() -> None:
    app = FastAPI()

    @app.get("/")
    async def handler(manager: SessionDep) -> str:  # pragma: no cover
        return "unreachable"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        with pytest.raises(SessionMiddlewareMissingError, match="add_middleware"):
            await c.get("/")


async def test_state_and_dependency_hold_the_same_manager(
    store: SpyStore, keyring: Keyring
) -> None:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring)

    @app.get("/")
    async def handler(request: Request, manager: SessionDep) -> bool:
        return request.state.session is manager and get_session_manager(request) is manager

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/")).json() is True


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
