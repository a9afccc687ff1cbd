"""A cancelled SQL call gives its connection back (found by an audit): on an engine the
app made without autocommit, SQLAlchemy switches each connection to autocommit as it is
checked out, a round trip on aiosqlite and aiomysql; a cancellation landing there left
the connection checked out for good, and once the pool was drained every request with a
session cookie got 503."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from typed_sessions import Expiry, Ok, SqlStore, StoreError, new_session, utc_now
from typed_sessions.stores.sql_table import session_table

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("limit", [None, 0.0005])
async def test_cancelled_calls_on_an_app_engine_give_their_connection_back(
    tmp_path: Path, limit: float | None
) -> None:
    """Cancelled from outside at every point of its first event-loop steps, or cut off by
    the store's own ``timeout``: the pool of one connection is whole again afterwards."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", pool_size=1)
    table = session_table(name="cancelled")
    store: SqlStore[dict[str, Any]] = SqlStore(engine, dict[str, Any], table=table)
    await store.create_table()
    saved = await store.save(new_session({"n": 1}, Expiry(), now=utc_now()))
    assert isinstance(saved, Ok)
    short: SqlStore[dict[str, Any]] = SqlStore(engine, dict[str, Any], table=table, timeout=limit)
    try:
        for step in range(300):
            load = asyncio.ensure_future(short.load(saved.value.id))
            for _ in range(step % 30):
                await asyncio.sleep(0)
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreError):
                await load
            for _ in range(50):  # a call cut off ends by itself, its connection back
                if not engine.pool.checkedout():  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.01)
            assert not engine.pool.checkedout(), f"a connection lost at step {step}"  # type: ignore[attr-defined]
        assert await store.load(saved.value.id) == saved.value
    finally:
        await store.drop_table()
        await engine.dispose()
