"""autoload=False: no store access until a handler asks for the session.

Routes that never use the session (health checks, static pages) then cost a header
scan, even when the browser sends a session cookie.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from typed_sessions import (
    Keyring,
    LoadedSessionDep,
    SessionStore,
    session_middleware,
)


def create_app(store: SessionStore[dict[str, Any]], keys: Keyring) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keys, autoload=False)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}  # never loads the session

    @app.post("/visit")
    async def visit(session: LoadedSessionDep) -> dict[str, int]:
        data = session.get_session()  # loaded by the dependency
        data["visits"] = data.get("visits", 0) + 1
        return {"visits": data["visits"]}

    @app.get("/visits")
    async def visits(request: Request) -> dict[str, int]:
        data = await request.state.session.load()  # the same, without the dependency
        return {"visits": data.get("visits", 0)}

    return app
