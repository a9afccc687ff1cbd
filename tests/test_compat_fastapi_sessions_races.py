"""fastapi-sessions' backend API under concurrent requests of one session: every update
that answered 200 is stored, a read elsewhere is no conflict, a real change is."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import anyio
import anyio.from_thread
import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel, PrivateAttr

from typed_sessions import MemoryStore, Ok, touch_session, utc_now
from typed_sessions.compat.fastapi_sessions import (
    InMemoryBackend,
    StoreBackend,
)
from typed_sessions.compat.fastapi_sessions.ids import session_id_for

from . import compat_carts
from .compat_carts import (
    Cart,
    cart_app,
    client_for,
    serving,
)
from .conftest import FakeClock

pytestmark = pytest.mark.anyio
no_earlier_request = compat_carts.no_earlier_request  # autouse: a fresh record per test


def race_app(
    backend: StoreBackend[UUID, Cart],
    clock: Any = utc_now,
    gate: asyncio.Event | None = None,
    how: str = "await",
) -> FastAPI:
    """The seed page's shape: create + cookie, read through cookie + verifier, update
    (``how``: awaited, or in another task of the request: ``wait_for``, ``task_group``;
    ``/add-sync`` updates from a ``def`` endpoint through ``anyio.from_thread``)."""
    app, cookie, verifier = cart_app(backend, clock=clock, add=False)

    @app.post("/add/{item}")
    async def add(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        if gate is not None:
            await gate.wait()
        else:
            await asyncio.sleep(0.01)  # some work between reading and writing
        cart.items.append(item)
        if how == "wait_for":  # a task of its own on Python 3.11
            await asyncio.wait_for(backend.update(session_id, cart), timeout=5)
        elif how == "task_group":
            async with anyio.create_task_group() as group:
                group.start_soon(backend.update, session_id, cart)
        else:
            await backend.update(session_id, cart)

    @app.post("/add-sync/{item}")
    def add_sync(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        time.sleep(0.01)  # some work between reading and writing
        cart.items.append(item)
        anyio.from_thread.run(backend.update, session_id, cart)

    @app.put("/cart/{item}")
    async def replace(item: str, session_id: UUID = Depends(cookie)) -> None:  # noqa: B008
        await backend.update(session_id, Cart(items=[item]))  # blind: no read

    return app


async def test_a_read_in_an_earlier_request_leaves_concurrent_updates_their_own_versions() -> None:
    """A GET before the concurrent POSTs, from the test's own task (httpx's ASGITransport
    runs the app there): each POST still compares with the version it read itself, so
    every acknowledged item is stored (the others got 409)."""
    backend = InMemoryBackend[UUID, Cart]()
    async with client_for(race_app(backend)) as client:
        await client.post("/login")
        assert (await client.get("/cart")).json() == {"items": []}
        replies = await asyncio.gather(*(client.post(f"/add/{n}") for n in range(5)))
        acknowledged = [str(n) for n, r in enumerate(replies) if r.status_code == 200]
        stored = (await client.get("/cart")).json()["items"]
    assert sorted(stored) == sorted(acknowledged), (acknowledged, stored)


async def test_concurrent_updates_lose_no_acknowledged_item() -> None:
    """The same, without the GET first."""
    backend = InMemoryBackend[UUID, Cart]()
    async with client_for(race_app(backend)) as client:
        await client.post("/login")
        replies = await asyncio.gather(*(client.post(f"/add/{n}") for n in range(5)))
        acknowledged = [str(n) for n, r in enumerate(replies) if r.status_code == 200]
        stored = (await client.get("/cart")).json()["items"]
    assert sorted(stored) == sorted(acknowledged)


async def test_under_uvicorn_a_read_before_serving_is_not_the_requests() -> None:
    """The same through a real uvicorn server started in a task that read a session first
    (a warm-up or health check): the request tasks inherit that task's context, and
    still each compare with what they read."""
    backend = InMemoryBackend[UUID, Cart]()
    warm_up = uuid4()
    await backend.create(warm_up, Cart(items=[]))
    await backend.read(warm_up)  # in this task, before serving

    async with serving(race_app(backend)) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            await client.post("/login")
            token = client.cookies["cart"]

        async def add(n: int) -> int:  # one browser tab each: a connection of its own
            async with httpx.AsyncClient(base_url=base, cookies={"cart": token}) as tab:
                return (await tab.post(f"/add/{n}")).status_code

        codes = await asyncio.gather(*(add(n) for n in range(8)))
        async with httpx.AsyncClient(base_url=base, cookies={"cart": token}) as client:
            stored = (await client.get("/cart")).json()["items"]
    acknowledged = [str(n) for n, code in enumerate(codes) if code == 200]
    assert sorted(stored) == sorted(acknowledged), (codes, stored)


async def test_an_update_is_saved_when_another_request_only_read_meanwhile() -> None:
    """Another request only read the session meanwhile (a GET whose verifier slid the
    idle deadline, a save): no data changed, so the POST's update is saved, not 409."""
    clock = FakeClock(utc_now())
    backend = StoreBackend[UUID, Cart](MemoryStore(Cart, clock=clock), clock=clock)
    gate = asyncio.Event()
    async with client_for(race_app(backend, clock=clock, gate=gate)) as client:
        await client.post("/login")
        clock.advance(timedelta(minutes=5))  # the user comes back after 5 minutes
        post = asyncio.create_task(client.post("/add/book"))  # reads the cart, then works
        await asyncio.sleep(0.05)
        clock.advance(timedelta(minutes=4))
        seen = await asyncio.create_task(client.get("/cart"))  # a read-only request
        assert seen.json() == {"items": []}  # nothing changed the data
        gate.set()
        added = await post
        stored = (await client.get("/cart")).json()["items"]
    assert (added.status_code, stored) == (200, ["book"]), (added.status_code, added.text)


async def test_an_update_over_data_another_request_changed_is_refused() -> None:
    """The same, but the other request changed the data: 409, and its item stays."""
    backend = InMemoryBackend[UUID, Cart]()
    gate = asyncio.Event()
    async with client_for(race_app(backend, gate=gate)) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        post = asyncio.create_task(client.post("/add/book"))
        await asyncio.sleep(0.05)
        async with client_for(race_app(backend)) as other:  # the same backend, no gate
            other.cookies["cart"] = token
            assert (await other.post("/add/pen")).status_code == 200
        gate.set()
        added = await post
        stored = (await client.get("/cart")).json()["items"]
    assert added.status_code == 409
    assert stored == ["pen"]


async def test_an_update_without_a_read_in_a_task_of_a_reading_context_overwrites() -> None:
    """A task started after its parent read the session did not read it itself (no
    frontend marks its request either): its update is the last-wins overwrite
    fastapi-sessions makes, not a compare with the parent's read, stale by then."""
    backend = InMemoryBackend[UUID, Cart]()
    session = uuid4()
    await backend.create(session, Cart(items=[]))
    assert await backend.read(session) == Cart(items=[])  # this task read it

    async def in_a_request(item: str) -> None:
        await backend.update(session, Cart(items=[item]))

    await asyncio.create_task(in_a_request("a"))  # the parent's read is now stale
    await asyncio.create_task(in_a_request("b"))
    assert await backend.read(session) == Cart(items=["b"])


async def test_unsubscripted_store_backend_read_still_works() -> None:
    """``StoreBackend(store)``, with no data type given: the store knows it."""
    backend: StoreBackend[UUID, Cart] = StoreBackend(MemoryStore(Cart))
    session = uuid4()
    await backend.create(session, Cart(items=[]))
    assert await backend.read(session) == Cart(items=[])


async def test_unsubscripted_store_backend_behind_the_verifier() -> None:
    backend: StoreBackend[UUID, Cart] = StoreBackend(MemoryStore(Cart))
    async with client_for(race_app(backend)) as client:
        await client.post("/login")
        answer = await client.get("/cart")
    assert (answer.status_code, answer.json()) == (200, {"items": []})


def admin_app(backend: StoreBackend[UUID, Cart]) -> FastAPI:
    """A route with no frontend: the UUID in the path, a blind update (no read)."""
    app = FastAPI()

    @app.put("/admin/{session_id}/{item}")
    async def replace(session_id: UUID, item: str) -> None:
        await backend.update(session_id, Cart(items=[item]))  # no read in this request

    @app.post("/add/{session_id}/{item}")
    async def add(session_id: UUID, item: str) -> None:
        cart = await backend.read(session_id)
        assert cart is not None
        cart.items.append(item)
        await backend.update(session_id, cart)

    return app


async def test_under_uvicorn_a_blind_update_is_not_compared_with_a_warm_up_read() -> None:
    """ "Without a read in this request, it overwrites": a read by the serving task before
    serving (a warm-up), which every request task inherits, is not the request's, on a
    route with no ``SessionCookie`` either."""
    backend = StoreBackend[UUID, Cart](MemoryStore(Cart))
    session = uuid4()
    await backend.create(session, Cart(items=[]))
    await backend.read(session)  # in this task, before serving (a warm-up)

    async with serving(admin_app(backend)) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.post(f"/add/{session}/pen")).status_code == 200
        blind = await client.put(f"/admin/{session}/book")  # a later, blind update
    assert blind.status_code == 200, (blind.status_code, blind.text)
    assert await backend.read(session) == Cart(items=["book"])


class Prefs(BaseModel):
    theme: str


async def test_a_read_from_one_backend_is_not_compared_with_by_another() -> None:
    """Two backends keyed by the same UUID (a cart and preferences of one visitor): a
    read of the cart is no read of the preferences, whose blind update overwrites."""
    carts = InMemoryBackend[UUID, Cart]()
    prefs = InMemoryBackend[UUID, Prefs]()
    visitor = uuid4()
    await carts.create(visitor, Cart(items=[]))
    await prefs.create(visitor, Prefs(theme="light"))
    await carts.update(visitor, Cart(items=["a"]))  # the cart's version moves on
    assert await carts.read(visitor) == Cart(items=["a"])  # this request read its cart
    await prefs.update(visitor, Prefs(theme="dark"))  # no read of the preferences
    assert await prefs.read(visitor) == Prefs(theme="dark")


async def test_a_frontend_starts_the_requests_record_in_a_task_that_served_another() -> None:
    """httpx's ASGITransport runs every request in the caller's task: what an earlier
    request of that task read is not the next request's, once its frontend ran, so that
    request's blind update overwrites (it was compared with the stale read: 409)."""
    backend = InMemoryBackend[UUID, Cart]()
    app = race_app(backend)
    async with client_for(app) as client:
        await client.post("/login")
        assert (await client.get("/cart")).json() == {"items": []}  # read, in this task
        other_tab = asyncio.create_task(client.put("/cart/a"))  # a task of its own
        assert (await other_tab).status_code == 200  # the read above is now stale
        replaced = await client.put("/cart/b")
        assert (await client.get("/cart")).json() == {"items": ["b"]}
    assert replaced.status_code == 200


@pytest.mark.parametrize("how", ["wait_for", "task_group", "sync"])
async def test_an_update_in_another_task_of_the_request_still_compares(how: str) -> None:
    """The update awaited through ``asyncio.wait_for`` (a task of its own), in an anyio
    task group, or from a ``def`` endpoint through ``anyio.from_thread``: still this
    request's update of what its verifier handed out (found by a review: all five
    answered 200 over each other, one item stored)."""
    backend = InMemoryBackend[UUID, Cart]()
    path = "/add-sync" if how == "sync" else "/add"
    transport = httpx.ASGITransport(app=race_app(backend, how=how), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        await client.post("/login")
        replies = await asyncio.gather(*(client.post(f"{path}/{n}") for n in range(5)))
        acknowledged = [str(n) for n, r in enumerate(replies) if r.status_code == 200]
        stored = (await client.get("/cart")).json()["items"]
    assert sorted(stored) == sorted(acknowledged), (acknowledged, stored)


@dataclass(eq=False)
class Basket:
    items: list[str] = field(default_factory=list[str])


class Profile(BaseModel):
    items: list[str]
    _loaded_at: object = PrivateAttr(default_factory=object)  # per instance, never stored


class Guarded(BaseModel):
    items: list[str]
    _lock: Any = PrivateAttr(default_factory=threading.Lock)  # no deep copy of it


@pytest.mark.parametrize(
    ("data_type", "empty", "changed"),
    [
        (Basket, Basket(), Basket(["a"])),
        (Profile, Profile(items=[]), Profile(items=["a"])),
        (Guarded, Guarded(items=[]), Guarded(items=["a"])),
    ],
)
async def test_what_was_handed_out_is_compared_as_stored(
    data_type: Any, empty: Any, changed: Any
) -> None:
    """Data whose ``==`` is identity, compares private state, or cannot be deep-copied:
    a read elsewhere that only slid the deadline is still no conflict (found by a review:
    409s, and a ``TypeError`` on every read)."""
    clock = FakeClock(utc_now())
    store = MemoryStore(data_type, clock=clock)
    backend = StoreBackend[UUID, Any](store, clock=clock)
    session = uuid4()
    await backend.create(session, empty)
    clock.advance(timedelta(minutes=5))
    assert await backend.read(session) is not None  # this request's read

    async def another_request_only_reads() -> None:  # its verifier slides: a save
        record = await store.load(session_id_for(session))
        assert record is not None
        clock.advance(timedelta(minutes=4))
        assert isinstance(await store.save(touch_session(record, backend.expiry, now=clock())), Ok)

    await asyncio.create_task(another_request_only_reads())
    await backend.update(session, changed)
    loaded = await store.load(session_id_for(session))
    assert loaded is not None
    assert loaded.data.items == ["a"]
