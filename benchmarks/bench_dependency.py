"""A protected GET route: typed-sessions' cookie dependency vs fastapi-sessions.

Three FastAPI apps serve the same handler (return the session's pydantic data), driven
in-process through httpx's ASGITransport, interleaved, each request carrying a valid
session cookie:

- ``unprotected``: no session at all (the baseline);
- ``typed-sessions``: ``make_cookie_dependency`` over a ``MemoryStore``;
- ``fastapi-sessions``: ``SessionCookie`` + ``InMemoryBackend`` + a ``SessionVerifier``,
  as on its getting-started page.

The figure that matters is each library's overhead over ``unprotected``.

Run: ``python benchmarks/bench_dependency.py`` (needs ``fastapi-sessions``, installed only
in the benchmark environment).
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID, uuid4

import httpx
from fastapi import Depends, FastAPI, HTTPException
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.frontends.implementations import CookieParameters, SessionCookie
from pydantic import BaseModel

from harness import run_async, table
from peers import BasicVerifier
from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.lifecycle import issue_session
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.session import Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore

SECRET = "s" * 32


class SessionData(BaseModel):
    username: str


# --- unprotected ---------------------------------------------------------------------------

unprotected = FastAPI()


@unprotected.get("/whoami")
async def open_whoami() -> SessionData:
    return SessionData(username="alice")


# --- typed-sessions ------------------------------------------------------------------------

keys = Keyring.from_secrets(SECRET)
store: MemoryStore[SessionData] = MemoryStore(SessionData)


def verify(session: Session[SessionData]) -> bool:
    return True


current_session = make_cookie_dependency(store, verify, keys=keys)
OUR_COOKIE = CookieSettings().name  # the default: "__Host-session"
ours = FastAPI()


@ours.get("/whoami")
async def our_whoami(
    session: Annotated[Session[SessionData], Depends(current_session)],
) -> SessionData:
    return session.data


# --- fastapi-sessions (its getting-started page) -------------------------------------------

peer_cookie = SessionCookie(
    cookie_name="cookie",
    identifier="general_verifier",
    auto_error=True,
    secret_key=SECRET,
    cookie_params=CookieParameters(),
)
peer_backend = InMemoryBackend[UUID, SessionData]()


peer_verifier = BasicVerifier(
    identifier="general_verifier",
    auto_error=True,
    backend=peer_backend,
    auth_http_exception=HTTPException(status_code=403, detail="invalid session"),
)
peer = FastAPI()


@peer.get("/whoami", dependencies=[Depends(peer_cookie)])
async def peer_whoami(session_data: Annotated[SessionData, Depends(peer_verifier)]) -> SessionData:
    return session_data


# --- the run -------------------------------------------------------------------------------


async def make_clients() -> dict[str, httpx.AsyncClient]:
    issued = await issue_session(store, SessionData(username="alice"), keys=keys)
    peer_id = uuid4()
    await peer_backend.create(peer_id, SessionData(username="alice"))
    peer_token = str(peer_cookie.signer.dumps(peer_id.hex))
    cookies = {
        "unprotected": f"{OUR_COOKIE}={issued.token}",
        "typed-sessions": f"{OUR_COOKIE}={issued.token}",
        "fastapi-sessions": f"cookie={peer_token}",
    }
    apps = {"unprotected": unprotected, "typed-sessions": ours, "fastapi-sessions": peer}
    return {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://testserver",
            headers={"cookie": cookies[name]},
        )
        for name, app in apps.items()
    }


def main() -> None:
    clients = asyncio.run(make_clients())

    async def check() -> None:
        for name, client in clients.items():
            response = await client.get("/whoami")
            assert response.status_code == 200, (name, response.text)
            assert response.json() == {"username": "alice"}, name

    asyncio.run(check())

    def contender(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        async def call() -> None:
            await client.get("/whoami")

        return call

    medians = run_async(
        [(name, contender(client)) for name, client in clients.items()], rounds=40, batch=300
    )
    print(table("GET /whoami with a valid session cookie", medians, baseline="unprotected"))
    base = medians["unprotected"]
    ours_overhead = medians["typed-sessions"] - base
    peer_overhead = medians["fastapi-sessions"] - base
    print(
        f"\noverhead over unprotected: typed-sessions {ours_overhead * 1e6:.1f} us, "
        f"fastapi-sessions {peer_overhead * 1e6:.1f} us"
    )
    print(
        f"typed-sessions overhead / fastapi-sessions overhead: {ours_overhead / peer_overhead:.2f}"
        " (target <= 0.33)"
    )


if __name__ == "__main__":
    main()
