"""The session middleware: The skip header and autoload=False."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request

from typed_sessions.adapters.errors import SessionSkippedError
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.skipped import SkippedSession
from typed_sessions.core.signing import Keyring

from .conftest import BASE, SpyStore, token_of

pytestmark = pytest.mark.anyio

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


@pytest.mark.parametrize(
    "call", ["get_session", "get_session_id", "start", "regenerate", "invalidate"]
)
def test_every_method_of_a_skipped_request_says_so(call: str) -> None:
    """Found by a review: ``start()`` (and ``sign_in``) were missing: an
    ``AttributeError``, a 500, where every other method answers 400."""
    skipped = SkippedSession()
    with pytest.raises(SessionSkippedError):
        getattr(skipped, call)()
    with pytest.raises(SessionSkippedError):
        skipped.sign_in("ada")
