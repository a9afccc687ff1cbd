"""The session middleware: a cookie is adopted only when it verifies and names a live record."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.conftest import FakeClock
from typed_sessions.core.ids import new_session_id
from typed_sessions.core.signing import Keyring, sign_session_id

from .conftest import BASE, COOKIE, SpyStore, build_app, id_of, session_cookies, token_of

pytestmark = pytest.mark.anyio

# --- strict IDs -------------------------------------------------------------------------


async def test_tampered_cookie_gets_a_fresh_id_and_is_never_written(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    token = token_of(first)
    original = id_of(token, keyring, clock)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    client.cookies.clear()
    response = await client.get(
        "/set/user?value=mallory", headers={"cookie": f"{COOKIE}={tampered}"}
    )
    fresh = id_of(token_of(response), keyring, clock)
    assert fresh != original
    assert await store.data(original) == {"user": "alice"}
    assert await store.data(fresh) == {"user": "mallory"}
    assert len(store.inner) == 2


async def test_attacker_chosen_id_is_never_adopted(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    chosen = "attacker-chosen-id"
    response = await client.get("/set/user?value=x", headers={"cookie": f"{COOKIE}={chosen}"})
    fresh = id_of(token_of(response), keyring, clock)
    assert fresh != chosen
    assert await store.data(chosen) is None
    assert store.loads == 0  # a cookie that does not verify never reaches the store


async def test_cookie_split_over_several_headers_is_found(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    token = token_of(await client.get("/set/user?value=alice"))
    client.cookies.clear()
    headers = [("cookie", "theme=dark"), ("cookie", f"{COOKIE}={token}; lang=en")]
    response = await client.get("/read", headers=headers)
    assert response.json() == {"user": "alice"}


async def test_token_for_another_key_is_refused(
    client: httpx.AsyncClient, store: SpyStore, clock: FakeClock
) -> None:
    other = Keyring.from_secrets("another-secret-of-enough-length-0123456789")
    forged = sign_session_id(new_session_id(), other, now=clock())
    response = await client.get("/read", headers={"cookie": f"{COOKIE}={forged}"})
    assert response.json() == {}
    assert store.loads == 0
    assert session_cookies(response) == []  # not provably ours: left alone


async def test_cookie_naming_a_deleted_record_is_not_adopted(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    old = id_of(token_of(first), keyring, clock)
    await store.inner.delete(old)
    read = await client.get("/read")
    assert read.json() == {}
    # Not cleared: the browser may hold a newer cookie by now (see the next test).
    assert session_cookies(read) == []
    assert read.headers["cache-control"] == "private"
    write = await client.get("/set/user?value=bob")
    fresh = id_of(token_of(write), keyring, clock)
    assert fresh != old
    assert await store.data(old) is None
    assert await store.data(fresh) == {"user": "bob"}


async def test_a_request_with_the_cookie_from_before_a_sign_in_keeps_the_new_cookie(
    client: httpx.AsyncClient, keyring: Keyring, clock: FakeClock
) -> None:
    """A request sent with the old cookie (a poll), answered after a regenerate (a sign-in)
    deleted its record, sets no cookie: a clearing one, arriving after the sign-in's,
    would delete the browser's new session cookie (an audit's case: signed out at once)."""
    before = token_of(await client.get("/set/user?value=alice"))
    signed_in = await client.get("/regenerate")
    after = token_of(signed_in)
    assert id_of(after, keyring, clock) != id_of(before, keyring, clock)
    late = await client.get("/read", headers={"cookie": f"{COOKIE}={before}"})
    assert (late.status_code, late.json(), session_cookies(late)) == (200, {}, [])
    assert client.cookies[COOKIE] == after
    assert (await client.get("/read")).json() == {"user": "alice"}


async def test_expired_token_is_not_adopted_and_is_cleared(
    client: httpx.AsyncClient, store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    first = await client.get("/set/user?value=alice")
    clock.advance(timedelta(hours=13))  # past the absolute lifetime and the token's age
    response = await client.get("/read")
    assert response.json() == {}
    (cleared,) = session_cookies(response)
    assert "Max-Age=0" in cleared
    assert id_of(token_of(first), keyring, clock)  # verifies without max_age; not adopted


async def test_expired_record_from_a_lagging_store_is_not_adopted(
    keyring: Keyring, clock: FakeClock
) -> None:
    store = SpyStore(FakeClock())  # the store's clock stays behind the middleware's
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/set/user?value=alice")
        clock.advance(timedelta(minutes=31))
        response = await c.get("/read")
        assert response.json() == {}
        assert store.loads == 1
        assert session_cookies(response) == []  # not adopted, and left alone
