"""SqlStore over rows it did not write (edited by hand, or by other code): every call
gives a store outcome (``StoreCorruptError``, or the row discarded), never a raw driver,
``ValueError``, ``TypeError`` or ``OverflowError`` (a 500). Found by an audit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from typed_sessions import (
    Expiry,
    Ok,
    Session,
    StoreCorruptError,
    expire_session,
    new_session,
    touch_session,
    utc_now,
)
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table, to_micros

from .conftest import FakeClock
from .sql_server import SQL_KINDS, sql_url

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]


@asynccontextmanager
async def made(url: str, **options: Any) -> AsyncGenerator[SqlStore[Data], None]:
    """A store on a table of its own, dropped afterwards."""
    name = f"ts_hostile_{uuid.uuid4().hex[:16]}"
    store: SqlStore[Data] = SqlStore.from_url(
        url, Data, table=session_table(name=name), clock=FakeClock(utc_now()), **options
    )
    await store.create_table()
    try:
        yield store
    finally:
        await store.drop_table()
        await store.aclose()


@pytest.fixture(params=SQL_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore[Data]]:
    async with made(sql_url(request.param, tmp_path)) as kept:
        yield kept


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore[Data]]:
    async with made(sql_url("sqlite", tmp_path)) as kept:
        yield kept


def clock_of(store: SqlStore[Any]) -> FakeClock:
    clock = store._clock  # pyright: ignore[reportPrivateUsage]
    assert isinstance(clock, FakeClock)
    return clock


async def saved(store: SqlStore[Data], subject: str | None = "ada") -> Session[Data]:
    now = clock_of(store)()
    result = await store.save(new_session({"n": 0}, EXPIRY, now=now, subject=subject))
    assert isinstance(result, Ok)
    return result.value


async def spoil(store: SqlStore[Any], session: Session[Any], **values: Any) -> None:
    """Set columns of ``session``'s row through SQLAlchemy's types."""
    async with store.engine.begin() as conn:
        row = store.table.c.key == store.key_for(session.id)
        await conn.execute(update(store.table).where(row).values(values))


async def spoil_sqlite(store: SqlStore[Any], session: Session[Any], assignment: str) -> None:
    """SQLite only: an assignment its column types would not let through SQLAlchemy."""
    table, key = store.table.name, store.key_for(session.id)
    async with store.engine.begin() as conn:
        await conn.execute(text(f"UPDATE {table} SET {assignment} WHERE key = '{key}'"))  # noqa: S608


def discarding(store: SqlStore[Data]) -> SqlStore[Data]:
    return SqlStore(
        store.engine, Data, table=store.table, on_corrupt="discard", clock=clock_of(store)
    )


@pytest.mark.parametrize("subject", ["", "ada\n", "ada\u202e"])
async def test_a_subject_that_is_not_valid_makes_the_row_corrupt(
    store: SqlStore[Data], subject: str
) -> None:
    """It used to load, then every save (a touch, even an end) raised ValueError."""
    first = await saved(store)
    await spoil(store, first, subject=subject)
    with pytest.raises(StoreCorruptError, match="subject"):
        await store.load(first.id)
    assert await discarding(store).load(first.id) is None
    assert await store.load(first.id) is None  # discarded


async def test_a_version_at_the_64_bit_limit_makes_the_row_corrupt(
    store: SqlStore[Data],
) -> None:
    """Its next save could not be written (OverflowError on SQLite, a 503 forever on the
    others)."""
    first = await saved(store)
    await spoil(store, first, version=2**63 - 1)
    with pytest.raises(StoreCorruptError, match="version"):
        await store.load(first.id)


async def test_a_start_near_the_end_of_datetime_loads_and_is_touched(
    store: SqlStore[Data],
) -> None:
    """It loaded, and the first touch (created_at + absolute) raised OverflowError: the
    absolute deadline beyond datetime's range now binds nothing."""
    first = await saved(store)
    await spoil(store, first, created_at=to_micros(datetime(9999, 12, 31, 23, tzinfo=UTC)))
    loaded = await store.load(first.id)
    assert loaded is not None
    later = clock_of(store)() + timedelta(minutes=10)
    touched = touch_session(loaded, EXPIRY, now=later)
    assert touched.expires_at == later + EXPIRY.idle
    assert isinstance(await store.save(touched), Ok)


async def test_a_record_saved_at_a_far_future_clock_loads(tmp_path: Path) -> None:
    """A fake clock in year 9950: what the store saved, it loads (found by a review)."""
    far = datetime(9950, 1, 1, tzinfo=UTC)
    async with made(sql_url("sqlite", tmp_path)) as kept:
        clock_of(kept).now = far
        session = new_session({"n": 1}, Expiry(), now=far, subject="ada")
        assert isinstance(await kept.save(session), Ok)
        loaded = await kept.load(session.id)
        assert loaded is not None
        assert loaded.version == 1


async def test_sqlite_text_that_is_not_utf8_is_corrupt_and_discarded(
    sqlite_store: SqlStore[Data],
) -> None:
    """SQLite keeps any bytes as TEXT and its driver cannot read them back: that was a
    StoreUnavailableError (a 503 until the row expired, even when discarding)."""
    first = await saved(sqlite_store)
    await spoil_sqlite(sqlite_store, first, "data = CAST(X'ff7b7d' AS TEXT)")
    with pytest.raises(StoreCorruptError, match="UTF-8"):
        await sqlite_store.load(first.id)
    assert await discarding(sqlite_store).load(first.id) is None
    assert await sqlite_store.load(first.id) is None  # discarded


async def test_sqlite_a_version_that_is_not_an_integer_fails_a_save_as_corrupt(
    sqlite_store: SqlStore[Data],
) -> None:
    """A refused save reads the stored version: text there raised ValueError."""
    first = await saved(sqlite_store)
    await spoil_sqlite(sqlite_store, first, "version = 'x'")
    later = clock_of(sqlite_store)() + timedelta(minutes=10)
    with pytest.raises(StoreCorruptError, match="version"):
        await sqlite_store.save(touch_session(first, EXPIRY, now=later))
    with pytest.raises(StoreCorruptError, match="version"):
        await sqlite_store.save(expire_session(first))


async def test_sqlite_the_cap_counts_a_start_that_is_not_an_integer_as_oldest(
    tmp_path: Path,
) -> None:
    """Sorting the starts raised TypeError after the new row was inserted."""
    async with made(sql_url("sqlite", tmp_path), max_per_subject=2) as store:
        clock = clock_of(store)
        spoilt = await saved(store)
        clock.advance(timedelta(seconds=1))
        kept = await saved(store)
        clock.advance(timedelta(seconds=1))
        await spoil_sqlite(store, spoilt, "created_at = 'x'")
        newest = await saved(store)
        assert await store.load(newest.id) is not None
        assert await store.load(kept.id) is not None
        counting = select(func.count()).select_from(store.table)
        async with store.engine.connect() as conn:
            count = (await conn.execute(counting)).scalar()
        assert count == 2  # the spoilt row, counted as the oldest, was ended
