"""The session middleware: The seed's counter, and no store work for requests that never write."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import FakeClock
from typed_sessions.core.signing import Keyring

from .conftest import SpyStore, id_of, session_cookies, token_of

pytestmark = pytest.mark.anyio

# --- the seed's counter ---------------------------------------------------------------


async def test_counter_goes_one_two_three(client: httpx.AsyncClient, store: SpyStore) -> None:
    results: list[int] = []
    for _ in range(3):
        response = await client.get("/counter")
        assert response.status_code == 200
        results.append(response.json()["test_counter"])
    assert results == [1, 2, 3]
    assert len(store.inner) == 1


async def test_new_session_sets_one_secure_cookie_then_none(client: httpx.AsyncClient) -> None:
    first = await client.get("/counter")
    (header,) = session_cookies(first)
    assert "; Path=/; HttpOnly; Secure; SameSite=lax" in header
    assert "Max-Age" not in header  # a browser-session cookie by default
    assert first.headers["cache-control"] == "no-store"
    second = await client.get("/counter")
    assert session_cookies(second) == []
    assert second.headers["cache-control"] == "private"  # one user's page, no cookie sent


# --- no store work for requests that never write ----------------------------------------


async def test_thousand_cookieless_reads_leave_no_trace(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    for _ in range(1000):
        client.cookies.clear()
        response = await client.get("/read")
        assert response.json() == {}
        assert response.headers.get_list("set-cookie") == []
    assert len(store.inner) == 0
    assert store.calls == 0


async def test_route_that_never_asks_has_no_vary_and_no_store_access(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    response = await client.get("/none")
    assert response.json() == {"hello": "world"}
    assert "vary" not in response.headers
    assert store.calls == 0


async def test_unchanged_read_does_not_save(client: httpx.AsyncClient, store: SpyStore) -> None:
    await client.get("/set/user?value=alice")
    assert store.saves == 1
    for _ in range(5):
        response = await client.get("/read")
        assert response.json() == {"user": "alice"}
        assert session_cookies(response) == []
    assert store.saves == 1
    assert store.loads == 5


async def test_setting_a_key_to_its_own_value_does_not_save(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    await client.get("/set/user?value=alice")
    assert store.saves == 1


async def test_nested_change_is_saved(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/nested")
    await client.get("/nested")
    session_id = id_of(token_of(first), keyring, clock)
    assert await store.data(session_id) == {"cart": {"items": ["apple", "apple"]}}
    assert store.saves == 2
