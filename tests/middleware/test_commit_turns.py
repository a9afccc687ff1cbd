"""The session middleware: commit turns leave nothing behind when a waiter goes away."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.outcome import Record
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.adapters.turns import Turns
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Result
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict

from .conftest import BASE

pytestmark = pytest.mark.anyio


class SlowSaves:
    """A memory store whose saves wait a while once ``slow`` is set."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.slow = False

    async def load(self, session_id: SessionId) -> Record | None:
        return await self.inner.load(session_id)

    async def save(self, session: Record) -> Result[Record, Conflict]:
        if self.slow:
            await asyncio.sleep(0.05)
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        await self.inner.delete(session_id)


class CancelAtHandOver(Turns[SessionId]):
    """Commit turns that cancel the request they hand a turn to, right then."""

    __slots__ = ("victims",)

    def __init__(self) -> None:
        super().__init__()
        self.victims: list[asyncio.Task[httpx.Response]] = []

    def give_back(self, key: SessionId) -> bool:
        handed = super().give_back(key)
        if handed and self.victims:
            self.victims.pop().cancel()
        return handed


async def test_a_waiter_cancelled_after_the_hand_over_leaves_no_record_behind() -> None:
    """The record one commit left for the next is dropped when that next one is gone
    and nobody else waits (it stayed for as long as the worker ran)."""
    store = SlowSaves()
    app = FastAPI()

    @app.get("/set/{key}")
    async def set_key(key: str, manager: SessionDep) -> str:
        manager.get_session()[key] = "v"
        return "ok"

    middleware = session_middleware(app, store=store, keys="k" * 40)
    turns = CancelAtHandOver()
    middleware._commits = turns  # pyright: ignore[reportPrivateUsage]
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/set/a")).status_code == 200
        store.slow = True
        first = asyncio.create_task(client.get("/set/b"))
        await asyncio.sleep(0.01)  # the first holds the commit turn, saving slowly
        second = asyncio.create_task(client.get("/set/c"))
        turns.victims.append(second)
        assert (await first).status_code == 200
        with pytest.raises(asyncio.CancelledError):
            await second
    assert middleware._newest == {}  # pyright: ignore[reportPrivateUsage]
    assert not turns._queues  # pyright: ignore[reportPrivateUsage]
