"""Routes that depend on a session say so to caches: ``Vary`` names the cookie or header
that carried it, and ``Cache-Control: private, no-store`` keeps a shared cache from
storing one user's page, unless the route sets its own policy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Response

from typed_sessions import MemoryStore, Session, make_cookie_dependency, make_header_dependency

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
