"""The middleware over Redis: sessions shared by every worker and machine.

Run (one Redis, any number of workers)::

    export SESSION_SECRET=$(python -m typed_sessions keygen)
    export REDIS_URL=redis://127.0.0.1:6379/0
    uvicorn --factory examples.docs_redis_store:app_from_env --workers 4
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from redis.asyncio import RedisCluster

from typed_sessions import (
    Keyring,
    SessionDep,
    StoreError,
    session_middleware,
    store_error_handler,
)
from typed_sessions.stores.redis import RedisStore


def create_app(redis_url: str, secret: str, *, prefix: str = "myapp:session:") -> FastAPI:
    store: RedisStore[dict[str, Any]] = RedisStore.from_url(
        redis_url,  # redis://, rediss:// (TLS) or unix://
        dict[str, Any],
        prefix=prefix,  # keys are the prefix and a SHA-256 of the session ID
        timeout=2.0,  # seconds per store call; then StoreUnavailableError (503)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        yield
        await store.aclose()  # from_url made the client, so the store closes it

    app = FastAPI(lifespan=lifespan)
    app.add_exception_handler(StoreError, store_error_handler)  # /healthz: 503
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(secret))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await store.ping()  # raises StoreUnavailableError when Redis does not answer
        return {"status": "ok"}

    @app.post("/visit")
    async def visit(session: SessionDep) -> dict[str, int]:
        data = session.get_session()
        data["visits"] = data.get("visits", 0) + 1
        return {"visits": data["visits"]}

    return app


def app_from_env() -> FastAPI:
    return create_app(os.environ["REDIS_URL"], os.environ["SESSION_SECRET"])


def cluster_store(url: str) -> RedisStore[dict[str, Any]]:
    """A Redis Cluster: pass a client you own (and close it yourself)."""
    return RedisStore(RedisCluster.from_url(url), dict[str, Any], prefix="myapp:session:")
