""" "Sign out everywhere else" while another device's session keeps moving to new IDs
(found by an audit): every rotation that finished before ``end_subject`` returned is
ended too, however many passes that takes; one that never stops makes it raise, never
return as if all had ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from typed_sessions import (
    Expiry,
    Ok,
    Session,
    SqlStore,
    StoreError,
    new_session,
    session_handle,
    utc_now,
)
from typed_sessions.stores.operations import move_session
from typed_sessions.stores.redis import RedisStore
from typed_sessions.stores.sql_table import session_table
from typed_sessions.stores.subjects import ENDING_PASSES

from .redis_server import delete_prefix, require_redis, unique_prefix
from .sql_server import require_postgres, unique_table

pytestmark = pytest.mark.anyio

Data = dict[str, Any]
EXPIRY = Expiry()


async def signed_in(store: Any, subject: str = "ada") -> Session[Data]:
    empty: Data = {}
    result = await store.save(new_session(empty, EXPIRY, now=utc_now(), subject=subject))
    assert isinstance(result, Ok)
    return result.value  # type: ignore[no-any-return]


async def rotated(store: Any, session: Session[Data]) -> Session[Data]:
    """``session`` moved to a new ID, as a sign-in on its device does."""
    result = await move_session(store, session, session.data, lambda d: d, expiry=EXPIRY)
    assert isinstance(result, Ok)
    return result.value


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStore[Data]]:
    client = Redis.from_url(require_redis())
    prefix = unique_prefix()
    yield RedisStore(client, Data, prefix=prefix)
    await delete_prefix(client, prefix)
    await client.aclose()


@pytest.mark.parametrize("rotations", [3, ENDING_PASSES])
async def test_redis_ends_what_rotated_during_every_pass_or_says_it_could_not(
    redis_store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch, rotations: int
) -> None:
    """The other device rotates right after each read of the index: a pass ends nothing
    (the record it listed is gone), the next finds the new one. Rotating after every one
    of the passes, it is never caught: that is an error, not a count."""
    mine, other = await signed_in(redis_store), await signed_in(redis_store)
    head = [other]
    send = redis_store._send  # pyright: ignore[reportPrivateUsage]  # every pipeline's

    async def rotating_after_each_read(calls: Any) -> Any:
        replies = await send(calls)
        if len(head) <= rotations and any(call[0] == "ZRANGE" for call in calls):
            head.append(await rotated(redis_store, head[-1]))
        return replies

    monkeypatch.setattr(redis_store, "_send", rotating_after_each_read)
    if rotations < ENDING_PASSES:
        assert await redis_store.end_subject("ada", keep=mine.id) == 1
    else:
        with pytest.raises(StoreError, match="kept moving to new IDs"):
            await redis_store.end_subject("ada", keep=mine.id)
    monkeypatch.undo()
    assert len(head) == rotations + 1
    live = [s.id for s in head if await redis_store.load(s.id) is not None]
    assert live == ([] if rotations < ENDING_PASSES else [head[-1].id])


@pytest.mark.parametrize("everyone", [False, True], ids=["end_subject", "end_all"])
async def test_postgres_ends_a_rotation_that_finished_inside_each_delete(everyone: bool) -> None:
    """A rotation inserts its new row after a ``DELETE`` took its snapshot and ends its
    old row while that ``DELETE`` waits for another row (a concurrent write of it): the
    ``DELETE`` misses both. Here that happens inside two ``DELETE`` in a row; the query
    after each still finds the new row, and the next pass ends it. ``end_all`` ran its
    ``DELETE`` twice and returned (found by an audit): the rotated session stayed live."""
    store: SqlStore[Data] = SqlStore.from_url(
        require_postgres(), Data, table=session_table(name=unique_table())
    )
    await store.create_table()
    try:
        mine = await signed_in(store)
        blockers = [await signed_in(store)]  # a row being written by somebody else
        head = [await signed_in(store)]
        rounds = [1, 2]
        calls = store._subjects._calls  # pyright: ignore[reportPrivateUsage]
        sql = store._sql  # pyright: ignore[reportPrivateUsage]
        ending = sql.end_all if everyone else sql.end_subject

        class RotatingInsideEachDelete:
            def __getattr__(self, name: str) -> Any:
                return getattr(calls, name)

            async def write(self, statement: Any, params: Any, **options: Any) -> int:
                if statement is not ending or not rounds:
                    return await calls.write(statement, params, **options)
                async with store.engine.connect() as connection:
                    writer = await connection.execution_options(isolation_level="READ COMMITTED")
                    await writer.begin()
                    row = store.table.c.key == store.key_for(blockers.pop(0).id)
                    await writer.execute(select(store.table.c.key).where(row).with_for_update())
                    deleting = asyncio.ensure_future(calls.write(statement, params, **options))
                    await _until_a_lock_waits(writer)
                    if rounds.pop(0) == 1:  # a new row, which only the next DELETE sees
                        blockers.append(await signed_in(store))
                    head.append(await rotated(store, head[-1]))
                    await writer.commit()
                return await deleting

        store._subjects._calls = RotatingInsideEachDelete()  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage, reportAttributeAccessIssue]
        if everyone:  # the two written rows, the last rotation's, and mine
            assert await store.end_all() == 4
        else:
            assert await store.end_subject("ada", keep=mine.id) == 3
        store._subjects._calls = calls  # pyright: ignore[reportPrivateUsage]
        assert len(head) == 3
        assert [await store.load(s.id) for s in head] == [None] * 3
        listed = await store.list_subject("ada")
        assert [i.handle for i in listed] == ([] if everyone else [session_handle(mine.id)])
    finally:
        await store.drop_table()
        await store.aclose()


async def test_sign_ins_after_end_all_began_do_not_hold_it_up() -> None:
    """``end_all`` checks for sessions signed in before it began: a site where users
    keep signing in (after each of its passes, here) is not an endless rotation."""
    store: SqlStore[Data] = SqlStore.from_url(
        require_postgres(), Data, table=session_table(name=unique_table())
    )
    await store.create_table()
    try:
        old = await signed_in(store)
        calls = store._subjects._calls  # pyright: ignore[reportPrivateUsage]
        fresh: list[Session[Data]] = []

        class SigningInAfterEachDelete:
            def __getattr__(self, name: str) -> Any:
                return getattr(calls, name)

            async def write(self, statement: Any, params: Any, **options: Any) -> int:
                ended = await calls.write(statement, params, **options)
                empty: Data = {}
                now = utc_now()
                made = new_session(empty, EXPIRY, now=now, subject="bob", auth_time=now)
                saved = await store.save(made)
                assert isinstance(saved, Ok)
                fresh.append(saved.value)
                return ended

        store._subjects._calls = SigningInAfterEachDelete()  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage, reportAttributeAccessIssue]
        assert await store.end_all() == 1
        store._subjects._calls = calls  # pyright: ignore[reportPrivateUsage]
        assert await store.load(old.id) is None
        assert len(fresh) == 1
        assert await store.load(fresh[0].id) == fresh[0]
    finally:
        await store.drop_table()
        await store.aclose()


async def _until_a_lock_waits(connection: AsyncConnection) -> None:
    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
    for _ in range(1000):
        if (await connection.execute(waiting)).scalar():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the ending DELETE never waited for the row")
