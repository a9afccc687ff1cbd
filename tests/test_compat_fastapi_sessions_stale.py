"""The fastapi-sessions shim: a stale object is refused however the request went on (its
own save since, its hand-out forgotten after many reads), and a record without a frontend
stays bounded (found by a review)."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
from fastapi import Depends, FastAPI

from typed_sessions.compat.fastapi_sessions import InMemoryBackend, StoreBackend
from typed_sessions.compat.fastapi_sessions.backends.implementations.handed_out import (
    _HANDED_OUT,  # pyright: ignore[reportPrivateUsage]
    begin_request,
)

from . import compat_carts
from .compat_carts import Cart, cart_app, client_for

pytestmark = pytest.mark.anyio
no_earlier_request = compat_carts.no_earlier_request  # autouse: a fresh record per test


def app_for(backend: StoreBackend[UUID, Cart], gates: list[asyncio.Event] | None = None) -> FastAPI:
    app, cookie, verifier = cart_app(backend)
    gates = gates or []

    @app.post("/remove/{item}")
    async def remove(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        cart.items.remove(item)
        await backend.update(session_id, cart)

    # The verifier's cart (empty); after another request added "pen", a fresh read is
    # changed and saved (200, fine); then the verifier's (stale, empty) cart is changed
    # and saved: it rests on a read that another request's change superseded.
    @app.post("/fresh-then-stale/{item}")
    async def fresh_then_stale(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        await gates[0].wait()
        fresh = await backend.read(session_id)
        assert fresh is not None
        fresh.items.append("note")
        await backend.update(session_id, fresh)
        cart.items.append(item)
        await backend.update(session_id, cart)

    # The verifier's cart; a read hands out ``held`` (with "pen"); another request then
    # removes "pen"; the page's widgets read the session 7 more times; ``held`` is
    # changed and saved: it rests on the read holding "pen", which is no longer stored.
    @app.post("/held-then-widgets/{item}")
    async def held_then_widgets(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        await gates[0].wait()
        held = await backend.read(session_id)
        assert held is not None
        gates[1].set()
        await gates[2].wait()
        await asyncio.gather(*(backend.read(session_id) for _ in range(7)))
        held.items.append(item)
        await backend.update(session_id, held)

    # The verifier hands out [] ; the request adds "pen" through a fresh read and saves
    # it; it reads ["pen"] again (``seen``); another request then removes "pen" (200).
    # The verifier's cart (its read, [], is what is stored again) gets "book" and is
    # saved; then a model built from ``seen`` (["pen"]) plus "hat" is saved.
    @app.post("/three-saves")
    async def three_saves(
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        fresh = await backend.read(session_id)
        assert fresh is not None
        fresh.items.append("pen")
        await backend.update(session_id, fresh)
        seen = await backend.read(session_id)
        assert seen is not None
        assert seen.items == ["pen"]
        gates[0].set()
        await gates[1].wait()  # another request removes "pen" here
        cart.items.append("book")
        await backend.update(session_id, cart)  # stored [] == its hand-out's []: saved
        await backend.update(session_id, Cart(items=[*seen.items, "hat"]))

    return app


async def test_a_stale_object_is_refused_after_the_requests_own_save() -> None:
    """The verifier hands out []; another request adds "pen" (200). This request saves a
    fresh read (["pen", "note"]: fine), then the verifier's cart (["book"]). That cart's
    read ([]) is superseded by another request's change: 409 (when a save kept only
    itself, the stale cart passed as resting on it: 200, "pen" dropped)."""
    backend = InMemoryBackend[UUID, Cart]()
    gates = [asyncio.Event()]
    app = app_for(backend, gates)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        mine = asyncio.create_task(client.post("/fresh-then-stale/book"))
        await asyncio.sleep(0.05)  # the verifier has handed out the empty cart
        async with client_for(app_for(backend), raise_app_exceptions=False) as other:
            other.cookies["cart"] = token
            assert (await other.post("/add/pen")).status_code == 200
        gates[0].set()
        status = (await mine).status_code
        stored = (await client.get("/cart")).json()["items"]
    assert status == 409 or "pen" in stored, (status, stored)


async def test_a_forgotten_hand_out_is_refused_once_another_request_changed_it() -> None:
    """``held`` was handed out holding ["pen"]; another request then removes "pen" (200);
    more reads push ``held``'s hand-out out of the record. Its update is then of an
    object the request does not know, after another request changed the data while this
    one read it: 409 (compared with the kept reads, all [], it was 200, and the other
    request's removal of "pen" undone: ["pen", "book"])."""
    backend = InMemoryBackend[UUID, Cart]()
    gates = [asyncio.Event(), asyncio.Event(), asyncio.Event()]
    app = app_for(backend, gates)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        mine = asyncio.create_task(client.post("/held-then-widgets/book"))
        await asyncio.sleep(0.05)  # the verifier has handed out the empty cart
        async with client_for(app_for(backend), raise_app_exceptions=False) as other:
            other.cookies["cart"] = token
            assert (await other.post("/add/pen")).status_code == 200
            gates[0].set()
            await gates[1].wait()  # this request now holds ["pen"]
            assert (await other.post("/remove/pen")).status_code == 200
        gates[2].set()
        status = (await mine).status_code
        stored = (await client.get("/cart")).json()["items"]
    assert status == 409 or "pen" not in stored, (status, stored)


async def test_a_long_lived_task_without_a_frontend_keeps_a_bounded_record() -> None:
    """A task with no frontend (a periodic job reading sessions; a route without
    Depends(cookie)) keeps a record of its own, never cleared: it holds the sessions it
    read last, 64 at most (it held every one: 500 after reading 500)."""
    backend = InMemoryBackend[UUID, Cart]()
    ids = [uuid4() for _ in range(500)]
    for sid in ids:
        await backend.create(sid, Cart(items=["x"]))

    async def job() -> int:
        for sid in ids:
            await backend.read(sid)
            await backend.delete(sid)
        current = _HANDED_OUT.get()
        return 0 if current is None else len(current[2])

    held = await asyncio.create_task(job())
    assert held <= 64, held  # a bounded record: the 64 sessions read last


async def test_a_save_over_another_requests_change_counts_as_a_change_seen() -> None:
    """Another request's acknowledged removal of "pen" survives, or this request gets
    409. The verifier's cart is saved by retrying over the other request's version (its
    JSON, [], equals the hand-out's): data saved over that differs from the session as
    last seen is another request's change, so the model of the request's own making
    that rests on the read ["pen"] is refused (it was saved: 200, "pen" back)."""
    backend = InMemoryBackend[UUID, Cart]()
    gates = [asyncio.Event(), asyncio.Event()]
    app = app_for(backend, gates)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        mine = asyncio.create_task(client.post("/three-saves"))
        await gates[0].wait()
        async with client_for(app_for(backend), raise_app_exceptions=False) as other:
            other.cookies["cart"] = token
            assert (await other.post("/remove/pen")).status_code == 200
        gates[1].set()
        status = (await mine).status_code
        stored = (await client.get("/cart")).json()["items"]
    assert status == 409 or "pen" not in stored, (status, stored)


async def test_a_request_with_a_frontend_keeps_a_bounded_record() -> None:
    """A request whose frontend began its record (a WebSocket's, open for hours; an admin
    route) and reads many sessions keeps the 64 it read last (it kept every one)."""
    backend = InMemoryBackend[UUID, Cart]()
    ids = [uuid4() for _ in range(500)]
    for sid in ids:
        await backend.create(sid, Cart(items=["x"]))

    async def connection() -> int:
        begin_request({"frontend": object()})  # what Depends(cookie) does first
        for sid in ids:
            await backend.read(sid)
            await backend.delete(sid)
        current = _HANDED_OUT.get()
        return 0 if current is None else len(current[2])

    held = await asyncio.create_task(connection())
    assert held <= 64, held
