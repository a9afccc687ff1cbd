"""Store harnesses for the contract suite: one per store kind, same interface."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from typed_sessions import MemoryStore, SessionStore

from .conftest import FakeClock


@dataclass
class StoreHarness:
    """A store under test, the time its records are made at, and a way to let time pass."""

    store: SessionStore[dict[str, Any]]
    now: Callable[[], datetime]
    pass_time: Callable[[timedelta], Any]  # a coroutine function for real stores


@asynccontextmanager
async def memory_harness() -> AsyncIterator[StoreHarness]:
    clock = FakeClock()

    async def pass_time(delta: timedelta) -> None:
        clock.advance(delta)

    yield StoreHarness(MemoryStore(dict[str, Any], clock=clock), clock, pass_time)


HARNESSES: dict[str, Callable[[], Any]] = {"memory": memory_harness}
