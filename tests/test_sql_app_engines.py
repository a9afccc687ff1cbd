"""Engines the app makes and hands to ``SqlStore`` (found by an audit): the isolation
level in effect is the engine's execution option, not the one it was made with; a pool of
one connection (in-memory SQLite) keeps its database through a second event loop and a
call cut off by the timeout; a value the driver cannot encode is a ``StoreError``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from typed_sessions import Expiry, Ok, Session, SqlStore, StoreError, new_session, utc_now
from typed_sessions.stores.sql_table import session_table

from .sql_server import require_mariadb, unique_table

Data = dict[str, Any]


def session(data: Data | None = None, subject: str | None = None) -> Session[Data]:
    return new_session(data or {"n": 1}, Expiry(), now=utc_now(), subject=subject)


@pytest.mark.anyio
@pytest.mark.parametrize("made", ["AUTOCOMMIT", "SERIALIZABLE", None])
async def test_a_save_is_kept_whatever_isolation_level_the_engine_was_given(
    tmp_path: Path, made: str | None
) -> None:
    """An engine made with one level and given another by ``execution_options``: the
    store saw only the first, took ``SERIALIZABLE`` for autocommit, and never committed."""
    options = {} if made is None else {"isolation_level": made}
    base = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", **options)
    for level in ("SERIALIZABLE", "AUTOCOMMIT"):
        engine = base.execution_options(isolation_level=level)
        store: SqlStore[Data] = SqlStore(engine, Data, table=session_table(name=unique_table()))
        await store.create_table()
        saved = await store.save(session(subject="ada"))
        assert isinstance(saved, Ok)
        again: SqlStore[Data] = SqlStore(base, Data, table=store.table)  # another worker
        assert await again.load(saved.value.id) == saved.value
        assert len(await again.list_subject("ada")) == 1
    await base.dispose()


def _in_a_loop_of_its_own(engine: AsyncEngine, store: SqlStore[Data], saved: Session[Data]) -> Any:
    async def read() -> Any:
        return await store.load(saved.id)

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(read())))
    thread.start()
    thread.join()
    return result[0]


def test_an_in_memory_database_survives_a_second_event_loop() -> None:
    """``sqlite+aiosqlite://`` (a ``StaticPool``: its one connection is the database), as
    FastAPI's test setups make it, used from a second ``asyncio.run``: the store dropped
    the pool's connections there, and the database with them."""
    engine = create_async_engine("sqlite+aiosqlite://")
    store: SqlStore[Data] = SqlStore(engine, Data)

    async def first() -> Session[Data]:
        await store.create_table()
        saved = await store.save(session())
        assert isinstance(saved, Ok)
        return saved.value

    saved = asyncio.run(first())
    assert _in_a_loop_of_its_own(engine, store, saved) == saved
    assert asyncio.run(store.load(saved.id)) == saved
    asyncio.run(engine.dispose())


@pytest.mark.anyio
async def test_an_in_memory_database_survives_calls_cut_off_by_the_timeout() -> None:
    """A call cut off midway closed the pool's one connection: every session was gone."""
    engine = create_async_engine("sqlite+aiosqlite://", isolation_level="AUTOCOMMIT")
    store: SqlStore[Data] = SqlStore(engine, Data)
    await store.create_table()
    first = await store.save(session(subject="ada"))
    assert isinstance(first, Ok)
    for _ in range(300):
        assert isinstance(await store.save(session({"pad": "x" * 500}, "ada")), Ok)
    hasty: SqlStore[Data] = SqlStore(engine, Data, timeout=0.002)
    for _ in range(20):
        with contextlib.suppress(StoreError):  # timed out, as expected now and then
            await hasty.list_subject("ada")
    assert await store.load(first.value.id) == first.value
    assert len(await store.list_subject("ada")) == 301
    await engine.dispose()


@pytest.mark.anyio
async def test_a_value_the_driver_cannot_encode_is_a_store_error() -> None:
    """MariaDB over ``charset=latin1``: aiomysql raises ``UnicodeEncodeError`` as it is."""
    url = make_url(require_mariadb()).update_query_dict({"charset": "latin1"})
    engine = create_async_engine(url)
    store: SqlStore[Data] = SqlStore(engine, Data, table=session_table(name=unique_table()))
    await store.create_table()
    try:
        assert isinstance(await store.save(session({"name": "José"})), Ok)
        with pytest.raises(StoreError, match="UnicodeEncodeError"):
            await store.save(session({"name": "漢字"}))
        with pytest.raises(StoreError, match="UnicodeEncodeError"):
            await store.list_subject("a\U0001f600")
    finally:
        await store.drop_table()
        await engine.dispose()
