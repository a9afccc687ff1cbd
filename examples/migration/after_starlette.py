"""After: the same app with typed-sessions: only the session ID in the cookie.

Run: ``SESSION_SECRET=... uvicorn examples.migration.after_starlette:app``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from typed_sessions import Keyring, MemoryStore, SessionDep, secret_from_env, session_middleware

app = FastAPI()
app.add_middleware(
    session_middleware,
    store=MemoryStore(dict[str, Any]),  # or RedisStore, for several workers
    keys=Keyring.from_secrets(secret_from_env("SESSION_SECRET")),
)


@app.post("/login/{name}")
async def login(name: str, session: SessionDep) -> dict[str, str]:
    session.regenerate()  # a new ID at login
    session.get_session()["user"] = name
    return {"user": name}


@app.get("/session_test")
async def session_test(session: SessionDep) -> dict[str, Any]:
    data = session.get_session()
    data["test_counter"] = data.get("test_counter", 0) + 1
    return {"user": data.get("user"), "test_counter": data["test_counter"]}


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, str]:
    session.invalidate()  # deleted on the server: the old cookie is worth nothing
    return {}
