"""What only the SQL store does: its table, its statements, garbage rows, purging, timeouts.

The store contract itself runs on every SQL database in ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Generator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from typed_sessions import (
    DEFAULT_MAX_DATA_BYTES,
    Conflict,
    Err,
    Expiry,
    Ok,
    Session,
    SessionId,
    StoreCorruptError,
    StoreUnavailableError,
    new_session,
    replace_data,
    session_handle,
    utc_now,
)
from typed_sessions.core.ids import id_digest, new_session_id
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table, to_micros

from .conftest import FakeClock
from .redis_server import free_port
from .sql_server import SQL_KINDS, require_mariadb, require_postgres, sql_url, unique_table

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]


@pytest.fixture(params=SQL_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[SqlStore[Data]]:
    made: SqlStore[Data] = SqlStore.from_url(
        sql_url(request.param, tmp_path),
        Data,
        table=session_table(name=unique_table()),
        clock=FakeClock(utc_now()),
    )
    await made.create_table()
    try:
        yield made
    finally:
        await made.drop_table()
        await made.aclose()


def clock_of(store: SqlStore[Any]) -> FakeClock:
    clock = store._clock  # pyright: ignore[reportPrivateUsage]  # the clock it was given
    assert isinstance(clock, FakeClock)
    return clock


async def saved(store: SqlStore[Data], data: Data | None = None) -> Session[Data]:
    session = new_session({"n": 0} if data is None else data, EXPIRY, now=clock_of(store)())
    result = await store.save(session)
    assert isinstance(result, Ok)
    return result.value


@contextmanager
def statements(store: SqlStore[Any]) -> Generator[list[str], None, None]:
    """Collect the first word of every statement the store's engine sends."""
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


# -- the table ----------------------------------------------------------------------


async def test_rows_are_keyed_by_a_hash_never_the_session_id(store: SqlStore[Data]) -> None:
    session = await saved(store, {"secret": "x"})
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(store.table))).all()
    assert len(rows) == 1
    assert session.id not in repr(tuple(rows[0]))
    assert rows[0].key == store.key_for(session.id)
    assert len(rows[0].key) == 64


def test_the_table_goes_on_the_metadata_given_with_named_indexes() -> None:
    from sqlalchemy import MetaData

    metadata = MetaData()
    table = session_table(metadata, name="app_sessions")
    assert metadata.tables["app_sessions"] is table
    assert {index.name for index in table.indexes} == {
        "ix_app_sessions_expires_at",
        "ix_app_sessions_subject",
    }
    assert [column.name for column in table.primary_key] == ["key"]


# -- round trips --------------------------------------------------------------------


async def test_one_statement_per_call_and_two_for_a_refused_save(store: SqlStore[Data]) -> None:
    first = await saved(store)
    with statements(store) as sent:
        await store.load(first.id)
    assert sent == ["SELECT"]
    with statements(store) as sent:
        second = await store.save(replace_data(first, {"n": 1}, now=clock_of(store)()))
    assert sent == ["UPDATE"]
    with statements(store) as sent:
        assert await store.save(first) == Err(Conflict(expected=1, found=2))
    assert sent == ["UPDATE", "SELECT"]
    with statements(store) as sent:
        assert isinstance(await store.save(new_session({}, EXPIRY, now=clock_of(store)())), Ok)
    assert sent == ["INSERT"]
    assert isinstance(second, Ok)
    with statements(store) as sent:
        await store.delete(first.id)
    assert sent == ["DELETE"]


async def test_no_transaction_is_left_open() -> None:
    """Autocommit: the server sees no transaction between the store's calls."""
    url = require_postgres()
    store: SqlStore[Data] = SqlStore.from_url(
        url, Data, table=session_table(name=unique_table()), pool_size=1, clock=FakeClock(utc_now())
    )
    await store.create_table()
    try:
        first = await saved(store)
        await store.load(first.id)
        async with store.engine.connect() as probe:
            open_ones = await probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%'"
                )
            )
        assert open_ones == 0
    finally:
        await store.drop_table()
        await store.aclose()


# -- garbage rows -------------------------------------------------------------------


async def spoil(store: SqlStore[Any], session: Session[Any], **values: Any) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(store.table).where(store.table.c.key == store.key_for(session.id)).values(values)
        )


async def test_a_garbage_row_raises_store_corrupt(store: SqlStore[Data]) -> None:
    first = await saved(store)
    await spoil(store, first, data="\x01not json{")
    with pytest.raises(StoreCorruptError, match="unreadable session record"):
        await store.load(first.id)
    await spoil(store, first, data="{}", created_at=2**62)
    with pytest.raises(StoreCorruptError, match="not valid"):
        await store.load(first.id)
    await spoil(store, first, created_at=0, device='{"user_agent": 5}')
    with pytest.raises(StoreCorruptError, match="not valid"):
        await store.load(first.id)


class Model(BaseModel):
    name: str


async def test_a_row_of_another_data_model_raises_store_corrupt(store: SqlStore[Data]) -> None:
    first = await saved(store, {"other": 1})
    typed: SqlStore[Model] = SqlStore(store.engine, Model, table=store.table, clock=clock_of(store))
    with pytest.raises(StoreCorruptError):
        await typed.load(first.id)
    assert await store.load(first.id) == first  # the row is left as it was


async def test_discarding_a_garbage_row_deletes_it_and_logs(
    store: SqlStore[Data], caplog: pytest.LogCaptureFixture
) -> None:
    first = await saved(store)
    await spoil(store, first, data="garbage")
    discarding: SqlStore[Data] = SqlStore(
        store.engine, Data, table=store.table, clock=clock_of(store), on_corrupt="discard"
    )
    with caplog.at_level(logging.WARNING, logger="typed_sessions.stores.sql"):
        assert await discarding.load(first.id) is None
    assert f"[sid#{id_digest(first.id)}]" in caplog.text  # the usual short digest
    assert store.key_for(first.id) not in caplog.text
    assert first.id not in caplog.text
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(store.table)) == 0
    fresh = new_session({"n": 1}, EXPIRY, now=clock_of(store)(), session_id=first.id)
    assert isinstance(await discarding.save(fresh), Ok)


# -- expiry and purging -------------------------------------------------------------


async def test_an_expired_row_is_replaced_by_a_new_record_of_the_same_id(
    store: SqlStore[Data],
) -> None:
    first = await saved(store)
    clock_of(store).advance(timedelta(hours=3))
    again = new_session({"n": 7}, EXPIRY, now=clock_of(store)(), session_id=first.id)
    assert await store.save(again) == Ok(dataclasses.replace(again, version=1))
    loaded = await store.load(first.id)
    assert loaded is not None
    assert loaded.data == {"n": 7}


async def test_purge_deletes_expired_rows_only_in_bounded_batches(store: SqlStore[Data]) -> None:
    short = Expiry(idle=timedelta(minutes=1), absolute=timedelta(minutes=1))
    clock = clock_of(store)
    dead = [new_session({"i": i}, short, now=clock()) for i in range(25)]
    for session in dead:
        assert isinstance(await store.save(session), Ok)
    alive = await saved(store, {"alive": True})
    clock.advance(timedelta(minutes=2))
    with statements(store) as sent:
        assert await store.purge_expired(batch=10) == 25
    assert sent == ["DELETE"] * 3  # 10, 10, 5
    assert await store.purge_expired(batch=10) == 0
    assert await store.load(alive.id) == alive
    with pytest.raises(ValueError, match="batch"):
        await store.purge_expired(batch=0)


async def test_purging_runs_in_the_background_until_the_block_ends(
    store: SqlStore[Data],
) -> None:
    short = Expiry(idle=timedelta(minutes=1), absolute=timedelta(minutes=1))
    session: Session[Data] = new_session({}, short, now=clock_of(store)())
    assert isinstance(await store.save(session), Ok)
    clock_of(store).advance(timedelta(minutes=2))
    async with store.purging(timedelta(milliseconds=10)) as task:
        for _ in range(500):
            async with store.engine.connect() as conn:
                if await conn.scalar(select(func.count()).select_from(store.table)) == 0:
                    break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the background purge did not run")
    assert task.cancelled()


# -- failures -----------------------------------------------------------------------


async def test_an_unreachable_database_raises_store_unavailable() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    async with SqlStore.from_url(url, Data, timeout=2) as store:
        session: Session[Data] = new_session({}, EXPIRY, now=utc_now())
        for call in (store.load(session.id), store.save(session), store.delete(session.id)):
            with pytest.raises(StoreUnavailableError, match="SQL database unavailable"):
                await call
        with pytest.raises(StoreUnavailableError):
            await store.ping()


async def test_a_save_blocked_by_a_lock_times_out_and_leaves_the_row(tmp_path: Any) -> None:
    """A row locked by another transaction: the save fails in time with
    StoreUnavailableError, the row is unchanged, and the same store serves again."""
    url = require_postgres()
    table = session_table(name=unique_table())
    async with SqlStore.from_url(
        url, Data, table=table, timeout=0.5, clock=FakeClock(utc_now())
    ) as store:
        await store.create_table()
        try:
            first = await saved(store)
            other = create_async_engine(url)
            try:
                async with other.begin() as locker:
                    key = store.key_for(first.id)
                    await locker.execute(select(table).where(table.c.key == key).with_for_update())
                    changed = replace_data(first, {"n": 1}, now=clock_of(store)())
                    with pytest.raises(StoreUnavailableError, match="timed out"):
                        await store.save(changed)
            finally:
                await other.dispose()
            assert await store.load(first.id) == first
            assert isinstance(await store.save(changed), Ok)
        finally:
            await store.drop_table()


async def test_a_users_engine_without_autocommit_is_used_in_autocommit() -> None:
    url = require_mariadb()
    engine = create_async_engine(url)
    try:
        store: SqlStore[Data] = SqlStore(
            engine, Data, table=session_table(name=unique_table()), clock=FakeClock(utc_now())
        )
        await store.create_table()
        try:
            first = await saved(store)
            assert await store.load(first.id) == first
        finally:
            await store.drop_table()
            await store.aclose()  # not the store's engine: left open
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


def test_options_are_checked() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(ValueError, match="timeout"):
        SqlStore(engine, Data, timeout=0)
    with pytest.raises(ValueError, match="on_corrupt"):
        SqlStore(engine, Data, on_corrupt="ignore")  # type: ignore[call-overload]  # the point
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_data_bytes"):
            SqlStore(engine, Data, max_data_bytes=bad)
        with pytest.raises(ValueError, match="max_data_bytes"):
            SqlStore.from_url("sqlite+aiosqlite://", Data, max_data_bytes=bad)


async def test_from_url_keeps_the_codec_options_and_gives_the_engine_the_rest() -> None:
    def upgrade(value: Any) -> Any:
        return value

    store = SqlStore.from_url(
        "sqlite+aiosqlite://", Data, max_data_bytes=1 << 20, upgrade=upgrade, echo=True
    )
    async with store:
        assert (store.codec.max_data_bytes, store.codec.upgrade) == (1 << 20, upgrade)
        assert store.engine.echo is True
    default: SqlStore[Data] = SqlStore(create_async_engine("sqlite+aiosqlite://"), Data)
    assert (default.codec.max_data_bytes, default.codec.upgrade) == (DEFAULT_MAX_DATA_BYTES, None)


def test_sessions_times_are_stored_as_microseconds() -> None:
    now = utc_now()
    assert to_micros(now) % 1_000_000 == now.microsecond


async def test_subject_index_calls_are_one_statement_each_ending_many_two_each(
    store: SqlStore[Data],
) -> None:
    clock = clock_of(store)
    made: Session[Data] = new_session({}, EXPIRY, now=clock(), subject="ada")
    result = await store.save(made)
    assert isinstance(result, Ok)
    with statements(store) as sent:
        [listed] = await store.list_subject("ada")
    assert sent == ["SELECT"]
    with statements(store) as sent:
        assert await store.end_subject("ada", keep=made.id) == 0
        assert await store.end_subject_session("ada", listed.handle) is True
        assert await store.end_all() == 0
    # end_subject and end_all: a DELETE and a query finding none left (sql_subjects.py)
    assert sent == ["DELETE", "SELECT", "DELETE", "DELETE", "SELECT"]
    with statements(store) as sent:
        assert await store.end_subject_session("ada", "not a handle") is False
    assert sent == []  # no handle looks like that: nothing to ask


async def test_the_cap_costs_a_select_only_when_a_new_record_of_a_subject_is_saved(
    tmp_path: Any,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/capped.db"
    async with SqlStore.from_url(url, Data, max_per_subject=2) as store:
        await store.create_table()
        first = await store.save(new_session({}, EXPIRY, now=utc_now(), subject="ada"))
        assert isinstance(first, Ok)
        with statements(store) as sent:
            await store.save(replace_data(first.value, {"n": 1}, now=utc_now()))
        assert sent == ["UPDATE"]
        with statements(store) as sent:
            await store.save(new_session({}, EXPIRY, now=utc_now(), subject="ada"))
        assert sent == ["INSERT", "SELECT"]
    with pytest.raises(ValueError, match="max_per_subject"):
        SqlStore.from_url(url, Data, max_per_subject=0)


async def test_any_text_round_trips(store: SqlStore[Data]) -> None:
    """NUL, emoji (4-byte UTF-8: utf8mb4 on MariaDB), right-to-left and control text."""
    text_ = "nul\x00 emoji \U0001f600 rtl \u202e zero-width \u200b é 中文 \t\n\\\"'"
    first = await saved(store, {text_: text_, "list": [text_]})
    loaded = await store.load(first.id)
    assert loaded is not None
    assert loaded.data == {text_: text_, "list": [text_]}


@pytest.mark.parametrize("session_id", ["", "x" * 10_000, "\udcff", "é", "' OR 1=1 --"])
async def test_hostile_ids_are_simply_unknown(store: SqlStore[Data], session_id: str) -> None:
    assert await store.load(SessionId(session_id)) is None
    await store.delete(SessionId(session_id))
    result = await store.save(
        dataclasses.replace(
            new_session({}, EXPIRY, now=clock_of(store)()), id=SessionId(session_id), version=3
        )
    )
    assert result == Err(Conflict(expected=3, found=None))


async def test_a_failing_background_purge_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
    async with SqlStore.from_url(url, Data, timeout=1) as store:
        with caplog.at_level(logging.WARNING, logger="typed_sessions.stores.sql"):
            async with store.purging(timedelta(milliseconds=10)) as task:
                for _ in range(500):
                    if caplog.text.count("purging expired sessions failed") >= 2:
                        break
                    await asyncio.sleep(0.01)
                assert not task.done()  # still running: it goes on after a failure
        assert caplog.text.count("purging expired sessions failed") >= 2
        assert "(StoreUnavailableError)" in caplog.text  # the class only: no URL, no SQL
    with pytest.raises(ValueError, match="every"):
        async with store.purging(timedelta(0)):
            pass


async def test_a_garbage_row_in_a_subjects_listing(store: SqlStore[Data]) -> None:
    good = await store.save(new_session({}, EXPIRY, now=clock_of(store)(), subject="ada"))
    bad = await store.save(new_session({}, EXPIRY, now=clock_of(store)(), subject="ada"))
    assert isinstance(good, Ok)
    assert isinstance(bad, Ok)
    await spoil(store, bad.value, device="not json")
    with pytest.raises(StoreCorruptError):
        await store.list_subject("ada")
    discarding: SqlStore[Data] = SqlStore(
        store.engine, Data, table=store.table, clock=clock_of(store), on_corrupt="discard"
    )
    [listed] = await discarding.list_subject("ada")
    assert listed.created_at == good.value.created_at
    with pytest.raises(ValueError, match="subject"):
        await store.list_subject("")


async def test_connections_cut_by_the_server_are_replaced_by_themselves() -> None:
    """The server ends the store's pooled connections (a restart, a failover, an idle
    timeout): the next load runs again on a fresh connection, and saves go on."""
    url = require_postgres()
    name = unique_table()
    async with SqlStore.from_url(
        url,
        Data,
        table=session_table(name=name),
        clock=FakeClock(utc_now()),
        connect_args={"server_settings": {"application_name": name}},
    ) as store:
        await store.create_table()
        try:
            first = await saved(store)
            await asyncio.gather(*(store.load(first.id) for _ in range(4)))  # pool 4 deep
            admin = create_async_engine(url)
            try:
                async with admin.connect() as conn:
                    ended = await conn.scalar(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = :name"
                        ),
                        {"name": name},
                    )
            finally:
                await admin.dispose()
            assert ended
            assert await store.load(first.id) == first
            changed = replace_data(first, {"n": 1}, now=clock_of(store)())
            assert isinstance(await store.save(changed), Ok)
        finally:
            await store.drop_table()


async def test_a_rotation_racing_the_ending_of_a_subject_is_ended_too() -> None:
    """PostgreSQL: a rotation inserts its new row after the ending ``DELETE`` took its
    snapshot, and ends its old row before that ``DELETE`` reaches it. One statement would
    miss both; the second ``DELETE`` ends the new row."""
    made: SqlStore[Data] = SqlStore.from_url(
        require_postgres(), Data, table=session_table(name=unique_table())
    )
    await made.create_table()
    try:
        mine = await made.save(new_session({}, EXPIRY, now=utc_now(), subject="ada"))
        other = await made.save(new_session({}, EXPIRY, now=utc_now(), subject="ada"))
        assert isinstance(mine, Ok)
        assert isinstance(other, Ok)
        moved = dataclasses.replace(other.value, id=new_session_id(), version=0)
        waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
        async with made.engine.connect() as connection:  # the rotation's end of the old
            rotation = await connection.execution_options(isolation_level="READ COMMITTED")
            await rotation.begin()  # row, held uncommitted
            old_row = made.table.c.key == made.key_for(other.value.id)
            await rotation.execute(delete(made.table).where(old_row))
            ending = asyncio.create_task(made.end_subject("ada", keep=mine.value.id))
            for _ in range(1000):  # until the ending DELETE waits for the old row
                if (await rotation.execute(waiting)).scalar():
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the ending DELETE never waited for the row")
            assert isinstance(await made.save(moved), Ok)  # the rotation's new row
            await rotation.commit()
        assert await ending == 1
        assert await made.load(moved.id) is None
        listed = await made.list_subject("ada")
        assert [i.handle for i in listed] == [session_handle(mine.value.id)]
    finally:
        await made.drop_table()
        await made.aclose()
