"""A protected GET route: typed-sessions' cookie dependency vs the peers.

FastAPI apps serve the same route (return the signed-in user's pydantic data), driven
in-process through httpx's ASGITransport, interleaved, each request carrying a valid
session cookie:

- ``unprotected``: no session at all (the baseline);
- ``typed-sessions``: ``make_cookie_dependency`` over a ``MemoryStore``;
- ``a constant dependency``: a dependency of our signature (the connection and the
  response) returning a constant: what FastAPI itself charges any session dependency;
- ``the same with our headers``: that dependency adding the ``Vary: Cookie`` and
  ``Cache-Control: private, no-store`` our dependency sends with every answer: what
  those two headers cost the server and the client, none of it session work;
- ``fastapi-sessions``: ``SessionCookie`` + ``InMemoryBackend`` + a ``SessionVerifier``,
  as on its getting-started page;
- ``starlette SessionMiddleware`` and ``starsessions, memory``: the same route reading
  the user from ``request.session`` (the fastest peers have no dependency of their own).

The figure that matters is each library's overhead over ``unprotected``; issue 13's
target is ours at most half of the fastest peer's.

Run: ``python benchmarks/bench_dependency.py`` (needs the ``bench`` extra), or
``python bench_dependency.py instructions [N1 N2]`` for callgrind instruction counts per
request (each contender serves N1 and N2 requests in processes of its own; the
difference over ``N2 - N1``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated
from uuid import UUID, uuid4

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.frontends.implementations import CookieParameters, SessionCookie
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import HTTPConnection
from starsessions import InMemoryStore, SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarSessionMiddleware

from harness import Browser, callgrind_count, run_async, table
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


# --- the floor: FastAPI's own cost of one dependency of the same signature --------------

_ALICE = SessionData(username="alice")


async def constant_dependency(request: HTTPConnection, response: Response) -> SessionData:
    """What any session dependency pays FastAPI: solved per request, no session work."""
    return _ALICE


floor = FastAPI()


@floor.get("/whoami")
async def floor_whoami(
    user: Annotated[SessionData, Depends(constant_dependency)],
) -> SessionData:
    return user


# --- the floor with our response headers: what a client pays for Vary and Cache-Control --


async def constant_dependency_with_headers(
    request: HTTPConnection, response: Response
) -> SessionData:
    """The floor, and the two headers our dependency adds to every answer (so that no
    shared cache stores a user's page): their cost is the client's and the server's,
    none of it session work."""
    response.raw_headers.append((b"vary", b"Cookie"))
    response.raw_headers.append((b"cache-control", b"private, no-store"))
    return _ALICE


floor_with_headers = FastAPI()


@floor_with_headers.get("/whoami")
async def floor_with_headers_whoami(
    user: Annotated[SessionData, Depends(constant_dependency_with_headers)],
) -> SessionData:
    return user


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


# --- the middleware peers: the route reads the user from request.session ----------------


def _session_app() -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(request: Request) -> SessionData:
        return SessionData(username=request.session["username"])

    @app.get("/login")
    async def login(request: Request) -> None:
        request.session["username"] = "alice"

    return app


starlette_app = _session_app()
starlette_app.add_middleware(StarletteSessionMiddleware, secret_key=SECRET)
starsessions_app = _session_app()
starsessions_app.add_middleware(SessionAutoloadMiddleware)
starsessions_app.add_middleware(StarSessionMiddleware, store=InMemoryStore())

APPS = {
    "unprotected": unprotected,
    "typed-sessions": ours,
    "a constant dependency": floor,
    "the same with our headers": floor_with_headers,
    "fastapi-sessions": peer,
    "starlette SessionMiddleware": starlette_app,
    "starsessions, memory": starsessions_app,
}
PEERS = ("fastapi-sessions", "starlette SessionMiddleware", "starsessions, memory")


# --- the run -------------------------------------------------------------------------------


async def make_clients() -> dict[str, Browser]:
    """One client per contender, keeping its cookies in a plain dict (see
    :class:`harness.Browser`: httpx's cookie jar parses every response header on the client
    side, which made each header the server sends cost about 17k instructions)."""
    issued = await issue_session(store, SessionData(username="alice"), keys=keys)
    peer_id = uuid4()
    await peer_backend.create(peer_id, SessionData(username="alice"))
    peer_token = str(peer_cookie.signer.dumps(peer_id.hex))
    cookies = {
        "unprotected": {OUR_COOKIE: issued.token},
        "typed-sessions": {OUR_COOKIE: issued.token},
        "a constant dependency": {OUR_COOKIE: issued.token},
        "the same with our headers": {OUR_COOKIE: issued.token},
        "fastapi-sessions": {"cookie": peer_token},
    }
    clients: dict[str, Browser] = {}
    for name, app in APPS.items():
        client = Browser(app)
        if name in cookies:
            client.cookies.update(cookies[name])
        else:  # a middleware peer: sign in once, then send the cookie it set
            await client.get("/login")
        clients[name] = client
    return clients


def report(figures: dict[str, float], unit: str) -> None:
    base = figures["unprotected"]
    overheads = {name: figures[name] - base for name in figures if name != "unprotected"}
    fastest = min(PEERS, key=lambda name: overheads[name])
    print(f"\noverhead over unprotected ({unit}):")
    for name, value in overheads.items():
        print(f"  {name:<28} {value:>12,.1f}")
    ours = overheads["typed-sessions"]
    print(f"typed-sessions / fastapi-sessions: {ours / overheads[PEERS[0]]:.2f}")
    print(
        f"typed-sessions / the fastest peer ({fastest}): "
        f"{ours / overheads[fastest]:.2f} (target <= 0.5)"
    )
    floor = overheads["a constant dependency"]
    print(
        f"FastAPI's own share (a constant dependency) / the fastest peer: "
        f"{floor / overheads[fastest]:.2f}; typed-sessions' session work over it: "
        f"{ours - floor:,.1f} {unit}"
    )
    headed = overheads["the same with our headers"]
    print(
        f"... and over the same dependency adding our Vary and Cache-Control headers "
        f"({headed / overheads[fastest]:.2f} of the fastest peer): {ours - headed:,.1f} {unit}"
    )


def timings() -> None:
    clients = asyncio.run(make_clients())

    async def check() -> None:
        for name, client in clients.items():
            jar = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            async with httpx.AsyncClient(
                transport=client.transport, base_url=client.base, headers={"cookie": jar}
            ) as checking:
                response = await checking.get("/whoami")
            assert response.status_code == 200, (name, response.text)
            assert response.json() == {"username": "alice"}, name

    asyncio.run(check())

    def contender(client: Browser):  # type: ignore[no-untyped-def]
        async def call() -> None:
            await client.get("/whoami")

        return call

    medians = run_async(
        [(name, contender(client)) for name, client in clients.items()], rounds=40, batch=300
    )
    print(table("GET /whoami with a valid session cookie", medians, baseline="unprotected"))
    report({name: value * 1e6 for name, value in medians.items()}, "us")


def serve(name: str, requests: int) -> None:
    """The child of ``instructions``: ``requests`` requests to ``name``'s app."""

    async def run() -> None:
        client = (await make_clients())[name]
        for _ in range(requests):
            if await client.get("/whoami") != 200:
                raise RuntimeError(f"{name}: a request failed")

    asyncio.run(run())


def instructions(low: int, high: int) -> None:
    counts = {
        name: (callgrind_count(__file__, "--child", name, str(high))
               - callgrind_count(__file__, "--child", name, str(low))) / (high - low)
        for name in APPS
    }  # fmt: skip
    print(f"## GET /whoami, instructions per request ({low} and {high} requests, callgrind)")
    for name, value in counts.items():
        print(f"{name:<28} {value:>12,.0f}")
    report(counts, "instructions")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["instructions"]:
        low, high = (int(a) for a in sys.argv[2:4]) if len(sys.argv) >= 4 else (100, 600)
        instructions(low, high)
    else:
        timings()
