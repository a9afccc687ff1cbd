from typing import Annotated

from fastapi import Depends, FastAPI, Response
from pydantic import BaseModel

from typed_sessions import (
    Keyring,
    MemoryStore,
    Session,
    StoreError,
    make_cookie_dependency,
    secret_from_env,
    store_error_handler,
)


class User(BaseModel):
    name: str


# $SESSION_SECRET, or an error; TYPED_SESSIONS_DEVELOPMENT=1: a random one, with a warning
keys = Keyring.from_secrets(secret_from_env("SESSION_SECRET"))
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
