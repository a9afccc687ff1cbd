"""Tokens in a header instead of a cookie: for API clients that are not browsers.

Run: ``SESSION_SECRET=$(python -m typed_sessions keygen) uvicorn
examples.docs_header_dependency:app``, then::

    token=$(curl -s -X POST localhost:8000/login/alice | jq -r .token)
    curl -s -H "X-Session: $token" localhost:8000/whoami
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from typed_sessions import (
    Keyring,
    MemoryStore,
    Session,
    StoreError,
    make_header_dependency,
    secret_from_env,
    store_error_handler,
)


class User(BaseModel):
    name: str


class LoginReply(BaseModel):
    token: str


def signed_in(session: Session[User]) -> bool:
    return True


keys = Keyring.from_secrets(secret_from_env("SESSION_SECRET"))  # no public default
store = MemoryStore(User)
current_user = make_header_dependency(store, signed_in, keys=keys, header="X-Session")

app = FastAPI()
app.add_exception_handler(StoreError, store_error_handler)


@app.post("/login/{name}")
async def login(name: str) -> LoginReply:
    issued = await current_user.issue(User(name=name))
    return LoginReply(token=issued.token)  # the client sends it back in X-Session


@app.get("/whoami")
async def whoami(session: Annotated[Session[User], Depends(current_user)]) -> User:
    return session.data
