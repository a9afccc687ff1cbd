"""Data over the store's ``max_data_bytes`` is refused through every adapter, before any
write: the middleware raises :class:`SessionTooLargeError` (a 500 that names size and
limit) and sends no cookie; the lifecycle actions raise it and save nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from pydantic_core import to_json

from typed_sessions import (
    MemoryStore,
    Session,
    SessionId,
    SessionTooLargeError,
    make_cookie_dependency,
    session_middleware,
)

from .conftest import SECRET

pytestmark = pytest.mark.anyio
BASE = "https://testserver"
COOKIE = "__Host-session"
LIMIT = 1024
BIG = "x" * (2 * LIMIT)


def middleware_app(store: MemoryStore[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET)

    @app.get("/set/{size}")
    async def put(size: int, request: Request) -> str:
        request.state.session.get_session()["blob"] = "x" * size
        return "ok"

    return app


async def test_the_middleware_refuses_a_new_session_too_large() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_data_bytes=LIMIT)
    transport = httpx.ASGITransport(app=middleware_app(store), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.get(f"/set/{2 * LIMIT}")
    assert answer.status_code == 500
    assert "set-cookie" not in answer.headers
    assert len(store) == 0


async def test_the_middleware_refuses_an_update_too_large_and_keeps_the_record() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_data_bytes=LIMIT)
    app = middleware_app(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        assert (await client.get("/set/10")).status_code == 200
        assert len(store) == 1
        with pytest.raises(SessionTooLargeError, match=f"over the limit of {LIMIT} bytes"):
            await client.get(f"/set/{2 * LIMIT}")
        assert (await client.get("/set/20")).status_code == 200  # the session lives on
    assert len(store) == 1


async def test_the_limit_is_on_the_codecs_json_on_the_memory_stores_lane_too() -> None:
    """The lane keeps the stdlib's JSON, which writes ``1e-05`` where the codec writes
    ``0.00001``: data under the limit in the one, over it in the other, is measured as the
    codec writes it, as every other store and path does (found by an audit)."""
    data = {"a": [1e-05] * 5}
    limit = len(to_json(data)) - 1
    assert len(json.dumps(data, separators=(",", ":"))) < limit
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_data_bytes=limit)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET)

    @app.get("/set")
    async def put(request: Request) -> str:
        session = request.state.session.get_session()
        session["a"] = [1e-05] * 5 if session else 0
        return str(request.state.session.get_session_id())

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        first = await client.get("/set")  # a session, saved
        assert (await client.get("/set")).status_code == 500  # through the lane
    stored = await store.load(SessionId(first.json()))
    assert stored is not None
    assert stored.data == {"a": 0}


def lifecycle_app(store: MemoryStore[dict[str, Any]]) -> FastAPI:
    current = make_cookie_dependency(store, lambda s: True, keys=SECRET)
    app = FastAPI()

    @app.post("/start/{size}")
    async def start(size: int, response: Response) -> str:
        await current.start(response, {"blob": "x" * size})
        return "started"

    @app.post("/rotate/{size}")
    async def rotate(
        size: int,
        response: Response,
        session: Session[dict[str, Any]] = Depends(current),  # noqa: B008
    ) -> str:
        await current.rotate(response, session, update=lambda d: {**d, "blob": "x" * size})
        return "rotated"

    @app.post("/issue/{size}")
    async def issue(size: int) -> str:
        return (await current.issue({"blob": "x" * size})).token

    @app.get("/me")
    async def me(session: Session[dict[str, Any]] = Depends(current)) -> int:  # noqa: B008
        return len(session.data["blob"])

    return app


async def test_the_lifecycle_actions_refuse_data_too_large_and_write_nothing() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_data_bytes=LIMIT)
    app = lifecycle_app(store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for path in (f"/start/{2 * LIMIT}", f"/issue/{2 * LIMIT}"):
            with pytest.raises(SessionTooLargeError):
                await client.post(path)
            assert len(store) == 0
            assert COOKIE not in client.cookies
        assert (await client.post("/start/10")).status_code == 200
        token = client.cookies[COOKIE]
        with pytest.raises(SessionTooLargeError):
            await client.post(f"/rotate/{2 * LIMIT}")
        assert client.cookies[COOKIE] == token  # no new cookie: the old session stands
        assert (await client.get("/me")).json() == 10
    assert len(store) == 1
