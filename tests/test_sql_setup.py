"""The SQL store's setup and its event loop: ``create_table`` from several workers at
once, DDL within the timeout, and a store used from one event loop after another."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateTable

from typed_sessions import (
    Expiry,
    Ok,
    Session,
    StoreError,
    StoreUnavailableError,
    new_session,
    replace_data,
    utc_now,
)
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_calls import driver_limits
from typed_sessions.stores.sql_table import session_table

from .sql_server import SQL_KINDS, require_mariadb, require_postgres, sql_url, unique_table

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]


def index_names(store: SqlStore[Data]) -> Any:
    async def names() -> set[str | None]:
        async with store.engine.connect() as conn:
            found = await conn.run_sync(lambda sync: inspect(sync).get_indexes(store.table.name))
        return {index["name"] for index in found}

    return names()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", SQL_KINDS)
async def test_workers_starting_together_all_create_the_table(kind: str, tmp_path: Path) -> None:
    """``uvicorn --workers 4``, each worker's lifespan calling ``create_table()``: none
    fails, and the table has its indexes."""
    url = sql_url(kind, tmp_path)
    for _ in range(3):
        name = unique_table()
        stores = [SqlStore.from_url(url, Data, table=session_table(name=name)) for _ in range(4)]
        try:
            await asyncio.gather(*(store.create_table() for store in stores))
            assert await index_names(stores[0]) >= {f"ix_{name}_expires_at", f"ix_{name}_subject"}
        finally:
            await stores[0].drop_table()
            for store in stores:
                await store.aclose()


@pytest.mark.anyio
async def test_a_table_left_without_its_indexes_gets_them(tmp_path: Path) -> None:
    """A worker stopped between ``CREATE TABLE`` and ``CREATE INDEX``: the next
    ``create_table`` adds the indexes."""
    name = unique_table()
    async with SqlStore.from_url(
        sql_url("sqlite", tmp_path), Data, table=session_table(name=name)
    ) as store:
        async with store.engine.begin() as conn:
            await conn.execute(CreateTable(store.table))  # the table alone
        await store.create_table()
        assert await index_names(store) == {f"ix_{name}_expires_at", f"ix_{name}_subject"}


@pytest.mark.anyio
async def test_dropping_a_locked_table_fails_within_the_timeout() -> None:
    url = require_postgres()
    table = session_table(name=unique_table())
    async with SqlStore.from_url(url, Data, table=table, timeout=0.5) as store:
        await store.create_table()
        other = create_async_engine(url)
        try:
            async with other.begin() as locker:
                await locker.execute(text(f"LOCK TABLE {table.name} IN ACCESS SHARE MODE"))
                with pytest.raises(StoreError, match="timed out"):
                    await asyncio.wait_for(store.drop_table(), 5)
        finally:
            await other.dispose()
            await store.drop_table()


@pytest.mark.parametrize("url", [require_postgres, require_mariadb], ids=["postgresql", "mariadb"])
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_store_serves_one_event_loop_after_another(url: Any) -> None:
    """Two ``asyncio.run`` (two test clients over one app, say): the second loop's calls
    work, on fresh connections. The first loop's connections cannot be closed from
    another loop: they are dropped, and Python warns that they were never closed."""
    store: SqlStore[Data] = SqlStore.from_url(url(), Data, table=session_table(name=unique_table()))

    async def first() -> Session[Data]:
        await store.create_table()
        saved = await store.save(new_session({"n": 1}, EXPIRY, now=utc_now()))
        assert isinstance(saved, Ok)
        return saved.value

    session = asyncio.run(first())

    async def second() -> None:
        for _ in range(3):
            assert await store.load(session.id) == session
        await store.drop_table()
        await store.aclose()

    asyncio.run(second())
    gc.collect()  # the first loop's connections, and their warnings, go now


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
async def test_sqlite_in_memory_survives_a_cancelled_call(url: str) -> None:
    """A call cancelled midway (its timeout, a client gone) closes the engine's one
    connection; the database, held open beside it, keeps every session."""
    async with SqlStore.from_url(url, Data) as store:
        await store.create_table()
        saved = await store.save(new_session({"n": 1}, EXPIRY, now=utc_now()))
        assert isinstance(saved, Ok)
        loading = asyncio.ensure_future(store.load(saved.value.id))
        for _ in range(2):
            await asyncio.sleep(0)  # into the driver's call
        loading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loading
        assert await store.load(saved.value.id) == saved.value
    async with SqlStore.from_url(url, Data) as other:  # each store its own database
        await other.create_table()
        assert await other.load(saved.value.id) is None


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_sqlite_in_memory_calls_beside_a_timed_out_one_end() -> None:
    """The engine's one connection is lent to one call at a time: a call that times out
    midway closes it, and the calls that were waiting for it still end, each with its
    result or its own timeout. Shared by every task (a ``StaticPool``), they waited for
    its close forever."""
    async with SqlStore.from_url("sqlite+aiosqlite://", Data) as patient:
        await patient.create_table()
        saved = await patient.save(new_session({"n": 1}, EXPIRY, now=utc_now()))
        assert isinstance(saved, Ok)
        store = SqlStore(patient.engine, Data, timeout=0.001)  # the same connection
        big = {"x": "y" * 60_000}
        outcomes: set[str] = set()
        for _ in range(5):
            calls = [
                asyncio.ensure_future(
                    store.save(new_session(big, EXPIRY, now=utc_now()))
                    if i % 3 == 0
                    else store.load(saved.value.id)
                )
                for i in range(30)
            ]
            done, stuck = await asyncio.wait(calls, timeout=20)  # a hang, not a speed bound
            assert not stuck
            for call in done:
                error = call.exception()
                assert error is None or isinstance(error, StoreUnavailableError)
                outcomes.add("ok" if error is None else "timed out")
        assert "timed out" in outcomes  # what the test is about happened
        assert await patient.load(saved.value.id) == saved.value
        # The timed-out calls' connections close in aiosqlite's threads: let them report
        # to this loop before it closes (cleanup only, nothing is measured).
        await asyncio.sleep(1)
    # A close cut off by its timeout leaves its sqlite3 connection to the garbage
    # collector, which warns on Python 3.13: collected here, not in a later test.
    gc.collect()


@pytest.mark.anyio
async def test_a_timed_out_save_on_mariadb_does_not_commit_later() -> None:
    """The server stops waiting for a row lock soon after the store's timeout (its lock
    wait is bounded by it, in whole seconds): a save answered with a timeout does not
    land once the lock is let go. It used to wait there for MariaDB's 50 s, then commit."""
    url = require_mariadb()
    table = session_table(name=unique_table())
    async with SqlStore.from_url(url, Data, table=table, timeout=0.3) as store:
        await store.create_table()
        try:
            saved = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
            assert isinstance(saved, Ok)
            first = saved.value
            locker = create_async_engine(url)
            async with locker.connect() as conn:
                await conn.begin()
                row = table.c.key == store.key_for(first.id)
                await conn.execute(select(table).where(row).with_for_update())
                with pytest.raises(StoreUnavailableError, match="timed out"):
                    await store.save(replace_data(first, {"n": 1}, now=utc_now()))
                await asyncio.sleep(2.5)  # past the server's lock wait of 1 s
                await conn.rollback()
            await locker.dispose()
            assert await store.load(first.id) == first
        finally:
            await store.drop_table()


@pytest.mark.parametrize(
    ("url", "timeout", "connect_args"),
    [
        (
            "mysql+aiomysql://root@h/db",
            0.3,
            {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"},
        ),
        (
            "mariadb+asyncmy://root@h/db",
            4.5,  # the server gives up before the client (found by an audit: 5 was late)
            {"init_command": "SET SESSION innodb_lock_wait_timeout = 4"},
        ),
        (
            "mysql+aiomysql://root@h/db",
            1.5,
            {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"},
        ),
        ("sqlite+aiosqlite:///s.db", 0.5, {"timeout": 0.5}),
        ("postgresql+asyncpg://u@h/db", 0.5, {}),
        ("sqlite+aiosqlite:///s.db", None, None),
    ],
)
def test_the_drivers_own_waits_are_bounded_by_the_timeout(
    url: str, timeout: float | None, connect_args: dict[str, object] | None
) -> None:
    options: dict[str, Any] = {}
    driver_limits(url, timeout, options)
    assert options.get("connect_args") == connect_args
    given: dict[str, Any] = {"connect_args": {"timeout": 9, "init_command": "SET x = 1"}}
    driver_limits(url, timeout, given)
    assert given == {"connect_args": {"timeout": 9, "init_command": "SET x = 1"}}  # kept
