"""The session middleware: failures (5xx, store outages, non-JSON data, late writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import FakeClock
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.codec import SessionCodec, SessionEncodeError
from typed_sessions.core.ids import new_session_id
from typed_sessions.core.result import Result
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring, sign_session_id
from typed_sessions.stores.protocol import Conflict

from .conftest import BASE, COOKIE, SpyStore, build_app, id_of, session_cookies, token_of

pytestmark = pytest.mark.anyio

# --- failures ----------------------------------------------------------------------------


async def test_raised_500_leaves_stored_data_unchanged(
    make_client: Callable[..., httpx.AsyncClient], store: SpyStore
) -> None:
    async with make_client(raise_app_exceptions=False) as client:
        first = await client.get("/set/user?value=alice")
        response = await client.get("/boom")
        assert response.status_code == 500
        assert session_cookies(response) == []
        assert (await client.get("/read")).json() == {"user": "alice"}
    assert store.saves == 1
    assert token_of(first)


async def test_returned_500_leaves_stored_data_unchanged(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    response = await client.get("/status500")
    assert response.status_code == 500
    assert (await client.get("/read")).json() == {"user": "alice"}
    assert store.saves == 1


async def test_500_on_a_new_session_stores_nothing(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    response = await client.get("/status500")
    assert response.status_code == 500
    assert session_cookies(response) == []
    assert len(store.inner) == 0


async def test_4xx_still_saves(client: httpx.AsyncClient, store: SpyStore) -> None:
    response = await client.get("/status404")
    assert response.status_code == 404
    assert len(session_cookies(response)) == 1
    assert len(store.inner) == 1


async def test_store_failure_on_load_is_503_and_handler_not_run(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/set/user?value=alice")
    store.fail_load = True
    response = await client.get("/set/user?value=mallory")
    assert response.status_code == 503
    assert response.text == "Service Unavailable"
    assert "redis" not in response.text
    assert session_cookies(response) == []
    store.fail_load = False
    assert (await client.get("/read")).json() == {"user": "alice"}


async def test_store_failure_on_save_is_503_without_cookie(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    store.fail_save = True
    response = await client.get("/counter")
    assert response.status_code == 503
    assert response.text == "Service Unavailable"
    assert response.headers.get_list("set-cookie") == []
    assert len(store.inner) == 0


async def test_store_failure_on_save_of_existing_session_is_503(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    await client.get("/counter")
    store.fail_save = True
    response = await client.get("/counter")
    assert response.status_code == 503
    store.fail_save = False
    assert (await client.get("/counter")).json() == {"test_counter": 2}


async def test_store_failure_on_delete_is_503(client: httpx.AsyncClient, store: SpyStore) -> None:
    await client.get("/set/user?value=alice")
    store.fail_delete = True
    response = await client.get("/invalidate")
    assert response.status_code == 503
    assert session_cookies(response) == []


async def test_non_json_data_raises_before_anything_is_written(
    client: httpx.AsyncClient, store: SpyStore
) -> None:
    with pytest.raises(SessionEncodeError, match="'when'"):
        await client.get("/bad-json")
    assert store.calls == 0
    await client.get("/set/user?value=alice")
    with pytest.raises(SessionEncodeError):
        await client.get("/bad-json")
    assert store.saves == 1
    assert (await client.get("/read")).json() == {"user": "alice"}


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("surrogate", "'text'"),
        ("deep", "'deep'"),
        ("readable-depth", "'deep'"),
        ("keys", "'prefs' holds a dict with the key 1"),
        ("keys-none", "'prefs' holds a dict with the key None"),
    ],
)
async def test_data_the_store_cannot_encode_is_refused_before_writing(
    client: httpx.AsyncClient, store: SpyStore, kind: str, key: str
) -> None:
    """A lone surrogate (e.g. from a hostile JSON body) or too-deep nesting: the same
    clear error as any non-JSON value, raised before the store is touched."""
    await client.get("/set/user?value=alice")
    saves = store.saves
    with pytest.raises(SessionEncodeError, match=key):
        await client.get(f"/unstorable/{kind}")
    assert store.saves == saves
    assert (await client.get("/read")).json() == {"user": "alice"}


async def test_a_nested_str_subclass_key_is_stored_as_its_value(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/unstorable/str-enum-key")).status_code == 200
    assert (await client.get("/read")).json() == {"prefs": {"red": 1}}


class RecordEncodingStore(SpyStore):
    """Encodes the whole record before saving, as RedisStore does (one level deeper than
    the data alone, which is what MemoryStore encodes)."""

    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])

    async def save(
        self, session: Session[dict[str, Any]]
    ) -> Result[Session[dict[str, Any]], Conflict]:
        self.codec.encode(session)
        return await super().save(session)


@pytest.mark.parametrize("depth", [198, 199])
async def test_the_depth_check_comes_before_invalidate_deletes(
    keyring: Keyring, clock: FakeClock, depth: int
) -> None:
    """invalidate() then new data: the old record is deleted first, so the new data must
    be known storable before that; at the very edge of what a record can nest too."""
    store = RecordEncodingStore(clock)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keyring, clock=clock)

    @app.get("/login")
    async def login(manager: SessionDep) -> str:
        manager.get_session()["user"] = "ada"
        return "ok"

    @app.get("/logout-with-flash")
    async def logout_with_flash(manager: SessionDep) -> str:
        manager.invalidate()
        value: Any = 1
        for _ in range(depth):
            value = [value]
        manager.get_session()["flash"] = value
        return "ok"

    @app.get("/read")
    async def read(manager: SessionDep) -> dict[str, Any]:
        return dict(manager.get_session())

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/login")
        if depth == 198:  # storable: the old session ends, the flash is a new one
            assert (await c.get("/logout-with-flash")).status_code == 200
            assert "user" not in (await c.get("/read")).json()
            return
        with pytest.raises(SessionEncodeError, match="'flash'"):
            await c.get("/logout-with-flash")
        assert (await c.get("/read")).json() == {"user": "ada"}  # nothing was deleted


async def test_write_after_the_response_started_raises_not_lost_silently(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.get("/background")
        assert response.status_code == 200
        assert app.state.session_errors == ["closed"]
        assert (await c.get("/read")).json() == {"before": 1}


async def test_session_id_after_the_response_is_the_one_saved(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """From a background task, get_session_id() names the record the cookie carries: a
    new session, a regenerated one, and none at all when the save failed."""
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        created = await c.get("/id-later/ada")
        new_id = id_of(token_of(created), keyring, clock)
        regenerated = await c.get("/id-later/regenerate")
        moved_id = id_of(token_of(regenerated), keyring, clock)
        assert app.state.ids_later == [new_id, moved_id]
        assert new_id != moved_id
        assert await store.inner.load(moved_id) is not None
        store.fail_save = True
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as fresh:
            failed = await fresh.get("/id-later/bob")
        assert failed.status_code == 503
        assert session_cookies(failed) == []
        kept = await c.get("/id-later/regenerate")  # regenerating fails: the old ID stays
        assert kept.status_code == 503
        store.fail_save = False
        failed_handler = await c.get("/id-later/regenerate-fails")  # a 500: nothing saved
        assert failed_handler.status_code == 500
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as fresh:
            emptied = await fresh.get("/id-later/emptied")
        assert session_cookies(emptied) == []
    # Background tasks run after a 503 or a 500 too.
    assert app.state.ids_later[2:] == [None, moved_id, moved_id, None]


async def test_no_id_after_the_response_when_the_store_failed_before_saving(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """Invalidate, then a flash message: the old record's deletion fails, so the flash
    session is never saved, and a background task is told there is no session ID."""
    app = build_app(store, keyring, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.get("/set/user?value=alice")
        store.fail_delete = True
        response = await c.get("/invalidate-then-flash")
    assert response.status_code == 503
    assert session_cookies(response) == []
    assert app.state.ids_later == [None]


async def test_an_emptied_new_session_has_no_id_during_and_after_the_request(
    store: SpyStore, keyring: Keyring, clock: FakeClock
) -> None:
    """A new session emptied again is no session: get_session_id() says None in the
    handler and afterwards, also with a cookie of ours naming no record."""
    app = build_app(store, keyring, clock)
    dead = sign_session_id(new_session_id(), keyring, now=clock())  # names no record
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        c.cookies.set(COOKIE, dead)
        response = await c.get("/id-later/emptied")
    assert response.status_code == 200
    assert session_cookies(response) == []
    minted, emptied = app.state.ids_during
    assert minted is not None
    assert emptied is None
    assert app.state.ids_later == [None]
    assert await store.inner.load(minted) is None
