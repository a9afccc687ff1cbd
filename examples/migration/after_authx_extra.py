"""After: authx-extra's counter in typed-sessions' own style, the step after the shim.

``session_middleware`` with a ``Keyring`` and ``CookieSettings``, and the typed
``SessionDep`` instead of ``request.state``. Sessions started through the shim carry on:
give the same secret, cookie name and store (the shim's ``SessionMiddleware`` derives its
keyring with ``Keyring.from_secrets(secret_key)``, as here).

Run: ``SESSION_SECRET=... uvicorn examples.migration.after_authx_extra:app``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from typed_sessions import (
    CookieSettings,
    Keyring,
    MemoryStore,
    SessionDep,
    SessionStore,
    secret_from_env,
    session_middleware,
)


def create_app(secret: str, store: SessionStore[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=store,  # the shim's MemoryIO() is a MemoryStore(dict[str, Any]); or RedisStore
        keys=Keyring.from_secrets(secret),
        cookie=CookieSettings(name="sid", secure=True, httponly=True),  # max_age=None
    )

    @app.get("/session_test")
    async def session_test(session_manager: SessionDep) -> dict[str, int]:
        session = session_manager.get_session()
        counter = int(session.get("test_counter", 0)) + 1
        session["test_counter"] = counter
        return {"test_counter": counter}

    return app


app = create_app(secret_from_env("SESSION_SECRET"), MemoryStore(dict[str, Any]))
