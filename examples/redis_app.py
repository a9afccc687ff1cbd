"""Sessions shared by many worker processes through Redis: a counter any worker can bump.

Every worker runs this app with the same secret and the same Redis; a session started
on one is read and updated on any other. Updates go through ``update_session`` (the
store's compare-and-set, retried), so concurrent bumps through different workers are
never lost. When Redis is down or slow, requests get 503 and the app recovers by
itself once it is back.

Run two workers (any number works)::

    export TYPED_SESSIONS_SECRET=$(python -m typed_sessions keygen)
    export TYPED_SESSIONS_REDIS_URL=redis://127.0.0.1:6379/0
    uvicorn --factory examples.redis_app:app_from_env --port 8001 &
    uvicorn --factory examples.redis_app:app_from_env --port 8002 &
    token=$(curl -s -X POST localhost:8001/session | jq -r .token)
    curl -s -X POST -H "X-Session: $token" localhost:8002/count   # {"count": 1, ...}
    curl -s -H "X-Session: $token" localhost:8001/count           # {"count": 1, ...}

The token travels in the ``X-Session`` header (``make_header_dependency``, with
``issue_session`` handing it out); the cookie dependency and the middleware work the
same way over Redis.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and those of functions nested in create_app must be real objects, not strings.
import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from typed_sessions import (
    Clock,
    Err,
    Expiry,
    Keyring,
    Ok,
    RedisStore,
    Session,
    SessionFailure,
    SessionNotFound,
    StoreError,
    default_error_mapping,
    make_header_dependency,
    update_session,
    utc_now,
)

__all__ = ["EXPIRY", "CountReply", "Counter", "app_from_env", "create_app"]


EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


class Counter(BaseModel):
    """What each session holds."""

    count: int = 0


class CountReply(BaseModel):
    """The count, and which worker process answered."""

    count: int
    worker: int
    token: str | None = None


def create_app(
    store: RedisStore[Counter],
    keyring: Keyring,
    *,
    expiry: Expiry = EXPIRY,
    clock: Clock = utc_now,
    close_store: bool = True,
) -> FastAPI:
    """Build the app over ``store``; it closes the store on shutdown when ``close_store``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncGenerator[None, None]:
        yield
        if close_store:
            await store.aclose()

    app = FastAPI(title="typed-sessions: Redis counter", lifespan=lifespan)

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, exc: StoreError) -> JSONResponse:
        # Fail closed: a store we cannot read is never "no session".
        return JSONResponse(
            {"detail": "session store unavailable"}, status_code=503, headers={"Retry-After": "1"}
        )

    def on_error(failure: SessionFailure) -> Exception:
        # The default answers, plus a hint to retry soon while the store is down.
        if failure.kind == "unavailable":
            return HTTPException(503, "session store unavailable", headers={"Retry-After": "1"})
        return default_error_mapping(failure)

    current = make_header_dependency(
        store,
        lambda session: True,
        keys=keyring,
        header="X-Session",
        expiry=expiry,
        clock=clock,
        on_error=on_error,
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await store.ping()
        return {"status": "ok"}

    @app.post("/session")
    async def start() -> CountReply:
        issued = await current.issue(Counter())
        return CountReply(count=0, worker=os.getpid(), token=issued.token)

    @app.get("/count")
    async def read(session: Annotated[Session[Counter], Depends(current)]) -> CountReply:
        return CountReply(count=session.data.count, worker=os.getpid())

    @app.post("/count")
    async def increment(session: Annotated[Session[Counter], Depends(current)]) -> CountReply:
        # Starts from the record the dependency loaded: one save when uncontended; when
        # another worker saved first, it reloads and retries, so no bump is lost.
        match await update_session(store, session, _bump, expiry=expiry, clock=clock):
            case Ok(saved):
                return CountReply(count=saved.data.count, worker=os.getpid())
            case Err(SessionNotFound()):
                raise HTTPException(401, "session ended")
            case Err(error):
                raise HTTPException(409, f"too much contention, try again: {error}")

    return app


def _bump(data: Counter) -> Counter:
    return Counter(count=data.count + 1)


def app_from_env() -> FastAPI:
    """The app as ``uvicorn --factory`` builds it, configured from the environment.

    ``TYPED_SESSIONS_SECRET`` (required), ``TYPED_SESSIONS_REDIS_URL`` (default
    ``redis://127.0.0.1:6379/0``) and ``TYPED_SESSIONS_PREFIX`` (default ``counter:``).
    """
    secret = os.environ.get("TYPED_SESSIONS_SECRET")
    if not secret:
        raise RuntimeError("set TYPED_SESSIONS_SECRET (python -m typed_sessions keygen)")
    store: RedisStore[Counter] = RedisStore.from_url(
        os.environ.get("TYPED_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/0"),
        Counter,
        prefix=os.environ.get("TYPED_SESSIONS_PREFIX", "counter:"),
    )
    return create_app(store, Keyring.from_secrets(secret))
