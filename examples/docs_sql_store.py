"""The middleware over the SQL database the app already runs: PostgreSQL, MariaDB/MySQL
or SQLite, sessions shared by every worker, expired rows purged in the background.

Run (one database, any number of workers)::

    export SESSION_SECRET=$(python -m typed_sessions keygen)
    export DATABASE_URL=postgresql+asyncpg://app@127.0.0.1/app
    uvicorn --factory examples.docs_sql_store:app_from_env --workers 4
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from typed_sessions import (
    Keyring,
    SessionDep,
    SqlStore,
    StoreError,
    session_middleware,
    session_table,
    store_error_handler,
)


def create_app(database_url: str, secret: str, *, table_name: str = "sessions") -> FastAPI:
    store: SqlStore[dict[str, Any]] = SqlStore.from_url(
        database_url,  # postgresql+asyncpg://, mysql+aiomysql://, sqlite+aiosqlite:///file
        dict[str, Any],
        table=session_table(name=table_name),  # or yours, on your MetaData (migrations)
        timeout=5.0,  # seconds per store call; then StoreUnavailableError (503)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        await store.create_table()  # a quick start: does nothing if the table exists
        async with store.purging(every=timedelta(minutes=5)):  # expired rows, in batches
            yield
        await store.aclose()  # from_url made the engine, so the store disposes of it

    app = FastAPI(lifespan=lifespan)
    app.add_exception_handler(StoreError, store_error_handler)  # /healthz: 503
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(secret))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await store.ping()  # raises StoreUnavailableError when the database does not answer
        return {"status": "ok"}

    @app.post("/visit")
    async def visit(session: SessionDep) -> dict[str, int]:
        data = session.get_session()
        data["visits"] = data.get("visits", 0) + 1
        return {"visits": data["visits"]}

    return app


def app_from_env() -> FastAPI:
    return create_app(os.environ["DATABASE_URL"], os.environ["SESSION_SECRET"])
