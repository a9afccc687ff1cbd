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

The token travels in the ``X-Session`` header here to keep the example small. The
routes use the pure core and the store directly; an app would normally use the
library's FastAPI dependencies or middleware, which do the same with cookies.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and those of functions nested in create_app must be real objects, not strings.
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from typed_sessions import (
    Clock,
    Err,
    Expiry,
    Keyring,
    Ok,
    Session,
    SessionId,
    SessionNotFound,
    StoreError,
    new_session,
    sign_session_id,
    update_session,
    utc_now,
    verify_session_token,
)
from typed_sessions.stores.redis import RedisStore

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
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
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

    async def session_id(x_session: Annotated[str | None, Header()] = None) -> SessionId:
        if x_session is None:
            raise HTTPException(401, "no session")
        match verify_session_token(x_session, keyring, now=clock(), max_age=expiry.absolute):
            case Ok(verified):
                return verified
            case Err(error):
                raise HTTPException(401, f"invalid session token: {error}")

    SessionIdDep = Annotated[SessionId, Depends(session_id)]

    async def current(sid: SessionIdDep) -> Session[Counter]:
        session = await store.load(sid)
        if session is None:
            raise HTTPException(401, "session ended")
        return session

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await store.ping()
        return {"status": "ok"}

    @app.post("/session")
    async def start() -> CountReply:
        session = new_session(Counter(), expiry, now=clock())
        match await store.save(session):
            case Ok(saved):
                token = sign_session_id(saved.id, keyring, now=clock())
                return CountReply(count=saved.data.count, worker=os.getpid(), token=token)
            case Err(conflict):  # pragma: no cover - a fresh 256-bit ID is never taken
                raise HTTPException(409, f"session ID taken: {conflict}")

    @app.get("/count")
    async def read(session: Annotated[Session[Counter], Depends(current)]) -> CountReply:
        return CountReply(count=session.data.count, worker=os.getpid())

    @app.post("/count")
    async def increment(sid: SessionIdDep) -> CountReply:
        match await update_session(store, sid, _bump, expiry=expiry, clock=clock):
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
