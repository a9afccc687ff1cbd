"""Starting, rotating, updating and ending sessions from handlers, through a real ASGI app.

No ``from __future__ import annotations``: routes are defined inside a function and
FastAPI must evaluate their ``Annotated`` parameters, which name local dependencies.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from starlette.requests import Request

from typed_sessions.adapters.dependencies import make_cookie_dependency
from typed_sessions.adapters.lifecycle import (
    end_session,
    issue_session,
    rotate_session,
    start_session,
)
from typed_sessions.adapters.responses import store_error_handler
from typed_sessions.core.clock import utc_now
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Expiry, Session, new_session, replace_data
from typed_sessions.core.signing import Keyring, verify_session_token
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict, StoreError, StoreUnavailableError

from .conftest import FakeClock

pytestmark = pytest.mark.anyio

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
COOKIE = CookieSettings(
    name="sid", path="/app", domain="example.com", max_age=3600, samesite="strict"
)
ATTRIBUTES = "; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=strict"


class Cart(BaseModel):
    user: str | None = None
    items: list[str] = []


class FlakyStore:
    """A memory store whose next operations fail when told to."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner: MemoryStore[Cart] = MemoryStore(Cart, clock=clock)
        self.fail_save = self.fail_delete = False

    async def load(self, session_id: SessionId) -> Session[Cart] | None:
        return await self.inner.load(session_id)

    async def save(self, session: Session[Cart]) -> Result[Session[Cart], Conflict]:
        if self.fail_save:
            raise StoreUnavailableError("connection refused")
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        if self.fail_delete:
            raise StoreUnavailableError("connection refused")
        await self.inner.delete(session_id)


@dataclass
class Env:
    store: FlakyStore
    clock: FakeClock
    keys: Keyring
    client: httpx.AsyncClient

    def token(self) -> str | None:
        return self.client.cookies.get("sid")

    def sessions(self) -> int:
        return len(self.store.inner)


def build_app(store: FlakyStore, keys: Keyring, clock: FakeClock) -> FastAPI:
    current = make_cookie_dependency(
        store, lambda s: True, keys=keys, cookie=COOKIE, expiry=EXPIRY, clock=clock
    )
    maybe = make_cookie_dependency(
        store,
        lambda s: True,
        keys=keys,
        cookie=COOKIE,
        expiry=EXPIRY,
        clock=clock,
        auto_error=False,
    )
    app = FastAPI()
    app.add_exception_handler(StoreError, store_error_handler)

    @app.post("/app/visit")
    async def visit(response: Response) -> str:
        response.set_cookie("theme", "dark")
        session = await start_session(
            response, store, Cart(), keys=keys, cookie=COOKIE, expiry=EXPIRY, clock=clock
        )
        return session.id

    @app.post("/app/redirect")
    async def redirect() -> RedirectResponse:
        response = RedirectResponse("/app/cart", status_code=303)
        await start_session(
            response, store, Cart(), keys=keys, cookie=COOKIE, expiry=EXPIRY, clock=clock
        )
        return response

    @app.get("/app/html", response_class=HTMLResponse)
    async def html() -> HTMLResponse:
        response = HTMLResponse("<p>welcome</p>")
        await start_session(
            response, store, Cart(), keys=keys, cookie=COOKIE, expiry=EXPIRY, clock=clock
        )
        return response

    @app.get("/app/cart")
    async def cart(session: Annotated[Session[Cart], Depends(current)]) -> Cart:
        return session.data

    @app.post("/app/cart/{item}")
    async def add(
        item: str, session: Annotated[Session[Cart], Depends(current)], response: Response
    ) -> Cart:
        data = session.data.model_copy(update={"items": [*session.data.items, item]})
        match await store.save(replace_data(session, data, now=clock())):
            case Ok(saved):
                return saved.data
            case Err(Conflict()):
                response.status_code = 409
                return session.data

    @app.post("/app/login/{user}")
    async def login(
        user: str, session: Annotated[Session[Cart], Depends(current)], response: Response
    ) -> str:
        rotated = await rotate_session(
            response,
            store,
            session,
            keys=keys,
            cookie=COOKIE,
            expiry=EXPIRY,
            clock=clock,
            update=lambda cart: cart.model_copy(update={"user": user}),
        )
        if rotated is None:  # logged out elsewhere meanwhile
            raise HTTPException(401)
        return rotated.id

    @app.post("/app/logout")
    async def logout(
        session: Annotated[Session[Cart] | None, Depends(maybe)], response: Response
    ) -> str:
        await end_session(response, store, session, cookie=COOKIE)
        return "bye"

    @app.post("/app/logout-redirect")
    async def logout_redirect(
        session: Annotated[Session[Cart] | None, Depends(maybe)],
    ) -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        await end_session(response, store, None if session is None else session.id, cookie=COOKIE)
        return response

    return app


@pytest.fixture
async def env(keyring: Keyring, clock: FakeClock) -> AsyncIterator[Env]:
    store = FlakyStore(clock)
    transport = httpx.ASGITransport(app=build_app(store, keyring, clock))
    async with httpx.AsyncClient(transport=transport, base_url="https://example.com") as client:
        yield Env(store, clock, keyring, client)


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


async def test_start_session_sets_a_secure_cookie_and_no_store(env: Env) -> None:
    response = await env.client.post("/app/visit")
    assert response.status_code == 200
    session_id = response.json()
    theme, session_cookie = set_cookies(response)
    assert theme.startswith("theme=dark")  # the handler's own cookie is kept
    token = env.token()
    assert token is not None
    assert session_cookie == f"sid={token}; Max-Age=3600{ATTRIBUTES}"
    assert response.headers["cache-control"] == "no-store"
    verified = verify_session_token(token, env.keys, now=env.clock())
    assert verified == Ok(session_id)
    stored = await env.store.inner.load(session_id)
    assert stored is not None
    assert stored.version == 1
    assert stored.expires_at == env.clock() + EXPIRY.idle
    assert (await env.client.get("/app/cart")).json() == {"user": None, "items": []}


@pytest.mark.parametrize(
    ("method", "path", "status"), [("POST", "/app/redirect", 303), ("GET", "/app/html", 200)]
)
async def test_start_session_on_a_response_the_handler_returns(
    env: Env, method: str, path: str, status: int
) -> None:
    response = await env.client.request(method, path)
    assert response.status_code == status
    [session_cookie] = set_cookies(response)
    assert session_cookie.startswith("sid=")
    assert session_cookie.endswith(ATTRIBUTES)
    assert response.headers["cache-control"] == "no-store"
    assert (await env.client.get("/app/cart")).status_code == 200


async def test_updating_data_is_a_save_of_a_new_record(env: Env) -> None:
    await env.client.post("/app/visit")
    assert (await env.client.post("/app/cart/apple")).json()["items"] == ["apple"]
    assert (await env.client.post("/app/cart/pear")).json()["items"] == ["apple", "pear"]
    assert (await env.client.get("/app/cart")).json()["items"] == ["apple", "pear"]


async def test_rotate_session_moves_the_data_to_a_new_id(env: Env) -> None:
    first = (await env.client.post("/app/visit")).json()
    started = env.clock()
    old_token = env.token()
    await env.client.post("/app/cart/apple")
    env.clock.advance(timedelta(minutes=20))
    response = await env.client.post("/app/login/ada")
    assert response.status_code == 200
    second = response.json()
    assert second != first
    new_token = env.token()
    assert new_token is not None
    assert new_token != old_token
    assert set_cookies(response) == [f"sid={new_token}; Max-Age=3600{ATTRIBUTES}"]
    assert response.headers["cache-control"] == "no-store"
    assert env.sessions() == 1
    assert await env.store.inner.load(first) is None
    # The new session keeps the data and the old one's lifetime (not a fresh one).
    rotated = await env.store.inner.load(second)
    assert rotated is not None
    assert rotated.data == Cart(user="ada", items=["apple"])
    assert rotated.created_at == started
    assert rotated.expires_at <= started + EXPIRY.absolute

    cart = await env.client.get("/app/cart")
    assert cart.json() == {"user": "ada", "items": ["apple"]}
    env.client.cookies.clear()
    replayed = await env.client.get("/app/cart", headers={"Cookie": f"sid={old_token}"})
    assert replayed.status_code == 401


async def test_end_session_deletes_and_clears_with_the_same_attributes(env: Env) -> None:
    session_id = (await env.client.post("/app/visit")).json()
    old_token = env.token()
    response = await env.client.post("/app/logout")
    assert response.status_code == 200
    assert set_cookies(response) == [
        f'sid=""; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{ATTRIBUTES}'
    ]
    assert response.headers["cache-control"] == "no-store"
    assert env.token() is None
    assert await env.store.inner.load(session_id) is None
    # Ending again, with no cookie or with the stale one, is fine and clears again.
    assert (await env.client.post("/app/logout")).status_code == 200
    again = await env.client.post("/app/logout", headers={"Cookie": f"sid={old_token}"})
    assert again.status_code == 200
    assert len(set_cookies(again)) == 1
    replayed = await env.client.get("/app/cart", headers={"Cookie": f"sid={old_token}"})
    assert replayed.status_code == 401


async def test_end_session_on_a_returned_redirect(env: Env) -> None:
    session_id = (await env.client.post("/app/visit")).json()
    response = await env.client.post("/app/logout-redirect")
    assert response.status_code == 303
    [cleared] = set_cookies(response)
    assert cleared.startswith('sid=""; Max-Age=0')
    assert response.headers["cache-control"] == "no-store"
    assert await env.store.inner.load(session_id) is None


async def test_store_failures_answer_503_and_lose_nothing(env: Env) -> None:
    env.store.fail_save = True
    failed = await env.client.post("/app/visit")
    assert failed.status_code == 503
    assert failed.json() == {"detail": "Service unavailable"}
    assert "set-cookie" not in failed.headers
    env.store.fail_save = False

    session_id = (await env.client.post("/app/visit")).json()
    token = env.token()
    env.store.fail_save = True
    assert (await env.client.post("/app/login/ada")).status_code == 503
    assert env.token() == token  # no new cookie: the old session still works
    assert await env.store.inner.load(session_id) is not None
    env.store.fail_save = False

    env.store.fail_delete = True
    assert (await env.client.post("/app/logout")).status_code == 503
    assert env.token() == token  # not cleared: the client may retry
    env.store.fail_delete = False
    assert (await env.client.post("/app/logout")).status_code == 200


async def test_issue_session_gives_a_token_without_a_cookie(keyring: Keyring) -> None:
    store: MemoryStore[Cart] = MemoryStore(Cart)
    issued = await issue_session(store, Cart(user="api"), keys=keyring, expiry=EXPIRY)
    assert verify_session_token(issued.token, keyring, now=utc_now()) == Ok(issued.session.id)
    assert issued.session.version == 1
    assert await store.load(issued.session.id) == issued.session


class CollidingStore(FlakyStore):
    async def save(self, session: Session[Cart]) -> Result[Session[Cart], Conflict]:
        return Err(Conflict(expected=session.version, found=1))


async def test_a_new_id_that_collides_is_a_store_error(keyring: Keyring, clock: FakeClock) -> None:
    with pytest.raises(StoreError, match="freshly generated"):
        await issue_session(CollidingStore(clock), Cart(), keys=keyring)
    with pytest.raises(StoreError):
        await start_session(Response(), CollidingStore(clock), Cart(), keys=keyring)


async def test_end_session_accepts_a_record_an_id_or_none(keyring: Keyring) -> None:
    store: MemoryStore[Cart] = MemoryStore(Cart)
    for value in ("record", "id", None):
        session = new_session(Cart(), EXPIRY, now=utc_now())
        assert isinstance(await store.save(session), Ok)
        response = Response()
        target = session if value == "record" else session.id if value == "id" else None
        await end_session(response, store, target)
        assert response.headers["set-cookie"].startswith('__Host-session=""; Max-Age=0')
        assert (await store.load(session.id) is None) == (value is not None)


async def test_rotate_session_refuses_zero_attempts_before_writing(keyring: Keyring) -> None:
    store: MemoryStore[Cart] = MemoryStore(Cart)
    issued = await issue_session(store, Cart(user="ada"), keys=keyring, expiry=EXPIRY)
    response = Response()
    with pytest.raises(ValueError, match="attempts"):
        await rotate_session(response, store, issued.session, keys=keyring, attempts=0)
    assert len(store) == 1
    assert "set-cookie" not in response.headers


async def test_rotating_never_extends_the_absolute_lifetime(env: Env) -> None:
    """A route that rotates on every use cannot keep a session (or a stolen cookie) alive
    past the absolute deadline counted from its start."""
    await env.client.post("/app/visit")
    started = env.clock()
    step = EXPIRY.idle / 2
    while env.clock() + step < started + EXPIRY.absolute:
        env.clock.advance(step)
        assert (await env.client.post("/app/login/ada")).status_code == 200
    env.clock.advance(step)
    assert (await env.client.get("/app/cart")).status_code == 401


@pytest.mark.parametrize("how", ["rotate", "reissue", "reauthenticate"])
async def test_a_sign_in_that_moves_a_visitors_session_records_its_device(how: str) -> None:
    """Found by an audit: ``rotate(..., signed_in=user)``, the sign-in of a visitor who
    already has a session, took no request: "your sessions" showed no device for it,
    where ``start(..., request=request)`` records one."""
    store: MemoryStore[dict[str, str]] = MemoryStore(dict[str, str])
    current = make_cookie_dependency(store, lambda s: True, keys=Keyring.from_secrets("s" * 40))
    request = Request(
        {"type": "http", "headers": [(b"user-agent", b"Firefox/130")], "client": ("1.2.3.4", 5)}
    )
    saved = await store.save(new_session({}, Expiry(), now=utc_now(), subject="ada"))
    assert isinstance(saved, Ok)
    if how == "rotate":
        moved = await current.rotate(Response(), saved.value, signed_in="ada", request=request)
    elif how == "reissue":
        issued = await current.reissue(saved.value, signed_in="ada", request=request)
        moved = None if issued is None else issued.session
    else:
        moved = await current.reauthenticate(Response(), saved.value, request=request)
    assert moved is not None
    assert moved.device is not None
    assert moved.device.user_agent == "Firefox/130"
    (listed,) = await store.list_subject("ada")
    assert listed.device == moved.device
