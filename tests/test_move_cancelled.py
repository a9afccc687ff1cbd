"""A move cancelled while it ends the old record removes the new one (found by an
audit), also under anyio, whose cancellation comes again at every await until its scope
ends: the removal is shielded from it, so no record is left that nobody holds a token
for."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from typed_sessions import Expiry, Ok, Result, Session, SessionId, new_session, utc_now
from typed_sessions.core.ids import new_session_id
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.operations import move_session
from typed_sessions.stores.protocol import Conflict

pytestmark = pytest.mark.anyio

Record = Session[dict[str, Any]]


class EndingWaits:
    """A memory store whose second save (a move's ending of the old record) waits, and
    whose every call takes a step of the event loop, as a round trip does."""

    def __init__(self) -> None:
        self.store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.saves = 0
        self.ending = asyncio.Event()

    async def load(self, session_id: SessionId) -> Record | None:
        await asyncio.sleep(0)
        return await self.store.load(session_id)

    async def save(self, session: Record) -> Result[Record, Conflict]:
        self.saves += 1
        if self.saves == 2:
            self.ending.set()
            await asyncio.sleep(10)
        await asyncio.sleep(0)
        return await self.store.save(session)

    async def delete(self, session_id: SessionId) -> None:
        await asyncio.sleep(0)
        await self.store.delete(session_id)


@pytest.mark.parametrize("library", ["asyncio", "anyio"])
async def test_a_move_cancelled_while_ending_the_old_record_removes_the_new(library: str) -> None:
    store = EndingWaits()
    saved = await store.store.save(new_session({"a": 1}, Expiry(), now=utc_now()))
    assert isinstance(saved, Ok)
    old, new_id = saved.value, new_session_id()
    orphans: list[SessionId] = []

    async def move() -> None:
        await move_session(
            store, old, old.data, lambda d: d, expiry=Expiry(), new_id=new_id,
            on_orphan=orphans.append,
        )  # fmt: skip

    if library == "asyncio":
        task = asyncio.ensure_future(move())
        await store.ending.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(move)
                await store.ending.wait()
                scope.cancel()
    for _ in range(10):  # the shielded removal's own steps
        await asyncio.sleep(0)
    assert await store.store.load(new_id) is None
    assert await store.store.load(old.id) == old
    assert orphans == []
