"""Routes that depend on a session say so to caches: ``Vary`` names the cookie or header
that carried it, and ``Cache-Control: private, no-store`` keeps a shared cache from
storing one user's page, unless the route sets its own policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Response

from typed_sessions import (
    ErrorMapping,
    MemoryStore,
    Session,
    SessionFailure,
    SessionId,
    SessionInfo,
    StoreError,
    StoreUnavailableError,
    default_error_mapping,
    issue_session,
    make_cookie_dependency,
    make_header_dependency,
    store_error_handler,
)

from .conftest import SECRET

pytestmark = pytest.mark.anyio
BASE = "https://testserver"


def build() -> FastAPI:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    cookie = make_cookie_dependency(store, lambda s: True, keys=SECRET)
    header = make_header_dependency(store, lambda s: True, keys=SECRET)
    maybe = cookie.optional()
    app = FastAPI()

    @app.post("/login")
    async def login(response: Response) -> str:
        await cookie.start(response, {"user": "ada"})
        return (await header.issue({"user": "api"})).token

    @app.get("/me")
    async def me(session: Session[dict[str, Any]] = Depends(cookie)) -> str:  # noqa: B008
        return str(session.data["user"])

    @app.get("/maybe")
    async def maybe_me(session: Session[dict[str, Any]] | None = Depends(maybe)) -> str:  # noqa: B008
        return "anonymous" if session is None else "user"

    @app.get("/api")
    async def api(session: Session[dict[str, Any]] = Depends(header)) -> str:  # noqa: B008
        return str(session.data["user"])

    @app.get("/public-ish")
    async def own_policy(
        response: Response,
        session: Session[dict[str, Any]] = Depends(cookie),  # noqa: B008
    ) -> str:
        response.headers["cache-control"] = "private, max-age=60"
        return "mine"

    return app


async def test_session_routes_vary_and_are_not_stored_by_shared_caches() -> None:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = (await client.post("/login")).json()
        me = await client.get("/me")
        assert me.text == '"ada"'
        assert me.headers["vary"] == "Cookie"
        assert me.headers["cache-control"] == "private, no-store"
        api = await client.get("/api", headers={"X-Session": token})
        assert api.headers["vary"] == "X-Session"
        assert api.headers["cache-control"] == "private, no-store"
        client.cookies.clear()
        refused = await client.get("/me")  # a 401 varies too
        assert refused.status_code == 401
        anonymous = await client.get("/maybe")
        assert anonymous.headers["vary"] == "Cookie"  # anonymous today, a user tomorrow
        assert anonymous.headers["cache-control"] == "private, no-store"


async def test_a_route_sets_its_own_cache_policy() -> None:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await client.post("/login")
        own = await client.get("/public-ish")
    assert own.headers.get_list("cache-control") == ["private, max-age=60"]
    assert own.headers["vary"] == "Cookie"


class _DownStore(MemoryStore[dict[str, Any]]):
    """Loads fail as a store outage does."""

    async def load(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        raise StoreUnavailableError("down")


def refusing_app(store: MemoryStore[dict[str, Any]], on_error: ErrorMapping | None) -> FastAPI:
    mapping = default_error_mapping if on_error is None else on_error
    cookie = make_cookie_dependency(store, lambda s: False, keys=SECRET, on_error=mapping)
    header = make_header_dependency(store, lambda s: True, keys=SECRET, on_error=mapping)
    admitting = make_cookie_dependency(store, lambda s: True, keys=SECRET, on_error=mapping)
    fresh = admitting.fresh(timedelta(minutes=5))  # never signed in: asked to, with a 401
    app = FastAPI()

    @app.get("/me")
    async def me(session: Session[dict[str, Any]] = Depends(cookie)) -> str:  # noqa: B008
        return "never"

    @app.get("/api")
    async def api(session: Session[dict[str, Any]] = Depends(header)) -> str:  # noqa: B008
        return "never"

    @app.get("/sensitive")
    async def sensitive(session: Session[dict[str, Any]] = Depends(fresh)) -> str:  # noqa: B008
        return "never"

    return app


async def test_refusals_vary_and_are_not_stored_either() -> None:
    """401, 403, the step-up 401 and 503: each answer depends on the cookie (or header)
    as much as a 200 does, so each says so and keeps shared caches out."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    issued = await issue_session(store, {"user": "ada"}, keys=SECRET)
    cookie = {"cookie": f"__Host-session={issued.token}"}
    answers: list[tuple[int, httpx.Response]] = []
    transport = httpx.ASGITransport(app=refusing_app(store, None))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answers.append((401, await client.get("/me")))
        answers.append((403, await client.get("/me", headers=cookie)))
        answers.append((401, await client.get("/sensitive", headers=cookie)))
    down = httpx.ASGITransport(app=refusing_app(_DownStore(dict[str, Any]), None))
    async with httpx.AsyncClient(transport=down, base_url=BASE) as client:
        answers.append((503, await client.get("/me", headers=cookie)))
        api = await client.get("/api", headers={"x-session": issued.token})
    for status, answer in answers:
        assert answer.status_code == status
        assert answer.headers["vary"] == "Cookie"
        assert answer.headers["cache-control"] == "private, no-store"
    assert (api.status_code, api.headers["vary"]) == (503, "X-Session")


async def test_a_mapping_keeps_its_own_cache_policy_and_vary() -> None:
    def mapping(failure: SessionFailure) -> Exception:
        headers = {"Cache-Control": "no-cache", "vary": "Accept"}
        return HTTPException(418, failure.reason, headers=headers)

    transport = httpx.ASGITransport(app=refusing_app(MemoryStore(dict[str, Any]), mapping))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        twice = [await client.get("/me"), await client.get("/me")]  # one mapping, called again
    for answer in twice:
        assert answer.status_code == 418
        assert answer.headers.get_list("cache-control") == ["no-cache"]
        assert answer.headers["vary"] == "Accept, Cookie"


# --- found by an audit ----------------------------------------------------------------


class FailingIndexStore(MemoryStore[dict[str, Any]]):
    """A memory store whose subject listing fails, as Redis does when it is down."""

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        raise StoreUnavailableError("timed out")


async def test_a_store_failure_inside_a_route_is_answered_no_store() -> None:
    """A ``StoreError`` from ``current.sessions_of()`` inside the route, answered by
    ``store_error_handler`` as the docs say: a response of its own, without the
    dependency's headers, so it says ``no-store`` itself (it had no cache policy)."""
    store = FailingIndexStore(dict[str, Any])
    current = make_cookie_dependency(store, lambda s: True, keys=SECRET)
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)

    @app.get("/sessions")
    async def sessions(
        session: Session[dict[str, Any]] = Depends(current),  # noqa: B008
    ) -> list[SessionInfo]:
        return await current.sessions_of(session)

    issued = await current.issue({"u": "ada"}, subject="ada")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.get("/sessions", headers={"cookie": f"__Host-session={issued.token}"})
    assert answer.status_code == 503
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("theirs", ["X-Cookie-Consent", "Accept, Cookie-Jar"])
async def test_an_on_error_vary_naming_a_longer_header_still_gets_cookie(theirs: str) -> None:
    """An ``on_error`` exception with a ``Vary`` of its own gets ``Cookie`` added unless it
    lists that very name: ``X-Cookie-Consent`` merely contains it (a substring test took
    it for listed, and the 401 no longer varied on the session cookie)."""

    def mapping(failure: SessionFailure) -> Exception:
        exc = default_error_mapping(failure)
        exc.headers = {**(exc.headers or {}), "Vary": theirs}
        return exc

    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    current = make_cookie_dependency(store, lambda s: True, keys=SECRET, on_error=mapping)
    app = FastAPI()

    @app.get("/me")
    async def me(session: Session[dict[str, Any]] = Depends(current)) -> Any:  # noqa: B008
        return session.data

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.get("/me")
    assert answer.status_code == 401
    assert answer.headers["vary"] == f"{theirs}, Cookie"
