"""fastapi-sessions' getting-started app (create, whoami, delete), with typed-sessions.

The seed wires a frontend, a backend and a verifier class together through a shared
identifier; here a store, a verifier function and a dependency do the same, typed.

Run: ``SESSION_SECRET=... uvicorn examples.fastapi_sessions_flow:app``. The cookie is
``Secure``, so browse over https (or pass ``secure=False`` to ``CookieSettings`` to try
it over plain http on localhost).
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.lifecycle import end_session, start_session
from typed_sessions.adapters.responses import store_error_handler
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import StoreError


class SessionData(BaseModel):
    username: str


def verify(session: Session[SessionData]) -> bool:
    """If the session exists, it is valid (the seed's ``BasicVerifier``)."""
    return True


DEMO_SECRET = "DONOTUSE-set-SESSION_SECRET-to-32-random-bytes"
keys = Keyring.from_secrets(os.environ.get("SESSION_SECRET", DEMO_SECRET))
cookie = CookieSettings(name="cookie")
store: MemoryStore[SessionData] = MemoryStore(SessionData)

current_session = make_cookie_dependency(store, verify, keys=keys, cookie=cookie)
# Logging out needs no valid session: a missing or stale cookie is cleared all the same.
maybe_session = make_cookie_dependency(store, verify, keys=keys, cookie=cookie, auto_error=False)

app = FastAPI()
app.add_exception_handler(StoreError, store_error_handler)


@app.post("/create_session/{name}")
async def create_session(name: str, response: Response) -> str:
    await start_session(response, store, SessionData(username=name), keys=keys, cookie=cookie)
    return f"created session for {name}"


@app.get("/whoami")
async def whoami(session: Annotated[Session[SessionData], Depends(current_session)]) -> SessionData:
    return session.data


@app.post("/delete_session")
async def del_session(
    response: Response,
    session: Annotated[Session[SessionData] | None, Depends(maybe_session)],
) -> str:
    await end_session(response, store, session, cookie=cookie)
    return "deleted session"
