"""The fastapi-sessions pieces the shim's race tests share: the cart, its verifier and
cookie, the seed page's app, an ASGI client, a real uvicorn server, and a fresh record of
handed-out sessions."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Response
from pydantic import BaseModel

from typed_sessions import utc_now
from typed_sessions.compat.fastapi_sessions import (
    CookieParameters,
    InMemoryBackend,
    SessionCookie,
    SessionVerifier,
    StoreBackend,
)
from typed_sessions.compat.fastapi_sessions.backends.implementations.handed_out import (
    _HANDED_OUT,  # pyright: ignore[reportPrivateUsage]
)

from .conftest import SECRET


@pytest.fixture(autouse=True)
async def no_earlier_request() -> None:
    """anyio runs a test in the context its fixtures ran in, shared across tests; a request
    served through ``ASGITransport`` runs in that context and leaves its record of handed-out
    sessions there. A test importing this begins as a fresh server task would: with none."""
    _HANDED_OUT.set(None)


class Cart(BaseModel):
    items: list[str]


class CartVerifier(SessionVerifier[UUID, Cart]):
    def __init__(self, backend: StoreBackend[UUID, Cart]) -> None:
        self._backend = backend

    @property
    def identifier(self) -> str:
        return "carts"

    @property
    def backend(self) -> StoreBackend[UUID, Cart]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return True

    @property
    def auth_http_exception(self) -> HTTPException:
        return HTTPException(status_code=403, detail="invalid session")

    def verify_session(self, model: Cart) -> bool:
        return True


def cart_cookie(clock: Any = utc_now) -> SessionCookie:
    return SessionCookie(
        cookie_name="cart", identifier="carts", secret_key=SECRET,
        cookie_params=CookieParameters(), auto_error=True, clock=clock,
    )  # fmt: skip


def client_for(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@asynccontextmanager
async def serving(app: Any) -> AsyncGenerator[str, None]:
    """``app`` under a real uvicorn server, started from this task; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # up to 10 s for the server to listen
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def cart_app(
    backend: StoreBackend[UUID, Cart],
    *,
    verifier_backend: StoreBackend[UUID, Cart] | None = None,
    clock: Any = utc_now,
    add: bool = True,
    gate: asyncio.Event | None = None,
) -> tuple[FastAPI, SessionCookie, CartVerifier]:
    """The seed page's shape: ``/login`` creates a session and sets the cookie, ``/cart``
    reads it through cookie and verifier and, with ``add``, ``/add/{item}`` changes the
    verifier's cart in place and updates it (``/add-gated/{item}`` the same once ``gate``
    is set). Tests add their routes with the cookie and verifier it returns."""
    cookie = cart_cookie(clock)
    verifier = CartVerifier(verifier_backend or backend)
    app = FastAPI()

    @app.post("/login")
    async def login(response: Response) -> None:
        session = uuid4()
        await backend.create(session, Cart(items=[]))
        cookie.attach_to_response(response, session)

    @app.get("/cart", dependencies=[Depends(cookie)])
    async def show(cart: Cart = Depends(verifier)) -> Cart:  # noqa: B008
        return cart

    if add:

        @app.post("/add/{item}")
        async def add_item(
            item: str,
            session_id: UUID = Depends(cookie),  # noqa: B008
            cart: Cart = Depends(verifier),  # noqa: B008
        ) -> None:
            cart.items.append(item)
            await backend.update(session_id, cart)

    if gate is not None:
        opened = gate

        @app.post("/add-gated/{item}")
        async def add_gated(
            item: str,
            session_id: UUID = Depends(cookie),  # noqa: B008
            cart: Cart = Depends(verifier),  # noqa: B008
        ) -> None:
            await opened.wait()
            cart.items.append(item)
            await backend.update(session_id, cart)

    return app, cookie, verifier


AppFor = Callable[..., FastAPI]
"""``app_for(backend, gate, verifier_backend)``: a test's app over ``cart_app``."""


async def race_with_pen(
    app_for: AppFor,
    path: str,
    backend: StoreBackend[UUID, Cart] | None = None,
    verifier_backend: StoreBackend[UUID, Cart] | None = None,
) -> tuple[int, list[str]]:
    """POST ``path`` to ``app_for``'s app: its verifier hands out the empty cart; another
    request (a real concurrent HTTP request) adds "pen" and gets 200; then the gate opens
    and the first goes on. Its status, and the cart stored after."""
    backend = backend or InMemoryBackend[UUID, Cart]()
    gate = asyncio.Event()
    app = app_for(backend, gate, verifier_backend)
    async with client_for(app, raise_app_exceptions=False) as client:
        await client.post("/login")
        token = client.cookies["cart"]
        mine = asyncio.create_task(client.post(path))
        await asyncio.sleep(0.1)  # the verifier has handed out the empty cart
        async with client_for(app_for(backend), raise_app_exceptions=False) as other:
            other.cookies["cart"] = token
            assert (await other.post("/add/pen")).status_code == 200
        gate.set()
        status = (await mine).status_code
        stored: list[str] = (await client.get("/cart")).json()["items"]
    return status, stored
