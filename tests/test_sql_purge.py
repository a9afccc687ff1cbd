"""Purging 100,000 expired rows in bounded batches while reads and writes go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from typed_sessions import Expiry, Ok, Session, new_session, replace_data, utc_now
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table, to_micros

from .sql_server import require_mariadb, require_postgres, unique_table

pytestmark = pytest.mark.anyio
ROWS = 100_000
BATCH = 2_000
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]

# One statement per database: ROWS expired rows (keys unlike any session's hash).
_FILL = {
    "postgresql": (
        "INSERT INTO {t} (key, version, data, created_at, last_active, expires_at, handle) "
        "SELECT 'x' || lpad(g::text, 63, '0'), 1, '{{}}', 0, 0, :at, 'h' "
        "FROM generate_series(1, :rows) AS g"
    ),
    "mariadb": (
        "INSERT INTO {t} (`key`, version, data, created_at, last_active, expires_at, handle) "
        "SELECT CONCAT('x', LPAD(seq, 63, '0')), 1, '{{}}', 0, 0, :at, 'h' FROM seq_1_to_{rows}"
    ),
    "sqlite": (
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :rows) "
        "INSERT INTO {t} (key, version, data, created_at, last_active, expires_at, handle) "
        "SELECT 'x' || printf('%063d', n), 1, '{{}}', 0, 0, :at, 'h' FROM g"
    ),
}


@pytest.fixture(params=sorted(_FILL))
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[SqlStore[Data]]:
    kind: str = request.param
    if kind == "postgresql":
        url = require_postgres()
    elif kind == "mariadb":
        url = require_mariadb()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/sessions.db"
    made: SqlStore[Data] = SqlStore.from_url(
        url, Data, table=session_table(name=unique_table()), timeout=30
    )
    await made.create_table()
    try:
        fill = _FILL[kind].format(t=made.table.name, rows=ROWS)
        expired = to_micros(utc_now() - timedelta(minutes=1))
        async with made.engine.begin() as conn:
            await conn.execute(text(fill), {"at": expired, "rows": ROWS})
        yield made
    finally:
        await made.drop_table()
        await made.aclose()


async def count(store: SqlStore[Data]) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(store.table)) or 0)


@pytest.mark.heavy
async def test_purging_100k_expired_rows_in_batches_while_serving(store: SqlStore[Data]) -> None:
    assert await count(store) == ROWS
    live: list[Session[Data]] = []
    for i in range(10):
        result = await store.save(new_session({"n": 0, "i": i}, EXPIRY, now=utc_now()))
        assert isinstance(result, Ok)
        live.append(result.value)

    batches: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE") and "<=" in statement:
            batches.append(cursor.rowcount)

    engine = store.engine.sync_engine
    event.listen(engine, "after_cursor_execute", seen)
    purging = asyncio.create_task(store.purge_expired(batch=BATCH))
    served = 0
    try:
        while not purging.done():  # reads and writes go on meanwhile, and succeed
            for i, session in enumerate(live):
                current = await store.load(session.id)
                assert current == session
                assert current is not None
                changed = replace_data(current, {"n": current.data["n"] + 1}, now=utc_now())
                result = await store.save(changed)
                assert isinstance(result, Ok)
                live[i] = result.value
                served += 1
        purged = await purging
    finally:
        event.remove(engine, "after_cursor_execute", seen)
    assert purged == ROWS
    assert served > 0
    assert len(batches) >= ROWS // BATCH
    assert all(0 <= rows <= BATCH for rows in batches)
    assert await count(store) == len(live)
    for session in live:
        assert await store.load(session.id) == session
