"""Check every claim of the README's feature comparison by exercising each library.

Each row is a small async check run against each library as its own docs use it; the
script prints the Markdown table (and its footnotes) that the README carries. Nothing is
hard-coded: every "yes"/"no" comes from requests sent to a real FastAPI app, from the
library's store, or from inspecting the installed package.

Columns (all FastAPI apps, driven in-process with ``httpx.AsyncClient`` over
``httpx.ASGITransport`` at ``https://testserver``, with each library's secure cookie
settings, so Secure cookies flow):

- typed-sessions, middleware style: ``session_middleware`` + ``MemoryStore``;
- typed-sessions, dependency style: ``make_cookie_dependency`` + ``start_session``/
  ``end_session``/``update_session``;
- fastapi-sessions: ``SessionCookie`` + ``InMemoryBackend`` + a ``SessionVerifier``
  (its getting-started page);
- authx-extra: ``SessionMiddleware`` + ``MemoryIO`` (``await ...get_session()``);
- starsessions: ``SessionMiddleware`` + ``SessionAutoloadMiddleware`` + ``InMemoryStore``;
- Starlette: ``starlette.middleware.sessions.SessionMiddleware`` (signed cookie).

The client keeps cookies like a browser, except that it never drops one because its
``Max-Age`` passed: replaying an old cookie is what an attacker (or a stolen cookie)
does, so each "refused" claim is tested by replay. It only drops a cookie the server
deletes (``Max-Age=0`` or an ``Expires`` in the past).

The Redis rows use the server at ``redis://127.0.0.1:6379/0`` (``COMPARE_REDIS_URL``
overrides it) under a unique key prefix, deleted at the end.

Run from this folder: ``python compare_features.py`` (peers: ``pip install -e '.[bench]'``).
"""

import asyncio
import base64
import binascii
import contextlib
import email.utils
import http.cookiejar
import importlib
import importlib.metadata
import importlib.resources
import inspect
import os
import pkgutil
import re
import sys
import time
import uuid
import warnings
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
from authx_extra.extra._memory import MemoryIO
from authx_extra.session import SessionMiddleware as AuthxSessionMiddleware
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi_sessions.backends.implementations import InMemoryBackend
from fastapi_sessions.backends.session_backend import SessionBackend
from fastapi_sessions.frontends.implementations import CookieParameters, SessionCookie
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starsessions import InMemoryStore, SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarSessionMiddleware
from starsessions.stores.base import SessionStore as StarSessionStore
from starsessions.stores.redis import RedisStore as StarRedisStore

from peers import BasicVerifier
from typed_sessions import (
    CookieSettings,
    Err,
    Expiry,
    Keyring,
    MemoryStore,
    Session,
    SessionManager,
    StoreError,
    end_session,
    make_cookie_dependency,
    session_middleware,
    start_session,
    store_error_handler,
    update_session,
)
from typed_sessions.stores.redis import RedisStore

SECRET = "compare-features-secret-0123456789abcdef0123"
BASE = "https://testserver"
REDIS_URL = os.environ.get("COMPARE_REDIS_URL", "redis://127.0.0.1:6379/0")
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: a store outage
RUN_PREFIX = f"typed-sessions-compare-{uuid.uuid4().hex[:12]}:"

IDLE = 2  # seconds, for every library: 1 s is flaky where itsdangerous counts whole seconds
ACTIVE_GAP = 1.2  # seconds between requests of an active client (below IDLE)
CONCURRENT = 10
COOKIELESS_READS = 100
UNBOUNDED_PROBE = 200  # sessions saved into a store that has no size option

Status = Literal["yes", "no", "n/a"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    note: str = ""
    footnote: str = ""  # the reason for an "n/a", printed under the table


def yes(note: str = "") -> Verdict:
    return Verdict("yes", note)


def no(note: str = "") -> Verdict:
    return Verdict("no", note)


def na(reason: str, note: str = "") -> Verdict:
    return Verdict("n/a", note, reason)


def verdict(ok: bool, note: str = "") -> Verdict:
    return Verdict("yes" if ok else "no", note)


# --- the client ----------------------------------------------------------------------


class _NoJar(http.cookiejar.CookieJar):
    """httpx's own jar, switched off: :class:`Browser` keeps the cookies itself."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str]

    @property
    def deletes(self) -> bool:
        max_age = self.attributes.get("max-age")
        if max_age is not None and max_age.strip().lstrip("-").isdigit() and int(max_age) <= 0:
            return True
        expires = self.attributes.get("expires")
        if expires:
            try:
                return email.utils.parsedate_to_datetime(expires) <= datetime.now(UTC)
            except (TypeError, ValueError):
                return False
        return False


def parse_set_cookie(header: str) -> SetCookie:
    first, *rest = header.split(";")
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.strip().lower()] = val.strip()
    return SetCookie(name.strip(), value.strip(), attributes)


def set_cookies(response: httpx.Response) -> list[SetCookie]:
    return [parse_set_cookie(h) for h in response.headers.get_list("set-cookie")]


class Browser:
    """One client of an app, over ``httpx.AsyncClient`` + ``ASGITransport`` at https.

    Keeps cookies by name (sent on every request; the apps use path ``/``), drops one
    only when the server deletes it, never by age (see the module docs). A 500 from the
    app comes back as a response, not an exception.
    """

    def __init__(self, app: FastAPI, cookies: dict[str, str] | None = None) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE, cookies=_NoJar())
        self.cookies: dict[str, str] = dict(cookies or {})

    async def __aenter__(self) -> "Browser":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.client.request(method, path, headers=sent)
        for cookie in set_cookies(response):
            if cookie.deletes:
                self.cookies.pop(cookie.name, None)
            else:
                self.cookies[cookie.name] = cookie.value
        return response

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("GET", path, headers)

    async def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("POST", path, headers)


# --- one app per library, with the same routes -------------------------------------------
#
# Middleware style:  GET /read  -> {"data": the session as a dict}       (reads only)
#                    POST /write/{key}/{value}  (reads, awaits sleep(0), writes)
#                    POST /end   the library's way to end or clear a session
#                    POST /cookies  sets two cookies of its own and writes the session
# Dependency style:  POST /login/{key}/{value} starts a session holding {key: value};
#                    GET /read, POST /write/..., POST /end, POST /cookies as above, on
#                    the session the dependency gives (401/403 without one).


class Data(BaseModel):
    """The typed session data of the dependency-style apps."""

    values: dict[str, str] = Field(default_factory=dict)


@dataclass
class Options:
    idle: int | None = None  # the shortest idle/lifetime option, in seconds
    redis: Redis | None = None  # use the library's Redis store on this client
    prefix: str = ""
    max_size: int | None = None  # the memory store's size option, if it has one
    skip_header: str | None = None  # the middleware's skip-header option, if it has one


@dataclass
class Kit:
    """A built app and how to look into its store."""

    app: FastAPI
    cookie_name: str
    count: Callable[[], int] | None = None  # records in the store; None: no store
    has_id: Callable[[str], Awaitable[bool]] | None = None  # a record under this raw ID?
    expiry_option: str = ""  # what Options.idle was turned into, for the notes
    mints_ids: str = ""  # dependency style: who generates a new session's ID


def add_middleware_routes(
    app: FastAPI,
    get: Callable[[Request], Awaitable[Any]],
    end: Callable[[Request], Awaitable[None]],
) -> FastAPI:
    """The middleware-style routes; ``get`` returns the library's dict-like session."""

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return {"data": dict(await get(request))}

    @app.post("/write/{key}/{value}")
    async def write(request: Request, key: str, value: str) -> dict[str, Any]:
        session = await get(request)
        _ = dict(session)  # read ...
        await asyncio.sleep(0)  # ... let other requests run ...
        session[key] = value  # ... and write
        return {"data": dict(session)}

    @app.post("/end")
    async def end_route(request: Request) -> str:
        await end(request)
        return "ended"

    @app.post("/cookies")
    async def cookies(request: Request, response: Response) -> str:
        response.set_cookie("app_a", "1", secure=True, httponly=True, samesite="lax")
        response.set_cookie("app_b", "2", secure=True, httponly=True, samesite="lax")
        (await get(request))["k"] = "v"
        return "ok"

    @app.get("/plain")
    async def plain() -> str:
        return "plain"

    return app


def typed_middleware(options: Options) -> Kit:
    app = FastAPI()
    store: Any
    if options.redis is not None:
        store = RedisStore(options.redis, dict[str, Any], prefix=options.prefix)
    elif options.max_size is not None:
        store = MemoryStore(dict[str, Any], max_sessions=options.max_size)
    else:
        store = MemoryStore(dict[str, Any])
    extra: dict[str, Any] = {}
    expiry_option = ""
    if options.idle is not None:
        extra["expiry"] = Expiry(idle=timedelta(seconds=options.idle), absolute=timedelta(hours=1))
        expiry_option = f"Expiry(idle={options.idle}s)"
    if options.skip_header is not None:
        extra["skip_header"] = options.skip_header
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(SECRET), **extra)

    async def get(request: Request) -> Any:
        manager: SessionManager = request.state.session  # the page's API
        return manager.get_session()

    async def end(request: Request) -> None:
        request.state.session.invalidate()

    async def has_id(raw: str) -> bool:
        return await store.load(raw) is not None

    add_middleware_routes(app, get, end)
    count = None if options.redis is not None else (lambda: len(store))
    return Kit(app, CookieSettings().name, count, has_id, expiry_option)


def typed_dependency(options: Options) -> Kit:
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)
    store: Any
    if options.redis is not None:
        store = RedisStore(options.redis, Data, prefix=options.prefix)
    elif options.max_size is not None:
        store = MemoryStore(Data, max_sessions=options.max_size)
    else:
        store = MemoryStore(Data)
    keys = Keyring.from_secrets(SECRET)
    expiry = Expiry()
    expiry_option = ""
    if options.idle is not None:
        expiry = Expiry(idle=timedelta(seconds=options.idle), absolute=timedelta(hours=1))
        expiry_option = f"Expiry(idle={options.idle}s)"

    def verify(session: Session[Data]) -> bool:
        return True

    current = make_cookie_dependency(store, verify, keys=keys, expiry=expiry)
    maybe = make_cookie_dependency(store, verify, keys=keys, expiry=expiry, auto_error=False)
    Current = Annotated[Session[Data], Depends(current)]
    Maybe = Annotated[Session[Data] | None, Depends(maybe)]

    @app.post("/login/{key}/{value}")
    async def login(key: str, value: str, response: Response) -> str:
        await start_session(response, store, Data(values={key: value}), keys=keys, expiry=expiry)
        return "started"

    @app.get("/read")
    async def read(session: Current) -> dict[str, Any]:
        return {"data": session.data.values}

    @app.post("/write/{key}/{value}")
    async def write(session: Current, key: str, value: str) -> dict[str, Any]:
        _ = dict(session.data.values)  # read ...
        await asyncio.sleep(0)  # ... let other requests run ...
        updated = await update_session(  # ... and write (retried on conflict)
            store,
            session.id,
            lambda data: Data(values={**data.values, key: value}),
            expiry=expiry,
        )
        if isinstance(updated, Err):
            raise HTTPException(409, "session changed or ended")
        return {"data": updated.value.data.values}

    @app.post("/end")
    async def end(response: Response, session: Maybe) -> str:
        await end_session(response, store, session)
        return "ended"

    @app.post("/cookies")
    async def cookies(response: Response) -> str:
        response.set_cookie("app_a", "1", secure=True, httponly=True, samesite="lax")
        response.set_cookie("app_b", "2", secure=True, httponly=True, samesite="lax")
        await start_session(response, store, Data(values={"k": "v"}), keys=keys, expiry=expiry)
        return "ok"

    async def has_id(raw: str) -> bool:
        return await store.load(raw) is not None

    count = None if options.redis is not None else (lambda: len(store))
    return Kit(app, CookieSettings().name, count, has_id, expiry_option, "`start_session`")


def fastapi_sessions(options: Options) -> Kit:
    app = FastAPI()
    params = CookieParameters(secure=True)  # its default is False; we serve https
    expiry_option = ""
    if options.idle is not None:
        params = CookieParameters(secure=True, max_age=options.idle)
        expiry_option = f"CookieParameters(max_age={options.idle})"
    cookie = SessionCookie(
        cookie_name="cookie",
        identifier="general_verifier",
        auto_error=True,
        secret_key=SECRET,
        cookie_params=params,
    )
    backend = InMemoryBackend[UUID, Data]()
    verifier = BasicVerifier(
        identifier="general_verifier",
        auto_error=True,
        backend=backend,
        auth_http_exception=HTTPException(status_code=403, detail="invalid session"),
    )

    async def create(response: Response, values: dict[str, str]) -> None:
        session = uuid.uuid4()
        await backend.create(session, Data(values=values))
        cookie.attach_to_response(response, session)

    @app.post("/login/{key}/{value}")
    async def login(key: str, value: str, response: Response) -> str:
        await create(response, {key: value})
        return "started"

    @app.get("/read", dependencies=[Depends(cookie)])
    async def read(data: Data = Depends(verifier)) -> dict[str, Any]:  # noqa: B008
        return {"data": data.values}

    @app.post("/write/{key}/{value}")
    async def write(
        key: str,
        value: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        data: Data = Depends(verifier),  # noqa: B008
    ) -> dict[str, Any]:
        _ = dict(data.values)  # read ...
        await asyncio.sleep(0)  # ... let other requests run ...
        data.values[key] = value  # ... and write
        await backend.update(session_id, data)
        return {"data": data.values}

    @app.post("/end")
    async def end(response: Response, session_id: UUID = Depends(cookie)) -> str:  # noqa: B008
        await backend.delete(session_id)
        cookie.delete_from_response(response)
        return "deleted session"

    @app.post("/cookies")
    async def cookies(response: Response) -> str:
        response.set_cookie("app_a", "1", secure=True, httponly=True, samesite="lax")
        response.set_cookie("app_b", "2", secure=True, httponly=True, samesite="lax")
        await create(response, {"k": "v"})
        return "ok"

    async def has_id(raw: str) -> bool:
        try:
            return UUID(raw) in backend.data
        except ValueError:
            return False

    count = lambda: len(backend.data)  # noqa: E731
    return Kit(app, "cookie", count, has_id, expiry_option, "the app's `uuid4()`, as its docs do")


def authx_extra(options: Options) -> Kit:
    app = FastAPI()
    store = MemoryIO()  # passed explicitly: the default instance is shared by all apps
    extra: dict[str, Any] = {}
    expiry_option = ""
    if options.idle is not None:
        extra["max_age"] = options.idle
        expiry_option = f"max_age={options.idle}"
    if options.skip_header is not None:
        extra["skip_session_header"] = {"header_name": options.skip_header, "header_value": "*"}
    app.add_middleware(AuthxSessionMiddleware, secret_key=SECRET, store=store, **extra)

    async def get(request: Request) -> Any:
        return await request.state.session.get_session()

    async def end(request: Request) -> None:
        await request.state.session.clear_session()

    async def has_id(raw: str) -> bool:
        return raw in store.raw_memory_store

    add_middleware_routes(app, get, end)
    return Kit(app, "sid", lambda: len(store.raw_memory_store), has_id, expiry_option)


def starsessions(options: Options) -> Kit:
    app = FastAPI()
    store: Any
    if options.redis is not None:
        store = StarRedisStore(connection=options.redis, prefix=options.prefix)
    else:
        store = InMemoryStore()
    extra: dict[str, Any] = {}
    expiry_option = ""
    if options.idle is not None:
        extra = {"lifetime": options.idle, "rolling": True}
        expiry_option = f"lifetime={options.idle}, rolling=True"
    app.add_middleware(SessionAutoloadMiddleware)  # added first: it must run inside
    app.add_middleware(StarSessionMiddleware, store=store, **extra)  # cookie_https_only=True

    async def get(request: Request) -> Any:
        return request.session

    async def end(request: Request) -> None:
        request.session.clear()

    async def has_id(raw: str) -> bool:
        return raw in store.data

    add_middleware_routes(app, get, end)
    if options.redis is not None:
        return Kit(app, "session", None, None, expiry_option)
    return Kit(app, "session", lambda: len(store.data), has_id, expiry_option)


def starlette(options: Options) -> Kit:
    app = FastAPI()
    extra: dict[str, Any] = {}
    expiry_option = ""
    if options.idle is not None:
        extra["max_age"] = options.idle
        expiry_option = f"max_age={options.idle}"
    app.add_middleware(StarletteSessionMiddleware, secret_key=SECRET, https_only=True, **extra)

    async def get(request: Request) -> Any:
        return request.session

    async def end(request: Request) -> None:
        request.session.clear()

    add_middleware_routes(app, get, end)
    return Kit(app, "session", None, None, expiry_option)


@dataclass(frozen=True)
class Library:
    column: str
    style: Literal["middleware", "dependency"]
    distribution: str
    package: str  # import name: where py.typed and store classes are looked for
    modules: tuple[str, ...]  # what its app imports (for the import-time warnings probe)
    build: Callable[[Options], Kit]
    memory_store: Callable[..., Any] | None  # its built-in memory store class
    is_store: Callable[[type], bool] | None  # recognises its store classes
    middleware: Callable[..., Any] | None = None  # whose options tell about a skip header
    redis_kit: bool = False  # whether build() can run on its Redis store


def _typed_store(cls: type) -> bool:
    return all(
        inspect.iscoroutinefunction(getattr(cls, m, None)) for m in ("load", "save", "delete")
    )


def _authx_store(cls: type) -> bool:  # what its SessionMiddleware calls on `store`
    return all(callable(getattr(cls, m, None)) for m in ("create_store", "get_store", "gc"))


def _subclass_of(base: type) -> Callable[[type], bool]:
    return lambda cls: isinstance(cls, type) and issubclass(cls, base) and cls is not base


TYPED_MODULES = ("typed_sessions", "typed_sessions.stores.redis")
LIBRARIES = (
    Library(
        column="typed-sessions (middleware)",
        style="middleware",
        distribution="typed-sessions",
        package="typed_sessions",
        modules=TYPED_MODULES,
        build=typed_middleware,
        memory_store=MemoryStore,
        is_store=_typed_store,
        middleware=session_middleware,
        redis_kit=True,
    ),
    Library(
        column="typed-sessions (dependency)",
        style="dependency",
        distribution="typed-sessions",
        package="typed_sessions",
        modules=TYPED_MODULES,
        build=typed_dependency,
        memory_store=MemoryStore,
        is_store=_typed_store,
        redis_kit=True,
    ),
    Library(
        column="fastapi-sessions",
        style="dependency",
        distribution="fastapi-sessions",
        package="fastapi_sessions",
        modules=(
            "fastapi_sessions.frontends.implementations",
            "fastapi_sessions.backends.implementations",
            "fastapi_sessions.session_verifier",
        ),
        build=fastapi_sessions,
        memory_store=InMemoryBackend,
        is_store=_subclass_of(SessionBackend),
    ),
    Library(
        column="authx-extra",
        style="middleware",
        distribution="authx-extra",
        package="authx_extra",
        modules=("authx_extra.session", "authx_extra.extra._memory"),
        build=authx_extra,
        memory_store=MemoryIO,
        is_store=_authx_store,
        middleware=AuthxSessionMiddleware,
    ),
    Library(
        column="starsessions",
        style="middleware",
        distribution="starsessions",
        package="starsessions",
        modules=("starsessions", "starsessions.stores.redis"),
        build=starsessions,
        memory_store=InMemoryStore,
        is_store=_subclass_of(StarSessionStore),
        middleware=StarSessionMiddleware,
        redis_kit=True,
    ),
    Library(
        column="Starlette",
        style="middleware",
        distribution="starlette",
        package="starlette",
        modules=("starlette.middleware.sessions",),
        build=starlette,
        memory_store=None,
        is_store=None,
        middleware=StarletteSessionMiddleware,
    ),
)

NO_STORE = "Starlette keeps the session in the signed cookie: there is no server-side store."
NO_IDS = "Starlette's cookie carries the data itself, not a session ID."
NO_SERVER_SESSION = "Starlette has no server-side session that a cookie could revive."
DEPENDENCY_STYLE = "Dependency-style libraries have no middleware option to skip sessions."
TYPED_MODEL = "Dependency-style libraries hold the app's own typed model, not a mutable dict."


# --- helpers the checks share --------------------------------------------------------


async def establish(lib: Library, browser: Browser, key: str, value: str) -> httpx.Response:
    """Make a session holding ``{key: value}`` the library's way."""
    path = "/login" if lib.style == "dependency" else "/write"
    return await browser.post(f"{path}/{key}/{value}")


async def read_data(browser: Browser) -> dict[str, Any] | None:
    """The session the app sees, or ``None`` when it refuses the request (4xx)."""
    response = await browser.get("/read")
    if response.status_code >= 500:
        raise RuntimeError(f"/read answered {response.status_code}")
    if response.status_code >= 400:
        return None
    data: dict[str, Any] = response.json()["data"]
    return data


def session_cookie(kit: Kit, response: httpx.Response) -> SetCookie | None:
    found = [c for c in set_cookies(response) if c.name == kit.cookie_name]
    return found[-1] if found else None


def decoded_forms(value: str) -> Iterator[bytes]:
    """The cookie value and whatever base64/zlib decoding of its parts gives."""
    value = value.strip('"')
    yield value.encode()
    for part in [value, *value.split(".")]:
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            continue
        yield raw
        with contextlib.suppress(zlib.error):
            yield zlib.decompress(raw)


def tampered(value: str) -> dict[str, str]:
    """Three small edits of a valid cookie value."""
    middle = len(value) // 2
    flipped_char = "A" if value[middle] != "A" else "B"
    return {
        "one character changed": value[:middle] + flipped_char + value[middle + 1 :],
        "last character removed": value[:-1],
        "one character appended": value + "A",
    }


# --- the checks ----------------------------------------------------------------------


async def check_server_side(lib: Library) -> Verdict:
    """The data is not in the cookie: a fresh app (same secret, empty store) can't read it."""
    marker = f"marker{uuid.uuid4().hex[:16]}"
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "secret", marker)
        cookies = dict(browser.cookies)
    in_cookie = any(
        marker.encode() in form for value in cookies.values() for form in decoded_forms(value)
    )
    async with Browser(lib.build(Options()).app, cookies) as elsewhere:
        data = await read_data(elsewhere)
    travels = data is not None and data.get("secret") == marker
    if in_cookie or travels:
        return no("data readable from the cookie alone")
    return yes()


async def check_client_chosen_id(lib: Library) -> Verdict:
    """A cookie with an attacker-chosen value sent to a writing route is not adopted."""
    kit = lib.build(Options())
    if kit.has_id is None:
        return na(NO_IDS)
    chosen = "attacker-chosen-id"
    async with Browser(kit.app, {kit.cookie_name: chosen}) as victim:
        write = await victim.post("/write/k/victim-data")
        if lib.style == "dependency":
            refused = write.status_code in (401, 403)
            login = await victim.post("/login/k/victim-data")
            issued = session_cookie(kit, login)
        else:
            refused = write.status_code < 500
            issued = session_cookie(kit, write)
    stored = await kit.has_id(chosen)
    new_id = issued is not None and issued.value != chosen
    async with Browser(kit.app, {kit.cookie_name: chosen}) as attacker:
        shared = (await read_data(attacker) or {}).get("k") == "victim-data"
    if stored or shared or not new_id or not refused:
        return no("session stored under the chosen ID" if stored else "chosen ID kept")
    if lib.style == "dependency":
        return yes(f"401/403; login mints a new ID: {kit.mints_ids}")
    return yes("new ID issued")


async def check_tampered(lib: Library) -> Verdict:
    """Edited valid cookies: no 500, the original session is not reached, nothing stored."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "original")
        value = browser.cookies[kit.cookie_name]
    failures: dict[str, int] = {}
    edits = tampered(value)
    for changed in edits.values():
        async with Browser(kit.app, {kit.cookie_name: changed}) as forger:
            read = await forger.get("/read")
            write = await forger.post("/write/k/forged")
            after = await forger.get("/read")
        failure = ""
        seen = [r.json()["data"] for r in (read, after) if r.status_code == 200]
        if any(r.status_code >= 500 for r in (read, write, after)):
            failure = "500"
        elif any(d.get("k") == "original" for d in seen):
            failure = "original session read"
        elif kit.has_id is not None and await kit.has_id(changed):
            failure = "stored under the edited ID"
        if failure:
            failures[failure] = failures.get(failure, 0) + 1
    if failures:
        return no("; ".join(f"{what}: {n}/{len(edits)} edits" for what, n in failures.items()))
    return yes(f"{len(edits)} edits")


async def check_cookieless_reads(lib: Library) -> Verdict:
    """100 requests without a cookie that only read the session leave no store record."""
    kit = lib.build(Options())
    if kit.count is None:
        return na(NO_STORE)
    cookies_sent = 0
    async with Browser(kit.app) as browser:
        for _ in range(COOKIELESS_READS):
            browser.cookies.clear()
            response = await browser.get("/read")
            cookies_sent += session_cookie(kit, response) is not None
    entries = kit.count()
    note = f"{entries} records, {cookies_sent} Set-Cookie"
    if lib.style == "dependency":
        note += "; 401/403 without a session"
    return verdict(entries == 0 and cookies_sent == 0, note)


async def check_own_cookies(lib: Library) -> Verdict:
    """A route setting two cookies of its own and writing the session: all three arrive."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        response = await browser.post("/cookies")
    names = {c.name for c in set_cookies(response)}
    expected = {"app_a", "app_b", kit.cookie_name}
    missing = sorted(expected - names)
    return verdict(not missing, f"missing: {', '.join(missing)}" if missing else "")


async def check_samesite(lib: Library) -> Verdict:
    """The session cookie's SameSite is exactly lax, strict or none (any case)."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        cookie = session_cookie(kit, await establish(lib, browser, "k", "v"))
    if cookie is None:
        return no("no session cookie")
    value = cookie.attributes.get("samesite")
    if value is None:
        options = inspect.signature(lib.middleware).parameters if lib.middleware else {}
        has_option = any("same" in name.lower() for name in options)
        return no("attribute absent" + ("" if has_option else ", no option to set it"))
    return verdict(value.lower() in ("lax", "strict", "none"), f"`SameSite={value}`")


async def check_logout_revokes(lib: Library) -> Verdict:
    """After ending the session the library's way, replaying the old cookie finds no data."""
    kit = lib.build(Options())
    marker = uuid.uuid4().hex
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", marker)
        old = dict(browser.cookies)
        ended = await browser.post("/end")
    async with Browser(kit.app, old) as replay:
        data = await read_data(replay)
    restored = data is not None and data.get("k") == marker
    return verdict(
        ended.status_code == 200 and not restored, "old data restored" if restored else ""
    )


async def check_ended_not_revived(lib: Library) -> Verdict:
    """After logout, a write sent with the old cookie is not visible to another holder of it.

    The threat: the old cookie was seen or planted by someone else; if the ended ID comes
    back to life, the two share the next session.
    """
    kit = lib.build(Options())
    if kit.has_id is None:
        return na(NO_SERVER_SESSION)
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "before")
        old = dict(browser.cookies)
        await browser.post("/end")
    async with Browser(kit.app, old) as victim:
        await victim.post("/write/k/after")
    async with Browser(kit.app, old) as other:
        data = await read_data(other)
    revived = data is not None and data.get("k") == "after"
    return verdict(not revived, "the old cookie sees the new write" if revived else "")


async def check_concurrent_writes(lib: Library) -> Verdict:
    """10 concurrent requests of one client each set their own key: all 10 survive."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "v")
        responses = await asyncio.gather(
            *(browser.post(f"/write/c{i}/{i}") for i in range(CONCURRENT))
        )
        data = await read_data(browser) or {}
    kept = sum(data.get(f"c{i}") == str(i) for i in range(CONCURRENT))
    errors = sum(r.status_code >= 400 for r in responses)
    note = f"{kept}/{CONCURRENT} kept" + (f", {errors} errors" if errors else "")
    return verdict(kept == CONCURRENT, note)


@dataclass
class ExpiryOutcome:
    option: str
    alive_while_active: bool
    refused_after_idle: bool


async def expiry_scenario(lib: Library, redis: Redis | None) -> ExpiryOutcome:
    """Idle timeout IDLE s: reads every ACTIVE_GAP s past it, then IDLE + 1.2 s of quiet."""
    prefix = f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}:"
    kit = lib.build(Options(idle=IDLE, redis=redis, prefix=prefix))
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "v")
        data: dict[str, Any] | None = None
        for _ in range(3):  # 3.6 s of activity, longer than IDLE
            await asyncio.sleep(ACTIVE_GAP)
            data = await read_data(browser)
        alive = data is not None and data.get("k") == "v"
        await asyncio.sleep(IDLE + 1.2)
        data = await read_data(browser)  # the last cookie it got, replayed
    refused = data is None or data.get("k") != "v"
    return ExpiryOutcome(kit.expiry_option, alive, refused)


EXPIRY: dict[tuple[str, str], ExpiryOutcome] = {}


async def run_expiry_scenarios(redis: Redis | None) -> None:
    """Run every library's expiry scenario at once (they mostly sleep)."""
    jobs: list[tuple[tuple[str, str], Awaitable[ExpiryOutcome]]] = []
    for lib in LIBRARIES:
        jobs.append(((lib.column, "memory"), expiry_scenario(lib, None)))
        if lib.redis_kit and redis is not None:
            jobs.append(((lib.column, "Redis"), expiry_scenario(lib, redis)))
    outcomes = await asyncio.gather(*(job for _, job in jobs))
    EXPIRY.update(zip((key for key, _ in jobs), outcomes, strict=True))


def _expiry_verdict(lib: Library, attribute: str) -> Verdict:
    results = {kind: outcome for (column, kind), outcome in EXPIRY.items() if column == lib.column}
    option = next(iter(results.values())).option
    flags = {kind: getattr(outcome, attribute) for kind, outcome in results.items()}
    if len(flags) > 1 and len(set(flags.values())) > 1:
        parts = ", ".join(f"{kind}: {'yes' if ok else 'no'}" for kind, ok in flags.items())
        return no(f"`{option}`; {parts}")
    stores = " and ".join(flags) + " store" if lib.memory_store is not None else ""
    return verdict(all(flags.values()), f"`{option}`" + (f", {stores}" if stores else ""))


async def check_idle_expiry(lib: Library) -> Verdict:
    """With the shortest lifetime option, a replayed cookie is refused after idle time."""
    return _expiry_verdict(lib, "refused_after_idle")


async def check_sliding(lib: Library) -> Verdict:
    """A client active every 1.2 s keeps its session past the 2 s idle timeout."""
    return _expiry_verdict(lib, "alive_while_active")


def _size_parameter(cls: Callable[..., Any]) -> str | None:
    for name in inspect.signature(cls).parameters:
        if re.search(r"max|limit|size|capacity|bound", name, re.IGNORECASE):
            return name
    return None


async def check_bounded_store(lib: Library) -> Verdict:
    """The built-in memory store has a maximum size: save max+1 sessions, count records."""
    if lib.memory_store is None:
        return na(NO_STORE)
    name = _size_parameter(lib.memory_store)
    limit = 5 if name is not None else None
    kit = lib.build(Options(max_size=limit))
    assert kit.count is not None
    sessions = limit + 1 if limit is not None else UNBOUNDED_PROBE
    for i in range(sessions):
        async with Browser(kit.app) as browser:
            await establish(lib, browser, "k", str(i))
    kept = kit.count()
    store = lib.memory_store.__name__
    if name is None:
        return no(f"`{store}()` has no size option; {kept}/{sessions} kept")
    return verdict(kept <= limit, f"`{name}={limit}`: {kept}/{sessions} kept")


def _store_classes(lib: Library) -> list[type]:
    """Every store class the installed package defines (importing all its modules)."""
    assert lib.is_store is not None
    root = importlib.import_module(lib.package)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, f"{lib.package}."):
        if info.name.endswith("__main__"):  # importing it would run a program
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                modules.append(importlib.import_module(info.name))
        except Exception:  # noqa: S112  # an optional module whose extras are missing
            continue
    found: dict[str, type] = {}
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__.startswith(lib.package)
                and not inspect.isabstract(value)
                and not getattr(value, "_is_protocol", False)
                and lib.is_store(value)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


REDIS_CLIENT: Redis | None = None


async def check_redis_store(lib: Library) -> Verdict:
    """A Redis-backed store class ships in the package, and sessions land in Redis."""
    if lib.is_store is None:
        return na(NO_STORE)
    classes = _store_classes(lib)
    redis_classes = [c for c in classes if "redis" in f"{c.__module__}.{c.__name__}".lower()]
    if not redis_classes:
        names = ", ".join(sorted(f"`{c.__name__}`" for c in classes))
        return no(f"stores: {names}")
    path = ", ".join(f"`{c.__module__}.{c.__name__}`" for c in redis_classes)
    if REDIS_CLIENT is None or not lib.redis_kit:
        return na("Redis server unreachable, so the store could not be exercised.", path)
    prefix = f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}:"
    kit = lib.build(Options(redis=REDIS_CLIENT, prefix=prefix))
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "in-redis")
        data = await read_data(browser)
    keys = [key async for key in REDIS_CLIENT.scan_iter(match=prefix + "*")]
    works = bool(keys) and data is not None and data.get("k") == "in-redis"
    return verdict(works, path)


async def check_py_typed(lib: Library) -> Verdict:
    """The installed package ships ``py.typed`` (PEP 561)."""
    return verdict(importlib.resources.files(lib.package).joinpath("py.typed").is_file())


_WARNING_LINE = re.compile(r"^\S.*:\d+: (\w+(?:Warning|Since\d+)): ", re.MULTILINE)


async def _import_warnings(lib: Library) -> set[str]:
    """Warnings raised while importing the library, in a fresh interpreter."""
    code = "; ".join(f"import {m}" for m in lib.modules)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "always", "-c", code,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    return set(_WARNING_LINE.findall(stderr.decode(errors="replace")))


async def check_no_warnings(lib: Library) -> Verdict:
    """Import, build the app and run login/read/write/end with every warning recorded."""
    seen = await _import_warnings(lib)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kit = lib.build(Options())
        async with Browser(kit.app) as browser:
            await establish(lib, browser, "k", "v")
            await read_data(browser)
            await browser.post("/write/k2/v2")
            await browser.post("/end")
    seen |= {w.category.__name__ for w in caught}
    return verdict(not seen, ", ".join(f"`{name}`" for name in sorted(seen)))


async def check_skip_header(lib: Library) -> Verdict:
    """With the skip-header option, a request carrying it to a session route gets no 500."""
    if lib.middleware is None:
        return na(DEPENDENCY_STYLE)
    if not any("skip" in name for name in inspect.signature(lib.middleware).parameters):
        return na("The library has no skip-header option.")
    kit = lib.build(Options(skip_header="X-No-Session"))
    async with Browser(kit.app) as browser:
        plain = await browser.get("/plain", headers={"X-No-Session": "1"})
        used = await browser.get("/read", headers={"X-No-Session": "1"})
    note = f"session route: {used.status_code}"
    return verdict(plain.status_code == 200 and used.status_code != 500, note)


async def check_only_app_keys(lib: Library) -> Verdict:
    """The next request's session holds exactly the keys the app wrote."""
    if lib.style == "dependency":
        return na(TYPED_MODEL)
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "v")
        data = await read_data(browser) or {}
    extra = sorted(set(data) - {"k"})
    return verdict(
        not extra and "k" in data, "adds " + ", ".join(f"`{k}`" for k in extra) if extra else ""
    )


async def check_quiet_reads(lib: Library) -> Verdict:
    """Reading an existing, unchanged session sends no Set-Cookie (cacheable, no churn)."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "v")
        responses = [await browser.get("/read") for _ in range(3)]
    resent = sum(session_cookie(kit, r) is not None for r in responses)
    return verdict(resent == 0, f"Set-Cookie on {resent}/3 reads" if resent else "")


async def check_end_twice(lib: Library) -> Verdict:
    """Ending a session, then sending its old cookie to the logout route again: no 500."""
    kit = lib.build(Options())
    async with Browser(kit.app) as browser:
        await establish(lib, browser, "k", "v")
        old = dict(browser.cookies)
        await browser.post("/end")
    async with Browser(kit.app, old) as replay:
        again = await replay.post("/end")
    return verdict(again.status_code != 500, f"second logout: {again.status_code}")


async def check_store_outage(lib: Library) -> Verdict:
    """With the Redis store unreachable, a request that needs it gets 503, not 500."""
    if lib.is_store is None:
        return na(NO_STORE)
    if not lib.redis_kit:
        return na("The library has no Redis (network) store whose outage could be tested.")
    dead = Redis.from_url(DEAD_REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        kit = lib.build(Options(redis=dead, prefix=RUN_PREFIX))
        async with Browser(kit.app) as browser:
            response = await establish(lib, browser, "k", "v")
    finally:
        await dead.aclose()
    return verdict(response.status_code == 503, f"answered {response.status_code}")


CHECKS: tuple[tuple[str, Callable[[Library], Awaitable[Verdict]]], ...] = (
    ("Session data kept server-side (not in the cookie)", check_server_side),
    ("Rejects a client-chosen session ID", check_client_chosen_id),
    ("Tampered cookie: no 500, not adopted", check_tampered),
    (f"No store record for {COOKIELESS_READS} cookie-less reads", check_cookieless_reads),
    ("Keeps the app's own Set-Cookie headers", check_own_cookies),
    ("Valid SameSite on the session cookie", check_samesite),
    ("Logout revokes server-side (old cookie gets no data back)", check_logout_revokes),
    ("Ended session's ID is not revived by a later write", check_ended_not_revived),
    (f"Concurrent writes not lost ({CONCURRENT} requests, one client)", check_concurrent_writes),
    (f"Idle session expires server-side (old cookie replayed, {IDLE} s)", check_idle_expiry),
    ("Active session kept alive past the idle timeout (sliding)", check_sliding),
    ("Bounded built-in memory store", check_bounded_store),
    ("Redis store available (and works)", check_redis_store),
    ("Ships type information (`py.typed`)", check_py_typed),
    ("No warnings (import and basic flow)", check_no_warnings),
    ("Skip header on a session route: no 500", check_skip_header),
    ("Session holds only the app's own keys", check_only_app_keys),
    ("Reading a session sends no Set-Cookie", check_quiet_reads),
    ("Logout with an already ended session: no 500", check_end_twice),
    ("Store outage answered with 503", check_store_outage),
)  # fmt: skip


# --- the table -----------------------------------------------------------------------


def header(lib: Library) -> str:
    version = importlib.metadata.version(lib.distribution)
    return f"{lib.column} {version}"


def render(results: list[list[Verdict]], seconds: float) -> str:
    footnotes: dict[str, int] = {}
    lines = [
        "| feature | " + " | ".join(header(lib) for lib in LIBRARIES) + " |",
        "| --- |" + " --- |" * len(LIBRARIES),
    ]
    for (title, _), row in zip(CHECKS, results, strict=True):
        cells = []
        for result in row:
            cell = result.status
            if result.footnote:
                number = footnotes.setdefault(result.footnote, len(footnotes) + 1)
                cell += f"[^{number}]"
            if result.note:
                cell += f" ({result.note})"
            cells.append(cell.replace("|", "\\|"))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"[^{number}]: {text}" for text, number in footnotes.items())
    lines.append("")
    python = ".".join(map(str, sys.version_info[:3]))
    stack = ", ".join(
        f"{d} {importlib.metadata.version(d)}" for d in ("fastapi", "starlette", "pydantic")
    )
    lines.append(
        f"_Checked by `benchmarks/compare_features.py` (Python {python}, {stack}) "
        f"in {seconds:.1f} s._"
    )
    return "\n".join(lines)


async def connect_redis() -> Redis | None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.ping()
    except Exception as exc:  # no Redis: those rows say n/a
        print(f"Redis at {REDIS_URL} unreachable ({exc}); Redis rows are n/a", file=sys.stderr)
        await client.aclose()
        return None
    return client


async def main() -> None:
    global REDIS_CLIENT
    started = time.perf_counter()
    REDIS_CLIENT = await connect_redis()
    try:
        await run_expiry_scenarios(REDIS_CLIENT)
        results: list[list[Verdict]] = []
        for title, check in CHECKS:
            row = []
            for lib in LIBRARIES:
                try:
                    row.append(await check(lib))
                except Exception as exc:  # a crash is a finding, not the end of the run
                    row.append(no(f"check crashed: {type(exc).__name__}: {exc}"[:120]))
                    print(f"{title} / {lib.column}: {exc!r}", file=sys.stderr)
            results.append(row)
    finally:
        if REDIS_CLIENT is not None:
            keys = [key async for key in REDIS_CLIENT.scan_iter(match=RUN_PREFIX + "*")]
            if keys:
                await REDIS_CLIENT.delete(*keys)
            await REDIS_CLIENT.aclose()
    print(render(results, time.perf_counter() - started))


if __name__ == "__main__":
    asyncio.run(main())
