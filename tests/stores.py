"""Store harnesses for the contract suite: one per store kind, same interface."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis, RedisCluster

from typed_sessions import MemoryStore, SessionStore, utc_now
from typed_sessions.stores.redis import RedisStore
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table

from .conftest import FakeClock
from .redis_server import (
    delete_prefix,
    require_cluster,
    require_redis,
    require_valkey,
    unique_prefix,
)
from .sql_server import require_mariadb, require_postgres, unique_table


@dataclass
class StoreHarness:
    """A store under test, the time its records are made at, and a way to let time pass."""

    store: SessionStore[dict[str, Any]]
    now: Callable[[], datetime]
    pass_time: Callable[[timedelta], Any]  # a coroutine function for real stores


@asynccontextmanager
async def memory_harness(**options: Any) -> AsyncGenerator[StoreHarness, None]:
    clock = FakeClock()

    async def pass_time(delta: timedelta) -> None:
        clock.advance(delta)

    yield StoreHarness(MemoryStore(dict[str, Any], clock=clock, **options), clock, pass_time)


class RealTimeClock(FakeClock):
    """For real servers: a clock that stands still between steps (so ``now()`` is stable
    within a test, as with the memory store) and moves by real sleeps in :meth:`pass_time`,
    which native TTLs then follow."""

    def __init__(self) -> None:
        super().__init__(utc_now())

    async def pass_time(self, delta: timedelta) -> None:
        await asyncio.sleep(delta.total_seconds())
        self.advance(delta)


@asynccontextmanager
async def redis_harness(
    url: str | None = None, **options: Any
) -> AsyncGenerator[StoreHarness, None]:
    """The real Redis (``TYPED_SESSIONS_REDIS_URL``), a prefix of the test's own, real TTLs."""
    client = Redis.from_url(url or require_redis())
    prefix = unique_prefix()
    clock = RealTimeClock()
    try:
        store: RedisStore[dict[str, Any]] = RedisStore(
            client, dict[str, Any], prefix=prefix, clock=clock, **options
        )
        yield StoreHarness(store, clock, clock.pass_time)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


@asynccontextmanager
async def redis_cluster_harness(**options: Any) -> AsyncGenerator[StoreHarness, None]:
    """A three-node Redis Cluster of the test run's own: keys spread over slots and nodes."""
    client = RedisCluster.from_url(require_cluster())
    clock = RealTimeClock()
    try:
        store: RedisStore[dict[str, Any]] = RedisStore(
            client, dict[str, Any], prefix="cluster:", clock=clock, **options
        )
        yield StoreHarness(store, clock, clock.pass_time)
    finally:
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        await client.aclose()


def valkey_harness(**options: Any) -> AbstractAsyncContextManager[StoreHarness]:
    """A Valkey server of the test run's own, through the same ``redis.asyncio`` client."""
    return redis_harness(require_valkey(), **options)


@asynccontextmanager
async def sql_harness(url: str, **options: Any) -> AsyncGenerator[StoreHarness, None]:
    """A table of the test's own in the database at ``url``, dropped afterwards. Expiry
    follows the store's clock (no native TTL), so a hand-moved clock is enough."""
    clock = FakeClock(utc_now())

    async def pass_time(delta: timedelta) -> None:
        clock.advance(delta)

    store: SqlStore[dict[str, Any]] = SqlStore.from_url(
        url, dict[str, Any], table=session_table(name=unique_table()), clock=clock, **options
    )
    try:
        await store.create_table()
        yield StoreHarness(store, clock, pass_time)
    finally:
        await store.drop_table()
        await store.aclose()


def postgres_harness(**options: Any) -> AbstractAsyncContextManager[StoreHarness]:
    return sql_harness(require_postgres(), **options)


def mariadb_harness(**options: Any) -> AbstractAsyncContextManager[StoreHarness]:
    return sql_harness(require_mariadb(), **options)


@asynccontextmanager
async def sqlite_file_harness(**options: Any) -> AsyncGenerator[StoreHarness, None]:
    with tempfile.TemporaryDirectory(prefix="typed-sessions-sqlite-") as folder:
        url = f"sqlite+aiosqlite:///{folder}/sessions.db"
        async with sql_harness(url, **options) as made:
            yield made


def sqlite_memory_harness(**options: Any) -> AbstractAsyncContextManager[StoreHarness]:
    return sql_harness("sqlite+aiosqlite://", **options)


HARNESSES: dict[str, Callable[..., AbstractAsyncContextManager[StoreHarness]]] = {
    "memory": memory_harness,
    "redis": redis_harness,
    "redis-cluster": redis_cluster_harness,
    "valkey": valkey_harness,
    "postgresql": postgres_harness,
    "mariadb": mariadb_harness,
    "sqlite-file": sqlite_file_harness,
    "sqlite-memory": sqlite_memory_harness,
}
