"""What a request leaves behind when it loses a race (found by a review): a refused
sign-in ends nobody's session, and a load a handler left waiting for the session's turn
never keeps it once the request ended."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException

from tests.middleware.test_request_races import (
    COOKIE,
    KEYS,
    client,
    counter_app,
    hold_the_turn,
    sid,
    start_session,
)
from typed_sessions import SessionDep, session_middleware
from typed_sessions.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


async def test_a_refused_sign_in_does_not_sign_the_users_other_device_out() -> None:
    """max_per_subject=1. Device 1 is signed in as ada. On device 2, a login request
    signs ada in while another tab logs the anonymous session out: the login is refused
    (409, nothing of it saved). Its new record was saved first, though, and that save
    ran the cap: device 1's session, ada's only one, is gone too."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], max_per_subject=1)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)
    gate = asyncio.Event()
    loaded = asyncio.Event()

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session()["cart"] = ["book"]
        return "ok"

    @app.post("/login-now/{user}")
    async def login_now(user: str, manager: SessionDep) -> str:
        manager.sign_in(user)
        return "ok"

    @app.post("/login/{user}")
    async def login(user: str, manager: SessionDep) -> str:
        manager.get_session()
        loaded.set()
        await gate.wait()  # checking the password; the other tab logs out meanwhile
        manager.sign_in(user)
        return "ok"

    @app.post("/logout")
    async def logout(manager: SessionDep) -> str:
        manager.invalidate()
        return "ok"

    async with client(app) as device1:
        assert (await device1.post("/login-now/ada")).status_code == 200
        device1_token = device1.cookies.get(COOKIE)
    assert device1_token is not None
    assert await store.load(sid(device1_token)) is not None

    token = await start_session(app)
    async with client(app, token) as device2:
        login_call = asyncio.ensure_future(device2.post("/login/ada"))
        await loaded.wait()
        assert (await device2.post("/logout")).status_code == 200
        gate.set()
        login_response = await login_call
    assert login_response.status_code == 409  # refused: ada is not signed in on device 2
    assert await store.list_subject("ada") != [], "ada was signed out everywhere"
    assert await store.load(sid(device1_token)) is not None


async def test_a_load_left_running_by_a_failed_gather_does_not_keep_the_turn() -> None:
    """take_turns=True, autoload=False. A handler loads the session and validates its
    input at once (asyncio.gather); the input is bad (400). gather does not cancel the
    load, which is still waiting for the turn another request of the session holds. The
    response is sent, the middleware gives back the turn it does not hold yet; the turn
    then comes to the orphaned load, which keeps it for ever: every later request of the
    session waits turn_timeout and gets 409."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = counter_app(store, take_turns=True, turn_timeout=1.0)
    holding, release = hold_the_turn(app)

    @app.post("/check/{value}")
    async def check(value: int, manager: SessionDep) -> int:
        async def validate() -> None:
            if value < 0:
                raise HTTPException(400, "negative")

        session, _ = await asyncio.gather(manager.load(), validate())
        return int(session["n"])

    token = await start_session(app)
    async with client(app, token) as c:
        slow_call = asyncio.ensure_future(c.post("/slow"))
        await holding.wait()
        bad = await c.post("/check/-1")
        assert bad.status_code == 400
        release.set()
        assert (await slow_call).status_code == 200
        await asyncio.sleep(0.05)
        after = [(await c.post("/inc")).status_code for _ in range(2)]
    assert after == [200, 200], after  # was [409, 409]: each waited turn_timeout
