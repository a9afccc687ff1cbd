"""The middleware's sign_in(subject): a new ID, the subject, auth_time and the device."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import SECRET
from typed_sessions import MemoryStore, SessionDep, session_middleware

pytestmark = pytest.mark.anyio


def app_with(store: MemoryStore[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET)

    @app.post("/login/{user}")
    async def login(user: str, session: SessionDep) -> str:
        session.sign_in(user)
        return user

    @app.post("/aborted-login/{user}")
    async def aborted_login(user: str, session: SessionDep) -> str:
        session.sign_in(user)
        session.invalidate()  # say the second factor failed: nobody is signed in
        return user

    @app.post("/cart/{item}")
    async def cart(item: str, session: SessionDep) -> str:
        session.get_session()[item] = 1
        return item

    @app.get("/id")
    async def session_id(session: SessionDep) -> str | None:
        return session.get_session_id()

    return app


async def test_sign_in_moves_the_session_to_its_subject() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    transport = httpx.ASGITransport(app=app_with(store))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post("/cart/tea")).status_code == 200  # an anonymous session
        before = dict(client.cookies)
        answer = await client.post("/login/ada", headers={"user-agent": "Firefox/140"})
        assert answer.status_code == 200
        after = dict(client.cookies)
        assert before.keys() == after.keys()
        assert before != after  # a new ID (fixation defence)
        (info,) = await store.list_subject("ada")
        assert info.device is not None
        assert info.device.user_agent == "Firefox/140"
        assert info.auth_time is not None
        assert (await client.post("/login/")).status_code in (404, 405)


async def test_sign_in_without_a_session_starts_one_and_bad_subjects_are_refused() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    transport = httpx.ASGITransport(app=app_with(store), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post("/login/ada")).status_code == 200
        assert len(await store.list_subject("ada")) == 1
        assert (await client.post("/login/" + "x" * 300)).status_code == 500  # a programming error


async def test_invalidate_after_sign_in_signs_nobody_in() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    transport = httpx.ASGITransport(app=app_with(store))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post("/cart/tea")).status_code == 200  # an anonymous session
        answer = await client.post("/aborted-login/ada")
        assert answer.status_code == 200
        assert await store.list_subject("ada") == []
        assert "Max-Age=0" in answer.headers["set-cookie"]  # the session ended, cookie cleared
        assert len(store) == 0
        answer = await client.post("/aborted-login/ada")  # without a session: none made
        assert "set-cookie" not in answer.headers
        assert len(store) == 0
