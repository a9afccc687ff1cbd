"""The session dependencies through a real ASGI app: every outcome, expiry and OpenAPI.

No ``from __future__ import annotations`` here: FastAPI must evaluate the ``Annotated``
parameters of routes defined inside functions, whose dependencies are local names.
"""

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Response

from typed_sessions.adapters.dependencies import make_cookie_dependency, make_header_dependency
from typed_sessions.adapters.lifecycle import issue_session, start_session
from typed_sessions.adapters.responses import (
    ErrorMapping,
    SessionFailure,
    default_error_mapping,
)
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Err, Result
from typed_sessions.core.session import Expiry, Session
from typed_sessions.core.signing import Keyring, sign_session_id
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict, StoreUnavailableError

from .conftest import SECRET, FakeClock

pytestmark = pytest.mark.anyio

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))  # step: 3 minutes
SECRET_IN_ERROR = "redis://user:hunter2@10.0.0.7 timed out"

Verify = Callable[[Session[dict[str, Any]]], bool | Awaitable[bool]]


def allow(session: Session[dict[str, Any]]) -> bool:
    return True


class SpyStore:
    """A memory store that counts calls, and fails or conflicts when told to."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
        self.loads = self.saves = self.deletes = 0
        self.fail_loads = self.fail_saves = self.conflict_saves = False
        self.delete_before_save = False  # a logout lands between our load and save

    async def load(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        self.loads += 1
        if self.fail_loads:
            raise StoreUnavailableError(SECRET_IN_ERROR)
        return await self.inner.load(session_id)

    async def save(
        self, session: Session[dict[str, Any]]
    ) -> Result[Session[dict[str, Any]], Conflict]:
        self.saves += 1
        if self.fail_saves:
            raise StoreUnavailableError(SECRET_IN_ERROR)
        if self.conflict_saves:
            return Err(Conflict(expected=session.version, found=session.version + 1))
        if self.delete_before_save:
            await self.inner.delete(session.id)
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        self.deletes += 1
        await self.inner.delete(session_id)


@dataclass
class Env:
    """An app over a spy store, the clock its dependencies read, and a client."""

    app: FastAPI
    store: SpyStore
    clock: FakeClock
    keys: Keyring
    client: httpx.AsyncClient
    failures: list[SessionFailure]

    async def login(self, **data: Any) -> tuple[SessionId, str]:
        """Start a session through the app; return its ID and its token."""
        response = await self.client.post("/login", json=data or {"name": "ada"})
        assert response.status_code == 200
        token = self.client.cookies["__Host-session"]
        self.client.cookies.clear()
        return SessionId(response.json()), token

    async def get(self, path: str, token: str | bytes | None = None) -> httpx.Response:
        """GET ``path`` with exactly ``token`` as the session cookie, or no cookie."""
        raw = token.encode() if isinstance(token, str) else token
        headers = {} if raw is None else {b"Cookie": b"__Host-session=" + raw}
        return await self.client.get(path, headers=headers)

    async def stored(self, session_id: SessionId) -> Session[dict[str, Any]]:
        session = await self.store.inner.load(session_id)
        assert session is not None
        return session


def build_app(
    store: SpyStore,
    keys: Keyring,
    clock: FakeClock,
    on_error: ErrorMapping,
    verify: Verify = allow,
) -> FastAPI:
    current = make_cookie_dependency(
        store, verify, keys=keys, expiry=EXPIRY, clock=clock, on_error=on_error
    )
    maybe = make_cookie_dependency(
        store, verify, keys=keys, expiry=EXPIRY, clock=clock, on_error=on_error, auto_error=False
    )
    by_header = make_header_dependency(
        store, verify, keys=keys, expiry=EXPIRY, clock=clock, on_error=on_error
    )
    app = FastAPI()

    @app.post("/login")
    async def login(data: dict[str, Any], response: Response) -> str:
        session = await start_session(response, store, data, keys=keys, expiry=EXPIRY, clock=clock)
        return session.id

    @app.post("/token")
    async def token(data: dict[str, Any]) -> str:
        issued = await issue_session(store, data, keys=keys, expiry=EXPIRY, clock=clock)
        return issued.token

    @app.get("/me")
    async def me(session: Annotated[Session[dict[str, Any]], Depends(current)]) -> Any:
        return session.data

    @app.get("/maybe")
    async def maybe_me(
        session: Annotated[Session[dict[str, Any]] | None, Depends(maybe)],
    ) -> Any:
        return None if session is None else session.data

    @app.get("/header/me")
    async def header_me(session: Annotated[Session[dict[str, Any]], Depends(by_header)]) -> Any:
        return session.data

    @app.get("/version")
    async def version(session: Annotated[Session[dict[str, Any]], Depends(current)]) -> int:
        return session.version

    @app.get("/public")
    async def public() -> str:
        return "hello"

    return app


@asynccontextmanager
async def make_env(
    keys: Keyring,
    *,
    clock: FakeClock | None = None,
    store_clock: FakeClock | None = None,
    verify: Verify = allow,
    on_error: ErrorMapping | None = None,
) -> AsyncGenerator[Env, None]:
    """An Env; ``store_clock`` lets the store's notion of time differ from the app's."""
    clock = FakeClock() if clock is None else clock
    store = SpyStore(clock if store_clock is None else store_clock)
    failures: list[SessionFailure] = []

    def recording(failure: SessionFailure) -> Exception:
        failures.append(failure)
        return default_error_mapping(failure)

    app = build_app(store, keys, clock, recording if on_error is None else on_error, verify)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield Env(app, store, clock, keys, client, failures)


@pytest.fixture
async def env(keyring: Keyring) -> AsyncIterator[Env]:
    async with make_env(keyring) as made:
        yield made


def snapshot(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    return response.status_code, response.content, sorted(response.headers.multi_items())


UNAUTHORIZED = (
    401,
    b'{"detail":"Not authenticated"}',
    [
        ("cache-control", "private, no-store"),  # like every answer that read the cookie
        ("content-length", "30"),
        ("content-type", "application/json"),
        ("vary", "Cookie"),
        ("www-authenticate", "APIKey"),
    ],
)


# --- 401: every cause looks the same, and bad signatures never reach the store ---------


async def test_a_valid_cookie_gives_the_session(env: Env) -> None:
    _, token = await env.login(name="ada")
    response = await env.get("/me", token)
    assert response.status_code == 200
    assert response.json() == {"name": "ada"}
    assert env.failures == []


def _forged(token: str) -> str:
    return token[:-1] + ("0" if token[-1] != "0" else "1")


async def test_token_failures_are_one_identical_401_without_store_access(env: Env) -> None:
    session_id, token = await env.login()
    other_keys = Keyring.from_secrets("another-application-secret-32-bytes-long")
    other_purpose = Keyring.from_secrets(SECRET, purpose="csrf")
    now = env.clock()
    cases: dict[str, str | bytes | None] = {
        "missing": None,
        "empty": "",
        "malformed": "not-a-token",
        "non-ascii": "é" * len(token),
        "binary": bytes(range(128, 255)),
        "huge": "A" * 8000,
        "truncated": token[:-1],
        "too long": token + "0",
        "forged tag": _forged(token),
        "forged id": token[:20] + new_session_id() + token[63:],
        "other secret": sign_session_id(session_id, other_keys, now=now),
        "other purpose": sign_session_id(session_id, other_purpose, now=now),
        "expired token": sign_session_id(session_id, env.keys, now=now - EXPIRY.absolute * 2),
        "future token": sign_session_id(session_id, env.keys, now=now + timedelta(hours=1)),
    }
    for cause, bad in cases.items():
        response = await env.get("/me", bad)
        assert snapshot(response) == UNAUTHORIZED, cause
    assert env.store.loads == 0
    assert [f.reason for f in env.failures] == [
        "missing",
        "missing",
        "malformed",
        "malformed",
        "malformed",
        "malformed",
        "malformed",
        "malformed",
        "bad_signature",
        "bad_signature",
        "unknown_key",
        "unknown_key",
        "token_expired",
        "token_future",
    ]
    assert {f.kind for f in env.failures} == {"unauthenticated"}


async def test_a_cookie_header_without_our_cookie_is_missing(env: Env) -> None:
    response = await env.client.get("/me", headers={"Cookie": "theme=dark; lang=en"})
    assert snapshot(response) == UNAUTHORIZED
    assert env.store.loads == 0


async def test_an_unknown_session_is_the_same_401(env: Env) -> None:
    token = sign_session_id(new_session_id(), env.keys, now=env.clock())
    assert snapshot(await env.get("/me", token)) == UNAUTHORIZED
    assert env.store.loads == 1
    assert [f.reason for f in env.failures] == ["unknown_session"]


async def test_idle_expiry_is_enforced_by_the_app_whatever_the_store_says(
    keyring: Keyring,
) -> None:
    # The store's clock stands still, so it would still serve the record.
    async with make_env(keyring, store_clock=FakeClock()) as env:
        _, token = await env.login()
        env.clock.advance(EXPIRY.idle - timedelta(seconds=1))
        assert (await env.get("/me", token)).status_code == 200  # slides the idle deadline
        env.clock.advance(EXPIRY.idle - timedelta(seconds=1))
        assert (await env.get("/me", token)).status_code == 200
        env.clock.advance(EXPIRY.idle)
        assert snapshot(await env.get("/me", token)) == UNAUTHORIZED
        assert [f.reason for f in env.failures] == ["session_expired"]


async def test_absolute_expiry_is_enforced_even_for_an_active_session(keyring: Keyring) -> None:
    async with make_env(keyring, store_clock=FakeClock()) as env:
        session_id, _ = await env.login()
        created = env.clock()
        while env.clock() < created + EXPIRY.absolute - timedelta(minutes=10):
            env.clock.advance(timedelta(minutes=10))
            # A token signed later than the session began, so only the session is too old.
            fresh = sign_session_id(session_id, env.keys, now=env.clock())
            assert (await env.get("/me", fresh)).status_code == 200
        assert (await env.stored(session_id)).expires_at == created + EXPIRY.absolute
        env.clock.advance(timedelta(minutes=10))
        fresh = sign_session_id(session_id, env.keys, now=env.clock())
        assert snapshot(await env.get("/me", fresh)) == UNAUTHORIZED
        assert [f.reason for f in env.failures] == ["session_expired"]


async def test_a_token_cannot_outlive_the_absolute_lifetime(env: Env) -> None:
    _, token = await env.login()
    # Even were the record kept alive, the token itself expires with the lifetime.
    env.clock.advance(EXPIRY.absolute + timedelta(seconds=1))
    assert snapshot(await env.get("/me", token)) == UNAUTHORIZED
    assert [f.reason for f in env.failures] == ["token_expired"]
    assert env.store.loads == 0


async def test_the_optional_dependency_gives_none_for_every_401_cause(env: Env) -> None:
    _, token = await env.login(name="ada")
    unknown = sign_session_id(new_session_id(), env.keys, now=env.clock())
    for bad in [None, "", "junk", _forged(token), unknown]:
        response = await env.get("/maybe", bad)
        assert response.status_code == 200
        assert response.json() is None
    assert (await env.get("/maybe", token)).json() == {"name": "ada"}
    assert env.failures == []  # nothing to map: no error is raised


# --- 403 and 503 ---------------------------------------------------------------------------


def refuse_non_admins(session: Session[dict[str, Any]]) -> bool:
    return session.data.get("admin") is True


async def refuse_non_admins_async(session: Session[dict[str, Any]]) -> bool:
    return session.data.get("admin") is True


@pytest.mark.parametrize("verify", [refuse_non_admins, refuse_non_admins_async])
async def test_verify_fn_refusing_gives_403(keyring: Keyring, verify: Verify) -> None:
    async with make_env(keyring, verify=verify) as env:
        _, user = await env.login(name="bob")
        _, admin = await env.login(name="root", admin=True)
        for path in ["/me", "/maybe", "/header/me"]:
            token_for: Callable[[str], dict[str, str]] | None = (
                (lambda t: {"X-Session": t}) if path.startswith("/header") else None
            )
            for token, status in [(user, 403), (admin, 200)]:
                if token_for is None:
                    response = await env.get(path, token)
                else:
                    response = await env.client.get(path, headers=token_for(token))
                assert response.status_code == status, path
        refused = await env.get("/me", user)
        assert refused.json() == {"detail": "Forbidden"}
        assert "www-authenticate" not in refused.headers
        assert {f.reason for f in env.failures} == {"refused"}


async def test_verify_fn_must_return_exactly_true(keyring: Keyring) -> None:
    def sloppy(session: Session[dict[str, Any]]) -> bool:
        return session.data  # type: ignore[return-value]  # the mistake under test

    async with make_env(keyring, verify=sloppy) as env:
        _, token = await env.login(name="ada")
        assert (await env.get("/me", token)).status_code == 403


async def test_a_refused_session_is_not_slid(keyring: Keyring) -> None:
    async with make_env(keyring, verify=refuse_non_admins) as env:
        _, token = await env.login(name="bob")
        env.clock.advance(EXPIRY.idle / 2)
        saves = env.store.saves
        assert (await env.get("/me", token)).status_code == 403
        assert env.store.saves == saves


async def test_a_failing_store_gives_a_generic_503(env: Env) -> None:
    _, token = await env.login()
    env.store.fail_loads = True
    for path in ["/me", "/maybe"]:
        response = await env.get(path, token)
        assert response.status_code == 503
        assert response.json() == {"detail": "Service unavailable"}
        assert "hunter2" not in response.text
    assert env.failures[0].kind == "unavailable"
    assert isinstance(env.failures[0].error, StoreUnavailableError)
    # Without a verified token the store is not asked, so there is nothing to fail.
    assert (await env.get("/me", "junk")).status_code == 401


async def test_a_failing_touch_save_gives_503(env: Env) -> None:
    _, token = await env.login()
    env.clock.advance(EXPIRY.idle / 2)
    env.store.fail_saves = True
    response = await env.get("/me", token)
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable"}


# --- sliding expiry ------------------------------------------------------------------------


async def test_touch_is_throttled_and_capped_by_the_absolute_lifetime(env: Env) -> None:
    session_id, token = await env.login()
    created = env.clock()
    assert env.store.saves == 1

    env.clock.advance(timedelta(minutes=1))
    assert (await env.get("/version", token)).json() == 1
    env.clock.advance(timedelta(minutes=1))
    assert (await env.get("/version", token)).json() == 1
    assert env.store.saves == 1  # within the 3-minute step: no write

    env.clock.advance(timedelta(minutes=2))  # 4 minutes after the last save
    assert (await env.get("/version", token)).json() == 2  # the handler gets the saved record
    assert env.store.saves == 2
    touched = await env.stored(session_id)
    assert touched.expires_at == env.clock() + EXPIRY.idle
    assert touched.last_active == env.clock()

    env.clock.advance(timedelta(minutes=1))
    assert (await env.get("/me", token)).status_code == 200
    assert env.store.saves == 2

    # Near the end, the deadline stops at the absolute one and never moves past it.
    while env.clock() < created + EXPIRY.absolute - timedelta(minutes=20):
        env.clock.advance(timedelta(minutes=20))
        assert (await env.get("/me", token)).status_code == 200
    assert (await env.stored(session_id)).expires_at == created + EXPIRY.absolute
    saves = env.store.saves
    env.clock.advance(timedelta(minutes=10))
    assert (await env.get("/me", token)).status_code == 200
    assert env.store.saves == saves
    env.clock.advance(timedelta(minutes=10))
    assert (await env.get("/me", token)).status_code == 401


async def test_a_conflict_on_the_touch_save_is_harmless(env: Env) -> None:
    _, token = await env.login(name="ada")
    env.clock.advance(EXPIRY.idle / 2)
    env.store.conflict_saves = True
    response = await env.get("/version", token)
    assert response.status_code == 200
    assert response.json() == 1  # the record as loaded: another writer won
    assert env.store.saves == 2


async def test_a_session_ended_before_the_touch_save_is_not_admitted(env: Env) -> None:
    """A logout deletes the record between the dependency's load and its touch: the
    request racing it gets 401, not the session that was just ended."""
    _, token = await env.login(name="ada")
    env.clock.advance(EXPIRY.idle / 2)
    env.store.delete_before_save = True
    response = await env.get("/version", token)
    assert response.status_code == 401
    assert len(env.store.inner) == 0  # and the ended session was not written back


# --- header dependency ---------------------------------------------------------------------


async def test_header_dependency(env: Env) -> None:
    issued = await env.client.post("/token", json={"name": "api"})
    assert "set-cookie" not in issued.headers
    token = issued.json()
    ok = await env.client.get("/header/me", headers={"X-Session": token})
    assert ok.status_code == 200
    assert ok.json() == {"name": "api"}
    by_header = (
        *UNAUTHORIZED[:2],
        [h if h[0] != "vary" else ("vary", "X-Session") for h in UNAUTHORIZED[2]],
    )
    assert snapshot(await env.client.get("/header/me")) == by_header
    forged = await env.client.get("/header/me", headers={"X-Session": _forged(token)})
    assert snapshot(forged) == by_header
    # The cookie dependency does not read the header, nor the other way round.
    assert (await env.client.get("/me", headers={"X-Session": token})).status_code == 401
    cookie = await env.client.get("/header/me", headers={"Cookie": f"__Host-session={token}"})
    assert cookie.status_code == 401


def test_header_names_are_checked(keyring: Keyring) -> None:
    store: MemoryStore[int] = MemoryStore(int)
    for bad in ["", "X Session", "X-Session:", "Ünïcode", "a\r\nb"]:
        with pytest.raises(ValueError, match="invalid header name"):
            make_header_dependency(store, lambda s: True, keys=keyring, header=bad)


# --- a custom error mapping ----------------------------------------------------------------


class LoginRequired(Exception):
    pass


async def test_a_custom_error_mapping(keyring: Keyring) -> None:
    from fastapi import HTTPException, Request
    from fastapi.responses import RedirectResponse

    def to_login_page(failure: SessionFailure) -> Exception:
        if failure.kind == "unauthenticated":
            return LoginRequired()
        if failure.kind == "forbidden":
            return HTTPException(404, "Not Found")  # hide what exists
        return HTTPException(503, "Try again", headers={"Retry-After": "5"})

    async with make_env(keyring, verify=refuse_non_admins, on_error=to_login_page) as env:

        async def redirect(request: Request, exc: Exception) -> RedirectResponse:
            return RedirectResponse("/login-page", status_code=303)

        env.app.add_exception_handler(LoginRequired, redirect)
        response = await env.get("/me", "junk")
        assert response.status_code == 303
        assert response.headers["location"] == "/login-page"
        _, user = await env.login(name="bob")
        assert (await env.get("/me", user)).status_code == 404
        env.store.fail_loads = True
        unavailable = await env.get("/me", user)
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "5"


# --- OpenAPI -------------------------------------------------------------------------------


async def test_openapi_security_schemes_and_per_route_security(env: Env) -> None:
    schema = (await env.client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {"type": "apiKey", "in": "cookie", "name": "__Host-session"},
        "SessionHeader": {"type": "apiKey", "in": "header", "name": "X-Session"},
    }
    paths = schema["paths"]
    for path in ["/me", "/maybe", "/version"]:
        assert paths[path]["get"]["security"] == [{"SessionCookie": []}], path
    assert paths["/header/me"]["get"]["security"] == [{"SessionHeader": []}]
    for path, method in [("/public", "get"), ("/login", "post"), ("/token", "post")]:
        assert "security" not in paths[path][method], path
    # The dependency's own request parameter is not a documented parameter.
    assert "parameters" not in paths["/me"]["get"]


def test_openapi_names_and_descriptions_can_be_chosen(keyring: Keyring) -> None:
    from typed_sessions.core.cookies import CookieSettings

    store: MemoryStore[int] = MemoryStore(int)
    admin = make_cookie_dependency(
        store,
        allow_int,
        keys=keyring,
        cookie=CookieSettings(name="__Host-admin"),
        scheme_name="AdminSession",
        description="The admin console's session.",
    )
    api = make_header_dependency(store, allow_int, keys=keyring, header="X-Api-Session")
    app = FastAPI()

    @app.get("/admin", dependencies=[Depends(admin)])
    async def admin_page() -> None: ...

    @app.get("/api")
    async def api_call(session: Annotated[Session[int], Depends(api)]) -> int:
        return session.data

    schema = app.openapi()
    assert schema["components"]["securitySchemes"] == {
        "AdminSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": "__Host-admin",
            "description": "The admin console's session.",
        },
        "SessionHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Session"},
    }
    assert schema["paths"]["/admin"]["get"]["security"] == [{"AdminSession": []}]
    assert schema["paths"]["/api"]["get"]["security"] == [{"SessionHeader": []}]


def allow_int(session: Session[int]) -> bool:
    return True


async def test_the_dependency_runs_once_per_request(env: Env) -> None:
    """Listed in ``dependencies=[...]`` and as a parameter, FastAPI caches one result."""
    current = make_cookie_dependency(
        env.store, allow, keys=env.keys, expiry=EXPIRY, clock=env.clock
    )

    @env.app.get("/twice", dependencies=[Depends(current)])
    async def twice(session: Annotated[Session[dict[str, Any]], Depends(current)]) -> str:
        return session.id

    session_id, token = await env.login()
    loads = env.store.loads
    response = await env.get("/twice", token)
    assert response.json() == session_id
    assert env.store.loads == loads + 1


async def test_a_stored_record_is_the_handlers_own_copy(env: Env) -> None:
    session_id, token = await env.login(name="ada", tags=["a"])
    assert (await env.get("/me", token)).json() == {"name": "ada", "tags": ["a"]}
    record = await env.stored(session_id)
    record.data["tags"].append("mutated")
    assert (await env.stored(session_id)).data == {"name": "ada", "tags": ["a"]}


async def ada_app(keyring: Keyring, clock: FakeClock, header: str | None) -> tuple[FastAPI, str]:
    """``/me`` answers the name in the session of the cookie dependency (or, given a
    ``header``, of the header dependency), and a token of Ada's session."""
    store = MemoryStore(dict[str, Any], clock=clock)
    current = (
        make_cookie_dependency(store, allow, keys=keyring, clock=clock)
        if header is None
        else make_header_dependency(store, allow, keys=keyring, header=header, clock=clock)
    )
    issued = await issue_session(store, {"name": "ada"}, keys=keyring, clock=clock)
    app = FastAPI()

    @app.get("/me")
    async def me(session: Annotated[Session[dict[str, Any]], Depends(current)]) -> str:
        return str(session.data["name"])

    return app, issued.token


async def test_cookies_split_over_several_header_fields(keyring: Keyring, clock: FakeClock) -> None:
    """HTTP/2 clients may send one Cookie field per cookie; the order must not matter."""
    app, token = await ada_app(keyring, clock, None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for fields in (
            [("cookie", "theme=dark"), ("cookie", f"__Host-session={token}")],
            [("cookie", f"__Host-session={token}"), ("cookie", "theme=dark")],
        ):
            response = await client.get("/me", headers=httpx.Headers(fields))
            assert response.json() == "ada", fields


async def test_a_header_token_is_read_from_the_first_field_of_that_name(
    keyring: Keyring, clock: FakeClock
) -> None:
    """The header dependency reads the request's raw headers: the name in any case, the
    first field when a client sends two (as Starlette's ``Headers.get``)."""
    app, token = await ada_app(keyring, clock, "X-Api-Session")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        good = await client.get("/me", headers={"x-API-session": token})
        assert good.json() == "ada"
        assert good.headers["vary"] == "X-Api-Session"
        first = httpx.Headers([("x-api-session", token), ("x-api-session", "junk")])
        assert (await client.get("/me", headers=first)).json() == "ada"
        second = httpx.Headers([("x-api-session", "junk"), ("x-api-session", token)])
        assert (await client.get("/me", headers=second)).status_code == 401
        assert (await client.get("/me")).status_code == 401
