import os
from typing import Annotated

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from typed_sessions import (
    Keyring,
    MemoryStore,
    Session,
    StoreError,
    make_cookie_dependency,
    store_error_handler,
)


class User(BaseModel):
    name: str


keys = Keyring.from_secrets(
    os.environ.get("SESSION_SECRET", "dev-only-secret-use-keygen-in-production")
)
store = MemoryStore(User)  # or RedisStore.from_url("redis://...", User) for many workers
current = make_cookie_dependency(store, lambda session: True, keys=keys)
app = FastAPI()
app.add_exception_handler(StoreError, store_error_handler)  # store down: 503, not 500


@app.post("/login/{name}")
async def login(name: str, response: Response) -> str:
    await current.start(response, User(name=name))
    return f"hello {name}"


@app.get("/whoami")
async def whoami(session: Annotated[Session[User], Depends(current)]) -> User:
    return session.data


@app.post("/logout")
async def logout(session: Annotated[Session[User], Depends(current)], response: Response) -> str:
    await current.end(response, session)
    return "bye"
