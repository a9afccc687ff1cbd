"""The fastapi-sessions shim's update compares with the read of the object it updates,
as JSON (found by a review of the first fix: a data class's own ``==`` hid changes, and a
WebSocket's first read stayed its baseline for ever)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from pydantic import BaseModel
from starlette.types import Message

from typed_sessions import MemoryStore, Ok, replace_data, sign_session_id, utc_now
from typed_sessions.compat.fastapi_sessions import StoreBackend
from typed_sessions.compat.fastapi_sessions.backends.implementations.handed_out import (
    _HANDED_OUT,  # pyright: ignore[reportPrivateUsage]
)
from typed_sessions.compat.fastapi_sessions.ids import session_id_for

from . import compat_carts
from .compat_carts import Cart, cart_cookie

pytestmark = pytest.mark.anyio
no_earlier_request = compat_carts.no_earlier_request  # autouse: a fresh record per test


# --- compared as JSON, whatever the data's __eq__ says --------------------------------


class Profile(BaseModel):
    """An entity-style model: equal when it is the same user (a common __eq__)."""

    user_id: int
    cart: list[str]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and self.user_id == other.user_id

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Basket:
    owner: str
    items: list[str] = field(default_factory=list[str], compare=False)  # not part of ==


async def _other_request_saves(store: Any, session: UUID, data: Any) -> None:
    record = await store.load(session_id_for(session))
    assert record is not None
    assert isinstance(await store.save(replace_data(record, data, now=utc_now())), Ok)


@pytest.mark.parametrize(
    ("kind", "start", "theirs", "add"),
    [
        (Profile, Profile(user_id=1, cart=[]), Profile(user_id=1, cart=["pen"]), "book"),
        (Basket, Basket("ada"), Basket("ada", ["pen"]), "book"),
    ],
    ids=["model-eq-by-id", "dataclass-compare-false"],
)
async def test_a_change_invisible_to_eq_is_not_overwritten(
    kind: Any, start: Any, theirs: Any, add: str
) -> None:
    """This request reads the cart (empty); another request adds "pen"; this one adds
    "book" to the cart it read and updates. The stored JSON differs from what it was
    given, so it must be 409 or keep "pen"; _same_data asks the data's own == (which
    ignores the cart) and the update is saved over "pen"."""
    store = MemoryStore(kind)
    backend = StoreBackend[UUID, Any](store)
    session = uuid4()
    await backend.create(session, start)
    mine = await backend.read(session)  # this request's read
    assert mine is not None
    await asyncio.create_task(_other_request_saves(store, session, theirs))
    (mine.cart if kind is Profile else mine.items).append(add)
    try:
        await backend.update(session, mine)
    except HTTPException as exc:
        assert exc.status_code == 409  # noqa: PT017 (409 or both items are fine)
        return
    stored = await backend.read(session)
    assert stored is not None
    kept = stored.cart if kind is Profile else stored.items
    assert "pen" in kept, f"update answered OK and dropped the other request's item: {kept}"


# --- the TypeAdapter path (a store without a codec) ---------------------------------------


class Guest(BaseModel):
    pass


class Member(BaseModel):
    name: str
    cart: list[str]


class NoCodecStore:
    """A custom store (the SessionStore protocol only, no ``codec``) over a MemoryStore."""

    def __init__(self, inner: MemoryStore[Any]) -> None:
        self._inner = inner

    async def load(self, session_id: Any) -> Any:
        return await self._inner.load(session_id)

    async def save(self, session: Any) -> Any:
        return await self._inner.save(session)

    async def delete(self, session_id: Any) -> None:
        await self._inner.delete(session_id)


async def test_on_a_store_without_codec_a_sign_out_elsewhere_is_not_overwritten() -> None:
    """Data ``Member | Guest``; this request read the member's cart, another request
    signed out (the session now holds ``Guest()``). The update rests on data that
    changed: 409. Validating the member's JSON as the newest data's type gave Guest()
    (extra ignored) == Guest(): "no change", and the member's data went over the
    sign-out."""
    store = NoCodecStore(MemoryStore(Member | Guest))
    backend = StoreBackend[UUID, Any](store, data_type=Member | Guest)
    session = uuid4()
    await backend.create(session, Member(name="ada", cart=[]))
    mine = await backend.read(session)
    assert isinstance(mine, Member)
    await asyncio.create_task(_other_request_saves(store, session, Guest()))  # signed out
    mine.cart.append("book")
    with pytest.raises(HTTPException) as refused:
        await backend.update(session, mine)
    assert refused.value.status_code == 409
    assert isinstance(await backend.read(session), Guest)


# --- a WebSocket: one long request, first read the baseline for ever ----------------------


async def test_a_websocket_that_reads_again_can_update_after_another_requests_change() -> None:
    """A WebSocket route (Depends(cookie)) adds an item per message: it reads the
    session, appends, updates. Between two messages another request adds "pen". The
    next message reads the cart afresh (with "pen") and updates: nothing it rests on
    changed since that read: the update compares with the read of the object it
    updates. With the connection's first read as its baseline for ever, this and every
    later update was 409."""
    store = MemoryStore(Cart)
    backend = StoreBackend[UUID, Cart](store)
    cookie = cart_cookie()
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, session_id: UUID = Depends(cookie)) -> None:  # noqa: B008
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            cart = await backend.read(session_id)  # afresh, every message
            assert cart is not None
            cart.items.append(message["text"])
            try:
                await backend.update(session_id, cart)
            except HTTPException as exc:
                await websocket.send_text(str(exc.status_code))
            else:
                await websocket.send_text("200")

    session = uuid4()
    await backend.create(session, Cart(items=[]))
    token = sign_session_id(session_id_for(session), cookie.keys, now=utc_now())
    # "OTHER" is not sent: another request adds "pen" between "a" and "b"
    replies = await _drive_websocket_with_hook(
        app, f"cart={token}", ["a", "OTHER", "b", "c"], store, session
    )
    stored = await backend.read(session)
    assert stored is not None
    assert replies == ["200", "200", "200"], (replies, stored.items)


async def _drive_websocket_with_hook(
    app: FastAPI, cookie: str, steps: list[str], store: Any, session: UUID
) -> list[str]:
    incoming: asyncio.Queue[Message] = asyncio.Queue()
    outgoing: asyncio.Queue[Message] = asyncio.Queue()
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "wss", "path": "/ws",
        "raw_path": b"/ws", "query_string": b"", "root_path": "", "subprotocols": [],
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 1), "server": ("testserver", 443),
    }  # fmt: skip
    await incoming.put({"type": "websocket.connect"})
    running = asyncio.create_task(app(scope, incoming.get, outgoing.put))
    accepted = await asyncio.wait_for(outgoing.get(), 5)
    assert accepted["type"] == "websocket.accept", accepted
    replies: list[str] = []
    for step in steps:
        if step == "OTHER":  # another request (its own task and context) adds "pen"

            async def other() -> None:
                _HANDED_OUT.set(None)
                record = await store.load(session_id_for(session))
                data = record.data.model_copy(update={"items": [*record.data.items, "pen"]})
                assert isinstance(await store.save(replace_data(record, data, now=utc_now())), Ok)

            await asyncio.create_task(other())
            continue
        await incoming.put({"type": "websocket.receive", "text": step})
        reply = await asyncio.wait_for(outgoing.get(), 5)
        replies.append(reply.get("text", json.dumps(reply, default=str)))
    await incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(running, 5)
    return replies
