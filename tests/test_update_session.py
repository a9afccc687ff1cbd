"""update_session: a pure function applied to a stored session, no write lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from typed_sessions import (
    Conflict,
    Err,
    Expiry,
    Ok,
    Result,
    Session,
    SessionId,
    SessionNotFound,
    TooManyConflicts,
    new_session,
    update_session,
)

from .racing import Yielding
from .stores import HARNESSES, StoreHarness

pytestmark = pytest.mark.anyio
T = TypeVar("T")
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[StoreHarness]:
    async with HARNESSES[request.param]() as made:
        yield made


async def created(harness: StoreHarness) -> Session[dict[str, Any]]:
    result = await harness.store.save(new_session({"n": 0}, EXPIRY, now=harness.now()))
    assert isinstance(result, Ok)
    return result.value


def increment(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "n": data["n"] + 1}


async def test_fifty_concurrent_increments(harness: StoreHarness) -> None:
    session = await created(harness)
    store = Yielding(harness.store)
    results = await asyncio.gather(
        *(update_session(store, session.id, increment, clock=harness.now) for _ in range(50))
    )
    assert all(isinstance(r, Ok) for r in results)
    final = await harness.store.load(session.id)
    assert final is not None
    assert final.data == {"n": 50}
    assert final.version == 51
    assert store.saves > 50  # there were conflicts, and they were retried


async def test_missing_session(harness: StoreHarness) -> None:
    session = new_session({"n": 0}, EXPIRY, now=harness.now())
    assert await update_session(harness.store, session.id, increment) == Err(SessionNotFound())


async def test_mutating_fn_is_safe(harness: StoreHarness) -> None:
    session = await created(harness)

    def mutate(data: dict[str, Any]) -> dict[str, Any]:
        data["n"] += 10
        return data

    result = await update_session(harness.store, session.id, mutate, clock=harness.now)
    assert isinstance(result, Ok)
    assert result.value.data == {"n": 10}


async def test_bounded_attempts() -> None:
    class AlwaysConflicts(Yielding[dict[str, Any]]):
        async def save(
            self, session: Session[dict[str, Any]]
        ) -> Result[Session[dict[str, Any]], Conflict]:
            self.saves += 1
            return Err(Conflict(expected=session.version, found=session.version + 1))

    async with HARNESSES["memory"]() as harness:
        session = await created(harness)
        store = AlwaysConflicts(harness.store)
        result = await update_session(store, session.id, increment, attempts=3, clock=harness.now)
        assert result == Err(TooManyConflicts(3, Conflict(expected=1, found=2)))
        assert store.saves == 3
        with pytest.raises(ValueError, match="attempts"):
            await update_session(store, session.id, increment, attempts=0)


class DeletedAfterLoad(Yielding[dict[str, Any]]):
    """Another request ends the session right after this update's first load (on every
    store, whatever its scheduling: a thread-backed SQLite never races the test)."""

    async def load(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        loaded = await super().load(session_id)
        if self.saves == 0:
            await self.inner.delete(session_id)
        return loaded


async def test_deleted_during_update_is_not_found(harness: StoreHarness) -> None:
    session = await created(harness)
    store = DeletedAfterLoad(harness.store)
    result = await update_session(store, session.id, increment, clock=harness.now)
    assert result == Err(SessionNotFound())
    assert store.saves == 1  # the save found it gone; the reload found nothing
    assert await harness.store.load(session.id) is None


async def test_expiry_slides(harness: StoreHarness) -> None:
    session = await created(harness)
    await harness.pass_time(timedelta(seconds=0))
    result = await update_session(
        harness.store,
        session.id,
        increment,
        expiry=EXPIRY,
        clock=lambda: harness.now() + timedelta(minutes=10),
    )
    assert isinstance(result, Ok)
    assert result.value.expires_at == session.expires_at + timedelta(minutes=10)


async def test_from_a_loaded_record_skips_the_first_load(harness: StoreHarness) -> None:
    session = await created(harness)
    store = Yielding(harness.store)
    loads = 0
    inner_load = store.load

    async def counting_load(session_id: SessionId) -> Session[dict[str, Any]] | None:
        nonlocal loads
        loads += 1
        return await inner_load(session_id)

    store.load = counting_load  # type: ignore[method-assign]  # count the calls
    result = await update_session(store, session, increment, clock=harness.now)
    assert isinstance(result, Ok)
    assert result.value.data == {"n": 1}
    assert loads == 0
    # A stale record: the first save conflicts, the retry loads the newest one.
    stale = await update_session(store, session, increment, clock=harness.now)
    assert isinstance(stale, Ok)
    assert stale.value.data == {"n": 2}
    assert loads == 1
