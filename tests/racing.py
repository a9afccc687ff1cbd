"""A store wrapper that lets other tasks run at every step, to force races."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from typed_sessions import (
    Conflict,
    Err,
    Ok,
    Result,
    Session,
    SessionId,
    SessionStore,
    StoreUnavailableError,
)

T = TypeVar("T")


class Yielding(Generic[T]):
    """Wraps a store; yields to the event loop before and after every call, counts saves."""

    def __init__(self, inner: SessionStore[T]) -> None:
        self.inner = inner
        self.saves = 0
        self.conflicts = 0

    async def load(self, session_id: SessionId) -> Session[T] | None:
        await asyncio.sleep(0)
        loaded = await self.inner.load(session_id)
        await asyncio.sleep(0)
        return loaded

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        self.saves += 1
        await asyncio.sleep(0)
        result = await self.inner.save(session)
        if isinstance(result, Err):
            self.conflicts += 1
        return result

    async def delete(self, session_id: SessionId) -> None:
        await asyncio.sleep(0)
        await self.inner.delete(session_id)


class FailsAfterEnding(Yielding[T]):
    """Like :class:`Yielding`, but the first save after a record was ended (an expired
    record saved: the compare-and-set delete of a rotation) raises ``StoreUnavailableError``.
    """

    def __init__(self, inner: SessionStore[T]) -> None:
        super().__init__(inner)
        self.armed = False
        self.failed = 0

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        if self.armed:
            self.armed, self.failed = False, self.failed + 1
            raise StoreUnavailableError("the store failed right after the old record ended")
        result = await super().save(session)
        if isinstance(result, Ok) and session.expires_at.timestamp() == 0:
            self.armed = True
        return result
