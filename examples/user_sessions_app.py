"""A user's sessions: sign in on several devices, list them, end one or all others,
disable an account, and ask for a fresh sign-in before a sensitive change.

Tokens travel in the ``X-Session`` header (API clients); a cookie dependency offers the
same methods. Run: ``uvicorn --factory examples.user_sessions_app:app_from_env`` with
``TYPED_SESSIONS_REDIS_URL`` and ``TYPED_SESSIONS_SECRET`` (or ``uvicorn --factory
examples.user_sessions_app:memory_app`` on memory, with ``SESSION_SECRET``).
"""

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations,
# which name dependencies local to create_app().

import os
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import AfterValidator

from typed_sessions import (
    Clock,
    MemoryStore,
    Session,
    SessionInfo,
    SessionStore,
    StoreError,
    check_subject,
    make_header_dependency,
    secret_from_env,
    store_error_handler,
    utc_now,
)

# A user name from the path becomes a subject: one check_subject refuses is a 422.
UserName = Annotated[str, AfterValidator(check_subject)]


def create_app(
    store: SessionStore[dict[str, Any]], secret: str, *, clock: Clock = utc_now
) -> FastAPI:
    current = make_header_dependency(store, lambda session: True, keys=secret, clock=clock)
    recently_signed_in = current.fresh(within=timedelta(minutes=5))
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)

    @app.post("/login/{user}")
    async def login(user: UserName, request: Request) -> dict[str, str]:
        issued = await current.issue({"user": user}, subject=user, request=request)
        return {"token": issued.token}  # the client sends it back in X-Session

    @app.get("/me")
    async def me(session: Annotated[Session[dict[str, Any]], Depends(current)]) -> dict[str, Any]:
        return session.data

    @app.get("/sessions")
    async def sessions(
        session: Annotated[Session[dict[str, Any]], Depends(current)],
    ) -> list[SessionInfo]:
        return await current.sessions_of(session)

    @app.post("/sessions/{handle}/end")
    async def end_one(
        handle: str, session: Annotated[Session[dict[str, Any]], Depends(current)]
    ) -> dict[str, bool]:
        return {"ended": await current.end_one(session, handle)}

    @app.post("/sessions/end-others")
    async def end_others(
        session: Annotated[Session[dict[str, Any]], Depends(current)],
    ) -> dict[str, int]:
        return {"ended": await current.end_others(session)}

    @app.post("/admin/disable/{user}")
    async def disable(
        user: UserName, session: Annotated[Session[dict[str, Any]], Depends(current)]
    ) -> dict[str, int]:
        if session.data.get("user") != "admin":
            raise HTTPException(403, "Forbidden")
        return {"ended": await current.end_all_of(user)}

    @app.post("/password")
    async def change_password(
        session: Annotated[Session[dict[str, Any]], Depends(recently_signed_in)],
    ) -> dict[str, int]:
        return {"ended": await current.end_others(session)}  # ASVS 7.4.3

    @app.post("/reauthenticate")
    async def reauthenticate(
        session: Annotated[Session[dict[str, Any]], Depends(current)], response: Response
    ) -> dict[str, str]:
        # (a real app checks the password or second factor here first)
        issued = await current.reissue(session, signed_in=session.subject)
        if issued is None:
            raise HTTPException(401, "Not authenticated")
        return {"token": issued.token}

    return app


def app_from_env() -> FastAPI:
    """On Redis, for ``uvicorn --factory``: ``TYPED_SESSIONS_REDIS_URL``,
    ``TYPED_SESSIONS_PREFIX`` and ``TYPED_SESSIONS_SECRET``."""
    from typed_sessions import RedisStore

    store: RedisStore[dict[str, Any]] = RedisStore.from_url(
        os.environ["TYPED_SESSIONS_REDIS_URL"],
        dict[str, Any],
        prefix=os.environ.get("TYPED_SESSIONS_PREFIX", "users:"),
    )
    return create_app(store, secret_from_env("TYPED_SESSIONS_SECRET"))


def memory_app() -> FastAPI:
    """On memory, for ``uvicorn --factory``: ``SESSION_SECRET``."""
    return create_app(MemoryStore(dict[str, Any]), secret_from_env("SESSION_SECRET"))
