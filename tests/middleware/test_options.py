"""The session middleware: Options, checked at construction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import fastapi.dependencies.utils
import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send
from typing_extensions import TypedDict

from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.errors import SessionMiddlewareMissingError
from typed_sessions.adapters.middleware import SessionMiddleware, session_middleware
from typed_sessions.adapters.session_deps import (
    LoadedSessionDep,
    SessionDep,
    get_session_manager,
)
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore

from .conftest import BASE, SpyStore, session_cookies

pytestmark = pytest.mark.anyio

# --- options ---------------------------------------------------------------------------------


async def test_every_cookie_option(make_client: Callable[..., httpx.AsyncClient]) -> None:
    cookie = CookieSettings(
        name="sid",
        secure=True,
        httponly=False,
        max_age=3600,
        samesite="strict",
        path="/",
        domain="testserver.local",
    )
    async with make_client(cookie=cookie) as client:
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

    # One spelling of every cookie option: CookieSettings; the page's flat names are refused.
    with pytest.raises(TypeError, match="secure"):
        session_middleware(app, store=store, keys=keyring, secure=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="CookieSettings"):
        session_middleware(app, store=store, keys=keyring, cookie="sid")  # type: ignore[arg-type]
    typed = FastAPI()  # mypy checks the options through add_middleware too
    typed.add_middleware(session_middleware, store=store, keys=keyring, autoload="yes")  # type: ignore[arg-type]
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
        return request.state.session is manager and await get_session_manager(request) is manager

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/")).json() is True


async def test_the_dependencies_run_on_the_event_loop_not_in_a_thread_pool(
    store: SpyStore, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI runs a plain ``def`` dependency in its thread pool: a thread hop per request."""

    async def no_thread_pool(*_: object, **__: object) -> NoReturn:
        raise AssertionError("a session dependency was run in the thread pool")

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", no_thread_pool)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring, autoload=False)

    @app.get("/")
    async def handler(manager: SessionDep, loaded: LoadedSessionDep) -> bool:
        return manager is loaded

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/")).json() is True


class Profile(BaseModel):
    name: str


class Cart(TypedDict):
    items: list[str]


class HalfAStore:
    """A store missing ``save`` and ``delete`` (an untyped app's mistake)."""

    async def load(self, session_id: str) -> None:
        return None


def test_an_object_that_is_not_a_store_is_refused_at_construction(keyring: Keyring) -> None:
    """Its first save would fail after the handler ran (a 500): refused when the app builds,
    by the middleware and by the dependencies alike."""
    untyped: tuple[Any, ...] = (object(), HalfAStore(), {"load": None})  # as from an untyped app
    for store in untyped:
        with pytest.raises(TypeError, match="is not a session store: it has no"):
            session_middleware(FastAPI(), store=store, keys=keyring)
        with pytest.raises(TypeError, match="is not a session store"):
            make_cookie_dependency(store, lambda session: True, keys=keyring)
    with pytest.raises(TypeError, match="it has no save, delete"):
        session_middleware(FastAPI(), store=HalfAStore(), keys=keyring)  # type: ignore[arg-type]


def test_a_store_of_typed_data_is_refused_at_construction(keyring: Keyring) -> None:
    """The middleware's session is a dict: a store of a model would fail on the second
    request (the loaded record holds a model), so it is refused when the app builds."""
    refused: tuple[object, ...] = (Profile, list[int], int | str)
    accepted: tuple[object, ...] = (dict[str, Any], dict, Any, dict[str, int], Cart)
    for data_type in refused:
        typed: MemoryStore[Any] = MemoryStore(data_type)
        with pytest.raises(TypeError, match="keeps a dict in each session"):
            session_middleware(FastAPI(), store=typed, keys=keyring)
    for data_type in accepted:
        fine: MemoryStore[Any] = MemoryStore(data_type)
        session_middleware(FastAPI(), store=fine, keys=keyring)
