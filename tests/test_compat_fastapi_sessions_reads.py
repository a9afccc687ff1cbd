"""The fastapi-sessions shim's compare-and-set: which reads are a request's (its tasks',
the first of several, through any backend over the store), equal data whose JSON differs,
and updates that run after the response (found by a review: each lost acknowledged
updates, or answered 409 for no change)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import anyio
import anyio.from_thread
import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException
from pydantic import BaseModel

from typed_sessions import MemoryStore
from typed_sessions.compat.fastapi_sessions import (
    InMemoryBackend,
    StoreBackend,
)

from . import compat_carts
from .compat_carts import (
    Cart,
    cart_app,
    client_for,
    serving,
)

pytestmark = pytest.mark.anyio
no_earlier_request = compat_carts.no_earlier_request  # autouse: a fresh record per test


def review_app(
    backend: StoreBackend[UUID, Cart],
    verifier_backend: StoreBackend[UUID, Cart] | None = None,
    gate: asyncio.Event | None = None,
    late: dict[str, list[str]] | None = None,
) -> FastAPI:
    """``late``: what became of the updates made after the response, by item: "saved",
    or "refused" (the 409 no client sees)."""
    app, cookie, verifier = cart_app(backend, verifier_backend=verifier_backend, add=False)
    outcomes: dict[str, list[str]] = {"saved": [], "refused": []} if late is None else late

    async def late_update(session_id: UUID, cart: Cart, item: str) -> None:
        try:
            await backend.update(session_id, cart)
        except HTTPException as exc:
            outcomes.setdefault("refused" if exc.status_code == 409 else "other", []).append(item)
            raise
        outcomes["saved"].append(item)

    # the route's own read, under a timeout (a task of its own on Python 3.11)
    @app.post("/add-timeout/{item}")
    async def add_timeout(item: str, session_id: UUID = Depends(cookie)) -> None:  # noqa: B008
        cart = await asyncio.wait_for(backend.read(session_id), timeout=5)
        assert cart is not None
        await asyncio.sleep(0.01)
        cart.items.append(item)
        await backend.update(session_id, cart)

    # two reads at once, through asyncio.gather (tasks of their own)
    @app.post("/add-gather/{item}")
    async def add_gather(item: str, session_id: UUID = Depends(cookie)) -> None:  # noqa: B008
        cart, _ = await asyncio.gather(backend.read(session_id), asyncio.sleep(0.01))
        assert cart is not None
        cart.items.append(item)
        await backend.update(session_id, cart)

    # a def route: FastAPI runs it in a worker thread; the backend is async
    @app.post("/add-sync/{item}")
    def add_sync(item: str, session_id: UUID = Depends(cookie)) -> None:  # noqa: B008
        cart = anyio.from_thread.run(backend.read, session_id)
        assert cart is not None
        time.sleep(0.01)
        cart.items.append(item)
        anyio.from_thread.run(backend.update, session_id, cart)

    # the update in a background task
    @app.post("/add-later/{item}")
    async def add_later(
        item: str,
        tasks: BackgroundTasks,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        await asyncio.sleep(0.01)
        cart.items.append(item)
        tasks.add_task(late_update, session_id, cart, item)

    # load in a dependency with yield, save after the endpoint
    async def saved_cart(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> AsyncIterator[Cart]:
        yield cart
        await late_update(session_id, cart, item)

    @app.post("/add-yield/{item}")
    async def add_yield(item: str, cart: Cart = Depends(saved_cart)) -> None:  # noqa: B008
        await asyncio.sleep(0.01)
        cart.items.append(item)

    # the verifier's cart, and the session read again (say, by a helper) before updating
    @app.post("/add-reread/{item}")
    async def add_reread(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        if gate is not None:
            await gate.wait()
        assert await backend.read(session_id) is not None  # e.g. a helper checks it
        cart.items.append(item)
        await backend.update(session_id, cart)

    # the verifier's cart, updated through the backend the route has
    @app.post("/add/{item}")
    async def add(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        if gate is not None:
            await gate.wait()
        else:
            await asyncio.sleep(0.01)
        cart.items.append(item)
        await backend.update(session_id, cart)

    return app


async def _concurrent_adds(app: FastAPI, path: str, n: int = 5) -> tuple[list[str], list[str]]:
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.post("/login")
        replies = await asyncio.gather(*(client.post(f"{path}/{k}") for k in range(n)))
        acknowledged = [str(k) for k, r in enumerate(replies) if r.status_code == 200]
        stored = (await client.get("/cart")).json()["items"]
    return acknowledged, stored


@pytest.mark.parametrize("path", ["/add-timeout", "/add-gather", "/add-sync"])
async def test_a_read_in_a_task_the_request_starts_is_compared_with(path: str) -> None:
    """The docs: "the reads made since its Depends(cookie) ran, in its task and in the
    tasks it starts". A read under wait_for, in gather, or through from_thread in a def
    route is one; the update must compare with it (else every update answers 200 over
    the others)."""
    acknowledged, stored = await _concurrent_adds(review_app(InMemoryBackend[UUID, Cart]()), path)
    assert sorted(stored) == sorted(acknowledged), (acknowledged, stored)


@pytest.mark.parametrize("path", ["/add-later", "/add-yield"])
async def test_under_uvicorn_an_update_after_the_response_is_saved_or_raises(path: str) -> None:
    """An update in a background task, or after the yield of a dependency, runs once the
    200 is sent: it cannot answer 409. The documented outcome: it is saved, or it raises
    the 409 (the server logs it) and writes nothing; none is dropped without a trace, and
    no other request's item is overwritten."""
    backend = InMemoryBackend[UUID, Cart]()
    late: dict[str, list[str]] = {"saved": [], "refused": []}
    async with serving(review_app(backend, late=late)) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            await client.post("/login")
            token = client.cookies["cart"]

        async def add(k: int) -> int:
            async with httpx.AsyncClient(base_url=base, cookies={"cart": token}) as tab:
                return (await tab.post(f"{path}/{k}")).status_code

        codes = await asyncio.gather(*(add(k) for k in range(6)))
        for _ in range(200):  # the work after the responses
            if len(late["saved"]) + len(late["refused"]) == 6:
                break
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=base, cookies={"cart": token}) as client:
            stored = (await client.get("/cart")).json()["items"]
    assert codes == [200] * 6
    assert sorted(late["saved"] + late["refused"]) == [str(k) for k in range(6)]
    assert late["saved"], late  # the first one, at least (the rest: as the race went)
    assert sorted(stored) == sorted(late["saved"]), (late, stored)


async def test_reading_the_session_again_does_not_make_the_verifiers_copy_current() -> None:
    """The route updates the cart its verifier gave; another request added "pen"
    meanwhile; a second read (a helper) must not turn the stale copy into the base:
    409 (nothing written), or both items; never 200 with "pen" dropped."""
    backend = InMemoryBackend[UUID, Cart]()
    gate = asyncio.Event()
    async with client_for(review_app(backend, gate=gate), raise_app_exceptions=False) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        post = asyncio.create_task(client.post("/add-reread/book"))
        await asyncio.sleep(0.05)  # the verifier has handed out the empty cart
        async with client_for(review_app(backend), raise_app_exceptions=False) as other:
            other.cookies["cart"] = token
            assert (await other.post("/add/pen")).status_code == 200
        gate.set()
        added = await post
        stored = (await client.get("/cart")).json()["items"]
    assert "pen" in stored, (added.status_code, stored)


async def test_two_backends_over_one_store_still_compare() -> None:
    """The verifier's backend and the route's wrap the same store (StoreBackend(store)
    made in two modules): the record the verifier handed out is this request's read."""
    store = MemoryStore(Cart)
    routes_backend = StoreBackend[UUID, Cart](store)
    verifiers_backend = StoreBackend[UUID, Cart](store)
    acknowledged, stored = await _concurrent_adds(
        review_app(routes_backend, verifier_backend=verifiers_backend), "/add"
    )
    assert sorted(stored) == sorted(acknowledged), (acknowledged, stored)


class Viewed(BaseModel):
    ids: set[int]


async def test_set_data_read_elsewhere_is_saved_or_refused_never_lost() -> None:
    """Set data (viewed product IDs): another request only read the session (its
    verifier slid the deadline, a save). A set's JSON order can differ between round
    trips of equal data, and the update compares JSON, never ``==`` (a model's own
    ``__eq__`` may hide a change): saved, or a 409 with the stored data as it was."""
    from datetime import timedelta

    from typed_sessions import Ok, touch_session, utc_now
    from typed_sessions.compat.fastapi_sessions.ids import session_id_for

    from .conftest import FakeClock

    clock = FakeClock(utc_now())
    store = MemoryStore(Viewed, clock=clock)
    backend = StoreBackend[UUID, Viewed](store, clock=clock)
    session = uuid4()
    await backend.create(session, Viewed(ids={13, 448, 384}))
    clock.advance(timedelta(minutes=5))
    viewed = await backend.read(session)  # this request's read
    assert viewed is not None

    async def another_request_only_reads() -> None:  # its verifier slides: a save
        record = await store.load(session_id_for(session))
        assert record is not None
        clock.advance(timedelta(minutes=4))
        assert isinstance(await store.save(touch_session(record, backend.expiry, now=clock())), Ok)

    await asyncio.create_task(another_request_only_reads())
    viewed.ids.add(1)
    try:
        await backend.update(session, viewed)
    except HTTPException as refused:
        assert refused.status_code == 409  # noqa: PT017 (409, or saved: both hold)
        assert await backend.read(session) == Viewed(ids={13, 448, 384})
    else:
        assert await backend.read(session) == Viewed(ids={13, 448, 384, 1})


def frontendless_app(
    backend: StoreBackend[UUID, Cart], read: asyncio.Event, go: asyncio.Event, *, with_timeout: bool
) -> FastAPI:
    """A route with no SessionCookie (the UUID in the path, as the suite's admin_app):
    it reads the cart, appends, and updates the very object it read, the update under
    a timeout (asyncio.wait_for, which on Python 3.11 runs it in a task of its own)."""
    app = FastAPI()

    @app.post("/slow/{session_id}/{item}")
    async def slow(session_id: UUID, item: str) -> None:
        cart = await backend.read(session_id)
        assert cart is not None
        read.set()
        await go.wait()
        cart.items.append(item)
        if with_timeout:
            await asyncio.wait_for(backend.update(session_id, cart), 5)
        else:
            await backend.update(session_id, cart)

    @app.post("/add/{session_id}/{item}")
    async def add(session_id: UUID, item: str) -> None:
        cart = await backend.read(session_id)
        assert cart is not None
        cart.items.append(item)
        await backend.update(session_id, cart)

    return app


@pytest.mark.parametrize("with_timeout", [False, True])
async def test_frontendless_update_of_the_read_object_under_wait_for_loses_no_item(
    with_timeout: bool,
) -> None:
    """A route without a frontend reads the cart and updates that very object under
    ``asyncio.wait_for`` (a task of its own on Python 3.11): the object shows which read
    it rests on, so it compares with it (the child task took it for a blind update and
    overwrote another request's acknowledged "pen"; found by a review)."""
    backend = InMemoryBackend[UUID, Cart]()
    session = uuid4()
    await backend.create(session, Cart(items=[]))
    read, go = asyncio.Event(), asyncio.Event()
    app = frontendless_app(backend, read, go, with_timeout=with_timeout)
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
        slow = asyncio.create_task(client.post(f"/slow/{session}/book"))
        await read.wait()
        assert (await client.post(f"/add/{session}/pen")).status_code == 200  # acknowledged
        go.set()
        answer = await slow
    stored = await backend.read(session)
    assert stored is not None
    # either the slow request is refused (409), or both items are kept
    assert answer.status_code == 409 or sorted(stored.items) == ["book", "pen"], (
        answer.status_code,
        stored.items,
    )
