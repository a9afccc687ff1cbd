"""The session middleware: The app's own headers, next to the session's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from typed_sessions import Keyring, MemoryStore, SessionDep, session_middleware
from typed_sessions.adapters.headers import session_headers, vary_cookie

from .conftest import session_cookies

pytestmark = pytest.mark.anyio

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
    out = session_headers(app_headers, "session=x", vary=True)
    values = {
        field: [v.decode() for n, v in out if n.lower() == field.encode()]
        for field in ("vary", "cache-control", "set-cookie")
    }
    assert values == {"vary": vary, "cache-control": cache_control, "set-cookie": ["session=x"]}


async def test_reading_routes_vary_on_cookie_and_stay_out_of_shared_caches(
    client: httpx.AsyncClient,
) -> None:
    """A response built from the session is one user's: ``Vary: Cookie`` tells caches,
    and ``Cache-Control: private`` keeps shared ones (many ignore ``Vary``) from serving
    it to others, unless the app set its own ``Cache-Control``."""
    for path in ("/read", "/id"):
        response = await client.get(path)
        assert response.headers.get_list("vary") == ["Cookie"]
        assert response.headers.get_list("cache-control") == ["private"]
    untouched = await client.get("/none")
    assert "vary" not in untouched.headers
    assert "cache-control" not in untouched.headers


@pytest.mark.parametrize(
    ("app_headers", "vary", "cache_control"),
    [
        ([], ["Cookie"], ["private"]),
        ([(b"vary", b"Accept")], ["Accept, Cookie"], ["private"]),
        ([(b"Cache-Control", b"public, max-age=60")], ["Cookie"], ["public, max-age=60"]),
        ([(b"cache-control", b"no-cache")], ["Cookie"], ["no-cache"]),
    ],
)
def test_without_a_cookie_to_send_the_apps_cache_control_stands(
    app_headers: list[tuple[bytes, bytes]], vary: list[str], cache_control: list[str]
) -> None:
    for made in (vary_cookie(list(app_headers)), session_headers(app_headers, None, vary=True)):
        values = {
            field: [v.decode() for n, v in made if n.lower() == field.encode()]
            for field in ("vary", "cache-control")
        }
        assert values == {"vary": vary, "cache-control": cache_control}
    assert session_headers(app_headers, None, vary=False) == app_headers  # not read: as is


async def test_an_app_sending_one_start_message_to_everyone_never_passes_on_a_cookie() -> None:
    """Found by an audit: the session's headers were written into the app's own
    ``http.response.start`` dict. An app sending one such dict to every client (a
    constant) handed the next visitor, without any cookie, the last one's session."""
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/login":
            scope["state"]["session"].get_session()["user"] = "alice"
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = session_middleware(
        app, store=MemoryStore(dict[str, Any]), keys=Keyring.from_secrets("s" * 40)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wrapped), base_url="https://testserver"
    ) as alice:
        assert len(session_cookies(await alice.get("/login"))) == 1
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wrapped), base_url="https://testserver"
    ) as bob:
        reply = await bob.get("/public")
    assert "set-cookie" not in reply.headers
    assert start["headers"] == []


async def test_a_body_streamed_from_the_session_still_varies_with_the_cookie() -> None:
    """Found by an audit: a handler taking ``SessionDep`` whose streamed body reads the
    session (after the response started) got no ``Vary: Cookie`` or ``Cache-Control:
    private``: a shared cache could keep one user's page for all. Taking the session
    from ``SessionDep`` counts as using it."""
    app = FastAPI()

    @app.post("/login")
    async def login(session: SessionDep) -> None:
        session.get_session()["user"] = "alice"

    @app.get("/page")
    async def page(session: SessionDep) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"Hello "
            yield str(session.get_session().get("user", "guest")).encode()

        return StreamingResponse(body())

    app.add_middleware(
        session_middleware, store=MemoryStore(dict[str, Any]), keys=Keyring.from_secrets("s" * 40)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as client:
        await client.post("/login")
        reply = await client.get("/page")
    assert reply.text == "Hello alice"
    assert reply.headers.get_list("vary") == ["Cookie"]
    assert reply.headers.get_list("cache-control") == ["private"]
