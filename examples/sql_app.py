"""Sessions shared by many worker processes through a SQL database, with the middleware.

Every worker runs this app with the same secret and the same database; a session started
through one is read and changed through any other. Concurrent changes to different keys
of one session are merged (the store's compare-and-set, retried by the middleware), so
none is lost. Expired rows are purged in the background. When the database is down or
slow, requests get 503, and the app recovers by itself once it is back.

Run two workers (any number works)::

    export TYPED_SESSIONS_SECRET=$(python -m typed_sessions keygen)
    export TYPED_SESSIONS_SQL_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test
    export TYPED_SESSIONS_INSECURE_COOKIE=1   # plain HTTP on loopback only
    python -c "import asyncio, examples.sql_app as a; asyncio.run(a.create_table_from_env())"
    uvicorn --factory examples.sql_app:app_from_env --port 8001 &
    uvicorn --factory examples.sql_app:app_from_env --port 8002 &
    curl -s -c jar -X POST localhost:8001/count   # {"count": 1, ...}
    curl -s -b jar localhost:8002/session         # {"data": {"count": 1}, ...}
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.
import os
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from typed_sessions import (
    CookieSettings,
    Keyring,
    SessionDep,
    SqlStore,
    StoreError,
    session_middleware,
    session_table,
    store_error_handler,
)

__all__ = ["app_from_env", "create_app", "create_table_from_env", "store_from_env"]


def create_app(
    store: SqlStore[dict[str, Any]],
    keyring: Keyring,
    *,
    cookie: CookieSettings | None = None,
    purge_every: timedelta | None = timedelta(minutes=5),
    close_store: bool = True,
) -> FastAPI:
    """Build the app over ``store``: it purges expired rows every ``purge_every`` while it
    runs and closes the store on shutdown when ``close_store``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncGenerator[None, None]:
        async with AsyncExitStack() as stack:
            if purge_every is not None:
                await stack.enter_async_context(store.purging(purge_every))
            yield
        if close_store:
            await store.aclose()

    app = FastAPI(title="typed-sessions: SQL sessions", lifespan=lifespan)
    app.add_exception_handler(StoreError, store_error_handler)  # /healthz: 503, not 500
    app.add_middleware(
        session_middleware, store=store, keys=keyring, cookie=cookie or CookieSettings()
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await store.ping()
        return {"status": "ok"}

    @app.get("/session")
    async def read(session: SessionDep) -> dict[str, Any]:
        return {"data": dict(session.get_session()), "worker": os.getpid()}

    @app.post("/count")
    async def count(session: SessionDep) -> dict[str, int]:
        data = session.get_session()
        data["count"] = int(data.get("count", 0)) + 1
        return {"count": data["count"], "worker": os.getpid()}

    @app.post("/mark/{name}")
    async def mark(name: str, session: SessionDep) -> dict[str, int]:
        session.get_session()[name] = os.getpid()  # written, not read: merges with others
        return {"worker": os.getpid()}

    return app


def store_from_env() -> SqlStore[dict[str, Any]]:
    """The store at ``TYPED_SESSIONS_SQL_URL`` (default: the local PostgreSQL's ``test``
    database), table ``TYPED_SESSIONS_TABLE`` (default ``sessions``)."""
    url = os.environ.get(
        "TYPED_SESSIONS_SQL_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    table = session_table(name=os.environ.get("TYPED_SESSIONS_TABLE", "sessions"))
    return SqlStore.from_url(url, dict[str, Any], table=table)


async def create_table_from_env() -> None:
    """Create the table once, before starting the workers (or use a migration)."""
    async with store_from_env() as store:
        await store.create_table()


def app_from_env() -> FastAPI:
    """The app as ``uvicorn --factory`` builds it: ``TYPED_SESSIONS_SECRET`` (required),
    the store of :func:`store_from_env`, and ``TYPED_SESSIONS_INSECURE_COOKIE=1`` to send
    the cookie over plain HTTP (local testing only)."""
    secret = os.environ.get("TYPED_SESSIONS_SECRET")
    if not secret:
        raise RuntimeError("set TYPED_SESSIONS_SECRET (python -m typed_sessions keygen)")
    secure = os.environ.get("TYPED_SESSIONS_INSECURE_COOKIE") != "1"
    return create_app(
        store_from_env(), Keyring.from_secrets(secret), cookie=CookieSettings(secure=secure)
    )
