"""fastapi-sessions' getting-started app (create, whoami, delete), with typed-sessions.

The seed wires a frontend, a backend and a verifier class together through a shared
identifier; here a store, a verifier function and a dependency do the same, typed.

Run: ``SESSION_SECRET=... uvicorn examples.fastapi_sessions_flow:app``. The cookie is
``Secure``, so browse over https (or pass ``secure=False`` to ``CookieSettings`` to try
it over plain http on localhost).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from typed_sessions import (
    CookieSettings,
    Keyring,
    MemoryStore,
    Session,
    StoreError,
    make_cookie_dependency,
    secret_from_env,
    store_error_handler,
)


class SessionData(BaseModel):
    username: str


def verify(session: Session[SessionData]) -> bool:
    """If the session exists, it is valid (the seed's ``BasicVerifier``)."""
    return True


keys = Keyring.from_secrets(secret_from_env("SESSION_SECRET"))  # no public default
cookie = CookieSettings(name="cookie")
store = MemoryStore(SessionData)

current_session = make_cookie_dependency(store, verify, keys=keys, cookie=cookie)
# Logging out needs no valid session: a missing or stale cookie is cleared all the same,
# and verify=False ends a session that verify refuses too (no 403 on logout).
maybe_session = current_session.optional(verify=False)  # None instead of a 401

app = FastAPI()
app.add_exception_handler(StoreError, store_error_handler)


@app.post("/create_session/{name}")
async def create_session(name: str, response: Response) -> str:
    await current_session.start(response, SessionData(username=name))
    return f"created session for {name}"


@app.get("/whoami")
async def whoami(session: Annotated[Session[SessionData], Depends(current_session)]) -> SessionData:
    return session.data


@app.post("/delete_session")
async def del_session(
    response: Response,
    session: Annotated[Session[SessionData] | None, Depends(maybe_session)],
) -> str:
    await current_session.end(response, session)
    return "deleted session"
