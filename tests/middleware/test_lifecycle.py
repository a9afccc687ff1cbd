"""The session middleware: Sliding expiry, regenerate and invalidate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import FakeClock
from typed_sessions import MemoryStore, SessionDep, session_middleware
from typed_sessions.core.signing import Keyring

from .conftest import COOKIE, SpyStore, id_of, session_cookies, token_of

pytestmark = pytest.mark.anyio

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


async def test_start_stores_a_session_that_holds_no_data_yet() -> None:
    """``start()``: the ID now, the record and its cookie when the response starts, even
    while the session is empty (what authx-extra's ``get_session_id()`` gave)."""
    store = MemoryStore(dict[str, Any])
    app = FastAPI()

    @app.get("/id")
    async def started(session: SessionDep) -> dict[str, Any]:
        first = session.start()
        assert session.start() == first == session.get_session_id()
        return {"id": first, "data": dict(session.get_session())}

    @app.get("/out")
    async def out(session: SessionDep) -> str | None:
        session.start()
        session.invalidate()  # ends what it started: nothing is stored
        return session.get_session_id()

    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets("s" * 40))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as client:
        first = await client.get("/id")
        started_id = first.json()["id"]
        assert first.json()["data"] == {}
        assert len(session_cookies(first)) == 1
        loaded = await store.load(started_id)
        assert loaded is not None
        assert loaded.data == {}
        again = await client.get("/id")  # the same session, loaded: no new cookie
        assert again.json()["id"] == started_id
        assert session_cookies(again) == []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as other:
        ended = await other.get("/out")
        assert ended.json() is None
        assert session_cookies(ended) == []
