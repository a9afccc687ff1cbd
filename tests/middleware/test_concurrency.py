"""The session middleware: Concurrent changes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import FakeClock
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.signing import Keyring

from .conftest import BASE, SpyStore, build_app, id_of, session_cookies, token_of

pytestmark = pytest.mark.anyio

# --- concurrent changes ------------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [20, 1])
async def test_concurrent_save_is_merged_not_lost(
    store: SpyStore, keyring: Keyring, clock: FakeClock, attempts: int
) -> None:
    """A request that saves while another holds the session: both changes survive.
    ``save_attempts=1`` is one merge (found by an audit: it was none)."""
    app = build_app(store, keyring, clock, save_attempts=attempts)
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
        assert response.status_code == 409  # its write could not be saved: told, not dropped
        assert session_cookies(response) == []  # the logout response cleared it already
        assert await store.data(old) is None
        assert len(store.inner) == 0
