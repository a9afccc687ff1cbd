"""The SQL store's documentation examples run and do what the stores page says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from typed_sessions import (
    CookieSettings,
    Expiry,
    Keyring,
    Ok,
    SqlStore,
    new_session,
    new_session_id,
    sign_session_id,
    utc_now,
)

from .conftest import SECRET
from .redis_server import free_port

pytestmark = pytest.mark.anyio


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


async def test_sql_store_example_counts_visits_in_an_sqlite_file(tmp_path: Path) -> None:
    from examples.docs_sql_store import create_app

    url = f"sqlite+aiosqlite:///{tmp_path}/sessions.db"
    app = create_app(url, SECRET)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        counts = [(await client.post("/visit")).json()["visits"] for _ in range(3)]
        assert counts == [1, 2, 3]
        cookies = dict(client.cookies)
    again = create_app(url, SECRET)  # a restart: the sessions are in the file
    async with again.router.lifespan_context(again), client_for(again) as client:
        client.cookies.update(cookies)
        assert (await client.post("/visit")).json()["visits"] == 4


async def test_sql_store_example_answers_503_when_the_database_is_down() -> None:
    from examples.docs_sql_store import create_app

    app = create_app(f"postgresql+asyncpg://app@127.0.0.1:{free_port()}/app", SECRET)
    async with client_for(app) as client:  # no lifespan: it would fail to create the table
        assert (await client.get("/healthz")).status_code == 503
        token = sign_session_id(new_session_id(), Keyring.from_secrets(SECRET), now=utc_now())
        client.cookies.set("session", token)
        assert (await client.post("/visit")).status_code == 503


async def test_migrations_example_puts_the_table_on_the_apps_metadata() -> None:
    from examples.docs_sql_migrations import Base, make_store, sessions

    assert Base.metadata.tables["sessions"] is sessions
    pg = create_async_engine("postgresql+asyncpg://app@db/app").dialect  # no connection made
    maria = create_async_engine("mysql+aiomysql://app@db/app").dialect
    ddl = str(CreateTable(sessions).compile(dialect=pg))
    for column in ("key VARCHAR(64) NOT NULL", "version BIGINT NOT NULL", "PRIMARY KEY (key)"):
        assert column in ddl
    assert "LONGTEXT" in str(CreateTable(sessions).compile(dialect=maria))
    indexes = {str(CreateIndex(i).compile(dialect=pg)) for i in sessions.indexes}
    assert indexes == {
        "CREATE INDEX ix_sessions_expires_at ON sessions (expires_at)",
        "CREATE INDEX ix_sessions_subject ON sessions (subject)",
    }
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)  # what the migration does
        store = make_store(engine)
        saved = await store.save(new_session({"n": 1}, Expiry(), now=utc_now()))
        assert isinstance(saved, Ok)
        assert await store.load(saved.value.id) == saved.value
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(sessions)) == 1
    finally:
        await engine.dispose()


async def test_a_garbage_row_answers_503_not_500_and_the_row_stays(tmp_path: Path) -> None:
    """The documented outcome of an unreadable row: StoreCorruptError, 503 through the
    middleware, and nothing overwritten (the row is left for an operator to look at)."""
    from examples.sql_app import create_app

    store: SqlStore[dict[str, Any]] = SqlStore.from_url(
        f"sqlite+aiosqlite:///{tmp_path}/sessions.db", dict[str, Any]
    )
    await store.create_table()
    app = create_app(
        store, Keyring.from_secrets(SECRET), cookie=CookieSettings(secure=False), close_store=False
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            assert (await client.post("/count")).json()["count"] == 1
            async with store.engine.begin() as conn:
                await conn.execute(update(store.table).values(data="{garbage"))
            for method, path in (("GET", "/session"), ("POST", "/count"), ("POST", "/mark/x")):
                reply = await client.request(method, path)
                assert reply.status_code == 503, (method, path)
            async with store.engine.connect() as conn:
                assert await conn.scalar(select(store.table.c.data)) == "{garbage"
    finally:
        await store.aclose()
