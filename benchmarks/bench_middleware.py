"""The seed page's counter route under each session middleware, side by side, in one run.

Contenders (all FastAPI, driven in-process over ``httpx.ASGITransport``, one client each,
keeping its cookies, over https so that Secure cookies flow):

- no sessions: the same route counting in a module variable (the baseline);
- typed-sessions: ``session_middleware`` with ``MemoryStore``;
- Starlette's ``SessionMiddleware`` (signed client-side cookie);
- starsessions with its ``InMemoryStore`` (and its autoload middleware);
- authx-extra's ``SessionMiddleware`` with ``MemoryIO`` (BaseHTTPMiddleware).

A second table times a route that never touches the session against the no-session app:
typed-sessions with ``autoload=False`` and a cookie, and with no cookie at all.

Run from this folder: ``python bench_middleware.py`` (peers: ``pip install starsessions
authx-extra``; see README.md). Targets (issue 4): typed-sessions' overhead over the
no-session app at most a third of the fastest peer's; the untouched route within 5%.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from authx_extra.extra._memory import MemoryIO
from authx_extra.session import SessionMiddleware as AuthxSessionMiddleware
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starsessions import InMemoryStore, SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarSessionMiddleware

from harness import Browser, run_async, table
from prototype_middleware import CompactPrototype, ProtoStore, PrototypeMiddleware
from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.memory import MemoryStore

SECRET = "benchmark-secret-0123456789abcdef0123456789"
BASE = "https://testserver"


def bump(session: Any) -> dict[str, int]:
    """The page's handler body, shared by every contender."""
    if "test_counter" not in session:
        session["test_counter"] = 0
    session["test_counter"] += 1
    return {"test_counter": session["test_counter"]}


def peek(session: Any) -> dict[str, int]:
    """A read-only handler body: the counter as it is, nothing written."""
    return {"test_counter": session.get("test_counter", 0)}


def with_plain_route(app: FastAPI, read: Callable[[Request], Any] | None = None) -> FastAPI:
    """Add ``/plain`` (never touches the session) and, given how a request's session is
    found, ``/session_read`` (reads the counter, writes nothing)."""

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"hello": "world"}

    if read is not None:

        @app.get("/session_read")
        async def session_read(request: Request) -> dict[str, int]:
            return peek(read(request))

    return app


def no_sessions() -> FastAPI:
    app = FastAPI()
    counter: dict[str, int] = {}

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:  # the same signature
        return bump(counter)

    return with_plain_route(app, lambda request: counter)


def typed_sessions(*, autoload: bool = True) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),
        keys=Keyring.from_secrets(SECRET),
        autoload=autoload,
    )

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        manager = request.state.session
        if not autoload:
            await manager.load()
        return bump(manager.get_session())

    return with_plain_route(app, lambda request: request.state.session.get_session())


def typed_sessions_dependency() -> FastAPI:
    """Ours with the route as our docs write it: the manager from ``SessionDep``."""
    app = FastAPI()
    app.add_middleware(
        session_middleware, store=MemoryStore(dict[str, Any]), keys=Keyring.from_secrets(SECRET)
    )

    @app.get("/session_test")
    async def session_test(session_manager: SessionDep) -> dict[str, int]:
        return bump(session_manager.get_session())

    return with_plain_route(app, lambda request: request.state.session.get_session())


def starlette() -> FastAPI:
    app = FastAPI()
    app.add_middleware(StarletteSessionMiddleware, secret_key=SECRET)

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(request.session)

    return with_plain_route(app, lambda request: request.session)


def starsessions() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(StarSessionMiddleware, store=InMemoryStore())

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(request.session)

    return with_plain_route(app, lambda request: request.session)


def authx_extra() -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthxSessionMiddleware, secret_key=SECRET, store=MemoryIO())

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(await request.state.session.get_session())

    return with_plain_route(app)


class JarBrowser:
    """The same, through ``httpx.AsyncClient`` and its standard cookie jar."""

    def __init__(self, app: FastAPI) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)

    async def get(self, path: str) -> int:
        return (await self.client.get(path)).status_code


async def prime(session_client: Browser | JarBrowser, cookie_only: Browser | JarBrowser) -> None:
    """Start a session in ``session_client`` and give ``cookie_only`` the same cookies."""
    await session_client.get("/session_test")
    if isinstance(session_client, Browser) and isinstance(cookie_only, Browser):
        cookie_only.cookies.update(session_client.cookies)


def get(browser: Browser | JarBrowser, path: str) -> Callable[[], Awaitable[object]]:
    async def call() -> None:
        status = await browser.get(path)
        if status != 200:  # pragma: no cover - a broken contender
            raise RuntimeError(f"{path}: {status}")

    return call


# --- the middlewares alone: raw ASGI, no FastAPI, no httpx --------------------------------


async def respond(send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def session_of(scope: Any) -> Any:
    """The session of a raw request: ``request.state.session``'s (ours) or
    ``scope["session"]`` (the peers and prototype_middleware.py)."""
    state = scope.get("state", {})
    return state["session"].get_session() if "session" in state else scope.get("session")


async def counter_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI counter on ``scope["session"]`` (peers) or ``request.state.session``."""
    session = session_of(scope)
    if session is not None:
        bump(session)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


async def read_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI route reading the counter, writing nothing (counts up on its first
    request only, so that there is a session to read)."""
    session = session_of(scope)
    if session is not None:
        if "test_counter" in session:
            peek(session)
        else:
            bump(session)
    await respond(send)


def raw_driver(app: Any) -> Callable[[], Awaitable[object]]:
    """Call ``app`` directly with a minimal scope, keeping cookies like :class:`Browser`."""
    cookies: dict[str, str] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call() -> None:
        headers = [(b"host", b"testserver")]
        if cookies:
            jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
            headers.append((b"cookie", jar.encode("latin-1")))
        start: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "GET", "scheme": "https", "path": "/", "raw_path": b"/",
                 "query_string": b"", "root_path": "", "headers": headers,
                 "server": ("testserver", 443), "client": ("127.0.0.1", 5000)}  # fmt: skip
        await app(scope, receive, send)
        for name, value in start[0]["headers"]:
            if name == b"set-cookie":
                key, _, rest = value.decode("latin-1").partition("=")
                cookies[key] = rest.split(";", 1)[0]

    return call


def raw_apps(route: Any = counter_app) -> dict[str, Any]:
    """``route`` (a bare ASGI app) alone and under each middleware over memory."""
    keyring = Keyring.from_secrets(SECRET)
    store = MemoryStore(dict[str, Any])
    return {
        "no sessions": route,
        "typed-sessions": session_middleware(route, store=store, keys=keyring),
        "starlette SessionMiddleware": StarletteSessionMiddleware(route, secret_key=SECRET),
        "starsessions InMemoryStore": StarSessionMiddleware(
            SessionAutoloadMiddleware(route), store=InMemoryStore()
        ),
        "prototype": PrototypeMiddleware(route, store=ProtoStore(), keys=keyring),
        "prototype, compact store": CompactPrototype(
            route, store=MemoryStore(dict[str, Any]), keys=keyring
        ),
    }


def raw_contenders() -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    return [
        *((name, raw_driver(app)) for name, app in raw_apps().items()),
        ("authx-extra SessionMiddleware",
         raw_driver(AuthxSessionMiddleware(authx_counter_app, secret_key=SECRET,
                                           store=MemoryIO()))),
    ]  # fmt: skip


async def authx_counter_app(scope: Any, receive: Any, send: Any) -> None:
    bump(await scope["state"]["session"].get_session())
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def overheads(medians: dict[str, float], baseline: str) -> str:
    base = medians[baseline]
    return "\n".join(
        f"  {name}: {(value - base) * 1e6:+.1f} us over {baseline}"
        for name, value in medians.items()
        if name != baseline
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 30
    batch = int(args[1]) if len(args) > 1 else 200
    client: type[Browser | JarBrowser] = JarBrowser if "--httpx-jar" in sys.argv else Browser
    print(f"clients: {client.__name__}, {rounds} rounds of {batch} requests per contender\n")
    counter_clients = {
        "no sessions": client(no_sessions()),
        "no sessions, same cookie": client(no_sessions()),
        "typed-sessions": client(typed_sessions()),
        "starlette SessionMiddleware": client(starlette()),
        "starsessions InMemoryStore": client(starsessions()),
        "authx-extra SessionMiddleware": client(authx_extra()),
    }
    # The floor every cookie-based session pays before any session work: the client
    # sending, and the server receiving, a cookie of our token's size on every request.
    asyncio.run(
        prime(counter_clients["typed-sessions"], counter_clients["no sessions, same cookie"])
    )
    counter = run_async(
        [(name, get(c, "/session_test")) for name, c in counter_clients.items()],
        rounds=rounds,
        batch=batch,
    )
    print(table("the seed's counter route (one session write per request)", counter,
                baseline="no sessions"))  # fmt: skip
    print(overheads(counter, "no sessions"))
    base = counter["no sessions"]
    ours = counter["typed-sessions"] - base
    peers = [v - base for k, v in counter.items() if k not in
             ("no sessions", "no sessions, same cookie", "typed-sessions")]  # fmt: skip
    floor = counter["no sessions, same cookie"] - base
    print(f"  typed-sessions overhead / fastest peer's: {ours / min(peers):.2f} (target <= 0.33)")
    print(f"  the same, less the cookie floor: {(ours - floor) / (min(peers) - floor):.2f}")

    # A route that never touches the session.
    with_cookie = client(typed_sessions(autoload=False))
    without_cookie = client(typed_sessions())
    # Carrying a cookie costs the client and the transport something by itself: the fair
    # baseline for the cookie case is the no-session app sent a cookie of the same size.
    no_sessions_with_cookie = client(no_sessions())
    asyncio.run(prime(with_cookie, no_sessions_with_cookie))
    plain = run_async(
        [
            ("no sessions", get(counter_clients["no sessions"], "/plain")),
            ("no sessions, same cookie", get(no_sessions_with_cookie, "/plain")),
            ("typed-sessions autoload=False, cookie", get(with_cookie, "/plain")),
            ("typed-sessions, no cookie", get(without_cookie, "/plain")),
        ],
        rounds=rounds,
        batch=batch,
    )
    print()
    print(table("a route that never touches the session", plain, baseline="no sessions"))
    print(overheads(plain, "no sessions"))

    raw = run_async(raw_contenders(), rounds=rounds, batch=batch * 5)
    print()
    print(table("the middlewares alone (raw ASGI counter app, no FastAPI)", raw,
                baseline="no sessions"))  # fmt: skip
    print(overheads(raw, "no sessions"))


if __name__ == "__main__":
    main()
