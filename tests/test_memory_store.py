"""What only the memory store promises: its bound and its sweeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from typed_sessions import Expiry, MemoryStore, Ok, new_session

from .conftest import FakeClock

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=5), absolute=timedelta(hours=1))


async def test_bounded_lru_eviction(clock: FakeClock) -> None:
    store: MemoryStore[int] = MemoryStore(int, max_sessions=3, clock=clock)
    sessions = [new_session(i, EXPIRY, now=clock()) for i in range(4)]
    for session in sessions[:3]:
        assert isinstance(await store.save(session), Ok)
    assert await store.load(sessions[0].id) is not None  # 0 is now the most recent
    assert isinstance(await store.save(sessions[3]), Ok)
    assert len(store) == 3
    assert await store.load(sessions[1].id) is None  # least recently used went
    for kept in (sessions[0], sessions[2], sessions[3]):
        assert await store.load(kept.id) is not None


async def test_expired_entries_are_swept(clock: FakeClock) -> None:
    store: MemoryStore[int] = MemoryStore(int, clock=clock, sweep_interval=timedelta(minutes=1))
    for i in range(100):
        await store.save(new_session(i, EXPIRY, now=clock()))
    assert len(store) == 100
    clock.advance(timedelta(minutes=10))
    await store.save(new_session(-1, EXPIRY, now=clock()))
    assert len(store) == 1


async def test_a_record_already_expired_is_not_stored(clock: FakeClock) -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    session = new_session(dict[str, Any](), EXPIRY, now=clock() - timedelta(hours=2))
    assert isinstance(await store.save(session), Ok)
    assert len(store) == 0


def test_max_sessions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        MemoryStore(int, max_sessions=0)
