"""Issue 7 through the middleware: concurrent writers lose nothing; ended IDs stay dead.

Runs against every store harness (memory, Redis, Redis Cluster), with a store that yields
to the event loop between load and save so that the requests really interleave.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, Response

from typed_sessions import (
    Conflict,
    Expiry,
    Keyring,
    Ok,
    Result,
    Session,
    SessionDep,
    SessionId,
    SessionStore,
    StoreError,
    StoreUnavailableError,
    new_session,
    replace_data,
    rotate_session,
    session_middleware,
    sign_session_id,
    utc_now,
    verify_session_token,
)
from typed_sessions.stores.memory import MemoryStore

from .conftest import SECRET, FakeClock
from .racing import FailsAfterEnding, Yielding
from .stores import HARNESSES, StoreHarness

T = TypeVar("T")

pytestmark = pytest.mark.anyio
KEYS = Keyring.from_secrets(SECRET)
BASE = "https://testserver"
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[StoreHarness]:
    async with HARNESSES[request.param]() as made:
        yield made


def make_app(store: Yielding[dict[str, Any]], harness: StoreHarness) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, clock=harness.now)

    @app.post("/set/{key}")
    async def set_key(key: str, manager: SessionDep) -> str:
        manager.get_session()[key] = key.upper()
        await asyncio.sleep(0)
        return key

    @app.post("/regenerate")
    async def regenerate(manager: SessionDep) -> str:
        manager.get_session()["role"] = "admin"
        manager.regenerate()
        return "ok"

    return app


def id_in(response: httpx.Response, harness: StoreHarness) -> SessionId:
    result = verify_session_token(response.cookies["__Host-session"], KEYS, now=harness.now())
    assert isinstance(result, Ok)
    return result.value


def session_id_of(client: httpx.AsyncClient, harness: StoreHarness) -> SessionId:
    result = verify_session_token(client.cookies["__Host-session"], KEYS, now=harness.now())
    assert isinstance(result, Ok)
    return result.value


async def test_fifty_concurrent_writers_keep_every_key(harness: StoreHarness) -> None:
    """Through one app (one worker: merged in turn) and through two apps on one store (two
    workers: merged after the store refused a stale save), every key lands."""
    store = Yielding(harness.store)
    apps = [make_app(store, harness), make_app(store, harness)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) for app in apps
    ]
    async with clients[0], clients[1]:
        assert (await clients[0].post("/set/base")).status_code == 200
        session_id = session_id_of(clients[0], harness)
        clients[1].cookies = clients[0].cookies
        in_one = await asyncio.gather(*(clients[0].post(f"/set/k{i}") for i in range(25)))
        in_two = await asyncio.gather(*(clients[i % 2].post(f"/set/k{i}") for i in range(25, 50)))
    responses = [*in_one, *in_two]
    assert [r.status_code for r in responses] == [200] * 50
    assert all("set-cookie" not in r.headers for r in responses)  # same ID throughout
    record = await harness.store.load(session_id)
    assert record is not None
    assert record.data == {"base": "BASE", **{f"k{i}": f"K{i}" for i in range(50)}}
    assert store.conflicts > 0  # two workers: the store refused stale saves; merged


async def test_regenerate_racing_a_write_keeps_the_old_id_dead(harness: StoreHarness) -> None:
    store = Yielding(harness.store)
    app = make_app(store, harness)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await client.post("/set/base")
        old_id = session_id_of(client, harness)
        old_cookie = client.cookies["__Host-session"]
        writes = [client.post(f"/set/w{i}") for i in range(10)]
        results = await asyncio.gather(client.post("/regenerate"), *writes)
        assert results[0].status_code == 200
        assert {r.status_code for r in results[1:]} <= {200, 409}
        new_id = id_in(results[0], harness)  # the regenerate response names the new ID
        # A write that loaded before the regeneration merges into the old record (and is
        # carried to the new one) or finds it gone: 409, nothing saved, no cookie. One
        # that loaded after finds no live record and starts a fresh session. None of them
        # ever names the old ID again.
        refused = [r for r in results[1:] if r.status_code == 409]
        assert all("set-cookie" not in r.headers for r in refused)
        others = [id_in(r, harness) for r in results[1:] if "set-cookie" in r.headers]
        assert old_id not in others
        assert new_id not in others
        carried = [
            f"w{i}"
            for i, r in enumerate(results[1:])
            if r.status_code == 200 and "set-cookie" not in r.headers
        ]
    assert new_id != old_id
    assert await harness.store.load(old_id) is None  # never resurrected
    record = await harness.store.load(new_id)
    assert record is not None
    assert record.data["role"] == "admin"
    assert record.data["base"] == "BASE"
    assert all(key in record.data for key in carried)  # every 200 kept its write
    # And the old cookie is worth nothing now.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as replay:
        replay.cookies.set("__Host-session", old_cookie)
        response = await replay.post("/set/late")
    assert response.status_code == 200
    assert id_in(response, harness) not in (old_id, new_id)  # not adopted: a new ID
    assert await harness.store.load(old_id) is None


async def test_regenerate_carries_a_change_python_calls_equal(harness: StoreHarness) -> None:
    """1 -> True is a change (stored JSON differs), though 1 == True in Python."""
    store = Yielding(harness.store)
    app = make_app(store, harness)
    loaded, saved = asyncio.Event(), asyncio.Event()

    @app.post("/one")
    async def one(manager: SessionDep) -> str:
        manager.get_session()["a"] = 1
        return "ok"

    @app.post("/flag")
    async def flag(manager: SessionDep) -> str:
        await loaded.wait()
        manager.get_session()["a"] = True
        return "ok"

    @app.post("/login")
    async def login(manager: SessionDep) -> str:
        manager.get_session()
        loaded.set()
        await saved.wait()  # /flag saved to the old record meanwhile
        manager.regenerate()
        return "ok"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await client.post("/one")
        login_task = asyncio.ensure_future(client.post("/login"))
        assert (await client.post("/flag")).status_code == 200
        saved.set()
        response = await login_task
    record = await harness.store.load(id_in(response, harness))
    assert record is not None
    assert record.data == {"a": True}
    assert record.data["a"] is True


async def regenerate_while_another_writes(
    store: Yielding[dict[str, Any]], harness: StoreHarness
) -> tuple[SessionId, httpx.Response]:
    """A login regenerates the session while another request of the same user saves
    ``item`` to the old record; return the old ID and the login's response."""
    return await regenerate_while(make_app(store, harness), harness, "/set/item")


async def regenerate_while(
    app: FastAPI, harness: StoreHarness, other: str
) -> tuple[SessionId, httpx.Response]:
    """A login regenerates the session while the same user's request to ``other`` runs
    to completion; return the old ID and the login's response."""
    gate = asyncio.Event()

    @app.post("/login")
    async def login(manager: SessionDep) -> str:
        manager.get_session()["user"] = "ada"
        manager.regenerate()
        await gate.wait()  # the other request runs meanwhile
        return "ok"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await client.post("/set/base")
        old_id = session_id_of(client, harness)
        login_task = asyncio.ensure_future(client.post("/login"))
        await asyncio.sleep(0.05)
        assert (await client.post(other)).status_code == 200
        gate.set()
        return old_id, await login_task


async def test_a_write_saved_while_regenerating_is_carried_to_the_new_id(
    harness: StoreHarness,
) -> None:
    old_id, response = await regenerate_while_another_writes(Yielding(harness.store), harness)
    new_id = id_in(response, harness)
    assert await harness.store.load(old_id) is None
    record = await harness.store.load(new_id)
    assert record is not None
    assert record.data == {"base": "BASE", "item": "ITEM", "user": "ada"}


async def test_rotate_session_carries_a_concurrent_write(harness: StoreHarness) -> None:
    loaded = await harness.store.save(new_session({"n": 1}, EXPIRY, now=harness.now()))
    assert isinstance(loaded, Ok)
    stale = loaded.value
    newer = await harness.store.save(replace_data(stale, {"n": 2}, now=harness.now()))
    assert isinstance(newer, Ok)
    response = Response()
    rotated = await rotate_session(response, harness.store, stale, keys=KEYS, clock=harness.now)
    assert rotated is not None
    assert rotated.id != stale.id
    assert rotated.data == {"n": 2}  # the newest data, not the stale copy
    assert await harness.store.load(stale.id) is None
    assert response.headers["set-cookie"].startswith("__Host-session=")


async def test_rotate_session_with_update_keeps_both_changes(harness: StoreHarness) -> None:
    """Signing in while another request saves: the sign-in's change and the other's."""
    loaded = await harness.store.save(new_session({"cart": ["apple"]}, EXPIRY, now=harness.now()))
    assert isinstance(loaded, Ok)
    stale = loaded.value
    other = {"cart": ["apple"], "theme": "dark"}
    assert isinstance(await harness.store.save(replace_data(stale, other, now=harness.now())), Ok)
    seen: list[dict[str, Any]] = []

    def sign_in(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        return {**data, "user": "ada"}

    rotated = await rotate_session(
        Response(), harness.store, stale, keys=KEYS, clock=harness.now, update=sign_in
    )
    assert rotated is not None
    assert rotated.data == {"cart": ["apple"], "theme": "dark", "user": "ada"}
    assert await harness.store.load(rotated.id) == rotated
    assert seen == [{"cart": ["apple"]}, other]  # applied to the newest data again


async def test_rotate_session_update_failing_on_newer_data_leaves_the_old_session(
    harness: StoreHarness,
) -> None:
    """update is applied to the newer data before the old record ends: when it refuses
    (say, the account was locked meanwhile), the error reaches the caller and the old
    session, with the other request's change, is untouched."""
    store = Yielding(harness.store)
    loaded = await store.save(new_session({"n": 1}, EXPIRY, now=harness.now()))
    assert isinstance(loaded, Ok)
    stale = loaded.value
    newer = await store.save(replace_data(stale, {"n": 2, "locked": True}, now=harness.now()))
    assert isinstance(newer, Ok)

    def sign_in(data: dict[str, Any]) -> dict[str, Any]:
        if data.get("locked"):
            raise PermissionError("locked")
        return {**data, "user": "ada"}

    response = Response()
    with pytest.raises(PermissionError):
        await rotate_session(response, store, stale, keys=KEYS, clock=harness.now, update=sign_in)
    assert await harness.store.load(stale.id) == newer.value
    assert "set-cookie" not in response.headers
    assert store.saves == 4  # 2 above, the new record, the refused ending: nothing more


async def test_rotate_session_carries_a_write_before_ending_so_nothing_is_left_to_fail(
    harness: StoreHarness,
) -> None:
    """The concurrent write reaches the new record before the old one ends, so a store
    failing right after the ending has nothing left to lose."""
    store = FailsAfterEnding(harness.store)
    loaded = await store.save(new_session({"n": 1}, EXPIRY, now=harness.now()))
    assert isinstance(loaded, Ok)
    stale = loaded.value
    assert isinstance(await store.save(replace_data(stale, {"n": 2}, now=harness.now())), Ok)
    response = Response()
    rotated = await rotate_session(response, store, stale, keys=KEYS, clock=harness.now)
    assert rotated is not None
    assert rotated.data == {"n": 2}
    assert store.failed == 0
    assert await harness.store.load(stale.id) is None
    assert await harness.store.load(rotated.id) == rotated
    token = response.headers["set-cookie"].split(";", 1)[0].removeprefix("__Host-session=")
    assert verify_session_token(token, KEYS, now=harness.now()) == Ok(rotated.id)


class FailsOnSave(Yielding[T]):
    """Raises StoreUnavailableError on save number ``fail_at`` (counting from 1)."""

    def __init__(self, inner: SessionStore[T], fail_at: int) -> None:
        super().__init__(inner)
        self.fail_at = fail_at
        self.first_new: SessionId | None = None

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        if self.saves + 1 == self.fail_at:
            self.saves += 1
            raise StoreUnavailableError("down")
        if session.version == 0 and self.first_new is None and self.saves >= 2:
            self.first_new = session.id
        return await super().save(session)


async def test_rotate_session_failing_to_carry_a_write_leaves_the_old_session(
    harness: StoreHarness,
) -> None:
    store = FailsOnSave(harness.store, fail_at=5)  # 2 setup saves, new, ending, carry
    loaded = await store.save(new_session({"n": 1}, EXPIRY, now=harness.now()))
    assert isinstance(loaded, Ok)
    newer = await store.save(replace_data(loaded.value, {"n": 2}, now=harness.now()))
    assert isinstance(newer, Ok)
    response = Response()
    with pytest.raises(StoreUnavailableError):
        await rotate_session(response, store, loaded.value, keys=KEYS, clock=harness.now)
    assert await harness.store.load(loaded.value.id) == newer.value
    assert store.first_new is not None
    assert await harness.store.load(store.first_new) is None  # the new record was removed
    assert "set-cookie" not in response.headers


async def test_regenerate_carries_a_write_before_ending_so_nothing_is_left_to_fail(
    harness: StoreHarness,
) -> None:
    """The concurrent write reaches the new record before the old one ends, so a store
    failing right after the ending has nothing left to lose."""
    store = FailsAfterEnding(harness.store)
    old_id, response = await regenerate_while_another_writes(store, harness)
    assert response.status_code == 200
    new_id = id_in(response, harness)
    assert store.failed == 0
    assert await harness.store.load(old_id) is None
    record = await harness.store.load(new_id)
    assert record is not None
    assert record.data == {"base": "BASE", "item": "ITEM", "user": "ada"}


async def test_regenerate_failing_to_carry_a_write_leaves_the_old_session(
    harness: StoreHarness,
) -> None:
    # Saves: /set/base, /set/item, the new record, the refused ending, then the carry.
    store = FailsOnSave(harness.store, fail_at=5)
    old_id, response = await regenerate_while_another_writes(store, harness)
    assert response.status_code == 503
    assert "set-cookie" not in response.headers
    record = await harness.store.load(old_id)
    assert record is not None
    assert record.data == {"base": "BASE", "item": "ITEM"}  # the old session, intact
    assert store.first_new is not None
    assert await harness.store.load(store.first_new) is None  # the new record was removed


async def test_rotate_session_never_revives_an_ended_session(harness: StoreHarness) -> None:
    saved = await harness.store.save(new_session({"role": "admin"}, EXPIRY, now=harness.now()))
    assert isinstance(saved, Ok)
    await harness.store.delete(saved.value.id)  # revoked (a logout elsewhere)
    response = Response()
    rotated = await rotate_session(
        response, harness.store, saved.value, keys=KEYS, clock=harness.now
    )
    assert rotated is None
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert await harness.store.load(saved.value.id) is None


async def test_regenerate_never_revives_an_ended_session(harness: StoreHarness) -> None:
    app = make_app(Yielding(harness.store), harness)

    @app.post("/logout")
    async def logout(manager: SessionDep) -> str:
        manager.invalidate()  # ends the session while the login waits
        return "ok"

    old_id, response = await regenerate_while(app, harness, "/logout")
    assert response.status_code == 409  # its sign-in's data was not saved: no 2xx for it
    assert "set-cookie" not in response.headers  # no new session for an ended one
    assert await harness.store.load(old_id) is None


async def test_a_bare_regenerate_of_an_ended_session_changes_nothing(
    harness: StoreHarness,
) -> None:
    """A regeneration that wrote nothing and signed no one in lost nothing: 200, no
    cookie, and the ended session stays ended."""
    app = make_app(Yielding(harness.store), harness)
    gate = asyncio.Event()

    @app.post("/logout")
    async def logout(manager: SessionDep) -> str:
        manager.invalidate()
        return "ok"

    @app.post("/bare")
    async def bare(manager: SessionDep) -> str:
        manager.get_session()  # read, unchanged
        manager.regenerate()
        await gate.wait()
        return "ok"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await client.post("/set/base")
        old_id = session_id_of(client, harness)
        regenerating = asyncio.ensure_future(client.post("/bare"))
        await asyncio.sleep(0.05)
        assert (await client.post("/logout")).status_code == 200
        gate.set()
        response = await regenerating
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert await harness.store.load(old_id) is None


async def test_two_regenerates_leave_one_live_session(harness: StoreHarness) -> None:
    store = Yielding(harness.store)
    app = make_app(store, harness)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await client.post("/set/base")
        old_id = session_id_of(client, harness)
        first, second = await asyncio.gather(client.post("/regenerate"), client.post("/regenerate"))
    # A request that loaded the old record after the other one ended it finds no live
    # session and starts an empty one; only one can ever carry the old session on.
    heirs: list[Session[dict[str, Any]]] = []
    for response in (first, second):
        if "set-cookie" in response.headers:
            record = await harness.store.load(id_in(response, harness))
            assert record is not None
            if "base" in record.data:
                heirs.append(record)
    assert len(heirs) == 1
    assert heirs[0].data == {"base": "BASE", "role": "admin"}
    assert await harness.store.load(old_id) is None


class ExpiresAtTheCarry(Yielding[dict[str, Any]]):
    """The first ending is refused (another request saved); time then passes the
    session's deadline just before the merged data is carried to the new record."""

    def __init__(
        self, inner: SessionStore[dict[str, Any]], clock: FakeClock, old: SessionId
    ) -> None:
        super().__init__(inner)
        self.clock, self.old, self.endings = clock, old, 0

    async def save(
        self, session: Session[dict[str, Any]]
    ) -> Result[Session[dict[str, Any]], Conflict]:
        if session.id == self.old and session.expires_at.timestamp() == 0:
            self.endings += 1
            if self.endings == 1:  # another request saves first
                current = await self.inner.load(self.old)
                assert current is not None
                changed = {**current.data, "item": 1}
                await self.inner.save(replace_data(current, changed, now=self.clock()))
        elif session.id != self.old and session.version > 0:  # the carry
            self.clock.advance(timedelta(hours=1))
        return await super().save(session)


SHORT = Expiry(idle=timedelta(hours=1), absolute=timedelta(hours=1))


async def expiring_at_the_carry() -> tuple[
    FakeClock, MemoryStore[dict[str, Any]], Session[dict[str, Any]], ExpiresAtTheCarry
]:
    """A session of one hour, in a store that lets that hour pass at the carry."""
    clock = FakeClock()
    inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    saved = await inner.save(new_session({"base": 1}, SHORT, now=clock()))
    assert isinstance(saved, Ok)
    return clock, inner, saved.value, ExpiresAtTheCarry(inner, clock, saved.value.id)


async def test_rotate_session_expiring_at_the_carry_is_ended_not_an_error() -> None:
    clock, inner, old, store = await expiring_at_the_carry()
    response = Response()
    rotated = await rotate_session(response, store, old, keys=KEYS, clock=clock, expiry=SHORT)
    assert rotated is None  # ended meanwhile, as a logout would be
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert await inner.load(old.id) is None


async def test_regenerate_expiring_at_the_carry_is_ended_not_a_503() -> None:
    clock, inner, old, store = await expiring_at_the_carry()
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, clock=clock, expiry=SHORT)

    @app.post("/login")
    async def login(manager: SessionDep) -> str:
        manager.get_session()["user"] = "ada"
        manager.regenerate()
        return "ok"

    token = sign_session_id(old.id, KEYS, now=clock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        client.cookies.set("__Host-session", token)
        response = await client.post("/login")
    assert response.status_code == 409  # ended, as a logout elsewhere: its write refused
    assert "set-cookie" not in response.headers
    assert await inner.load(old.id) is None


async def test_rotate_session_stops_at_its_last_attempt() -> None:
    """No load, update or carry after the last refused ending: it only fails."""
    inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    saved = await inner.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
    assert isinstance(saved, Ok)
    calls: list[dict[str, Any]] = []
    old = saved.value

    class AlwaysAhead(Yielding[dict[str, Any]]):
        async def save(
            self, session: Session[dict[str, Any]]
        ) -> Result[Session[dict[str, Any]], Conflict]:
            if session.id == old.id and session.expires_at.timestamp() == 0:
                current = await self.inner.load(session.id)  # someone always saves first
                assert current is not None
                await self.inner.save(replace_data(current, current.data, now=utc_now()))
            return await super().save(session)

    def update(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data)
        return data

    with pytest.raises(StoreError, match="not rotated after 2 tries"):
        await rotate_session(
            Response(), AlwaysAhead(inner), old, keys=KEYS, attempts=2, update=update
        )
    assert len(calls) == 2  # the first data, and one retry's newer data
    assert len(inner) == 1  # the new record was removed; the old session stands
