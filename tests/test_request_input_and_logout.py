"""What a request can put into a session's subject and device, and logging out of a
session ``verify`` refuses. Found by an audit of the dependencies and a user's sessions."""

# No `from __future__ import annotations`: FastAPI must resolve the routes' annotations,
# which name dependencies local to the test functions.

from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response

from typed_sessions import (
    MemoryStore,
    Session,
    device_from,
    device_of,
    make_cookie_dependency,
)

from .conftest import SECRET

pytestmark = pytest.mark.anyio
BASE = "https://testserver"
COOKIE = "__Host-session"
Data = dict[str, Any]


@pytest.mark.parametrize(
    "address",
    [
        "::%a\nforged: line",  # a forged log line / page line
        "2001:db8::%\x1b[31mred",  # a terminal escape
        "::%\u202eevil",  # a bidi override that reorders text on a page
    ],
)
def test_device_address_is_a_coarse_network_without_zone_text(address: str) -> None:
    """device_from promises the address coarsened to its /24 or /48 network, anything
    else None, and a device "safe to store and show": a zone ID (``%...``) is neither."""
    device = device_from("browser", address, keep_address=True)
    assert device.address is None


def test_device_of_a_request_keeps_no_zone_text_from_the_client_address() -> None:
    """The same through device_of: the client host as an ASGI server (or a proxy-headers
    middleware trusting X-Forwarded-For) reports it."""
    scope: dict[str, Any] = {
        "type": "http",
        "headers": [],
        "client": ("::%x\r\nSet-Cookie: a=b", 1234),
    }
    device = device_of(Request(scope), keep_address=True)
    assert device.address is None


async def test_logout_through_optional_works_for_a_session_verify_refuses() -> None:
    """verify is where role checks go; a logout through ``optional(verify=False)`` ends
    a session it refuses (``optional()`` answers 403 for it, as documented)."""
    store: MemoryStore[Data] = MemoryStore(Data)
    current = make_cookie_dependency(
        store, lambda session: session.data.get("role") == "admin", keys=SECRET
    )
    maybe = current.optional(verify=False)
    app = FastAPI()

    @app.post("/login")
    async def login(response: Response) -> str:
        await current.start(response, {"role": "user"})
        return "ok"

    @app.post("/logout")
    async def logout(
        response: Response, session: Annotated[Session[Data] | None, Depends(maybe)]
    ) -> str:
        await current.end(response, session)
        return "bye"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        await c.post("/login")
        token = c.cookies[COOKIE]
        answer = await c.post("/logout")
    assert answer.status_code == 200
    assert answer.headers.get("set-cookie", "").startswith(f'{COOKIE}=""')
    assert token
    assert len(store) == 0, "the session outlived its logout"


@pytest.mark.parametrize("name", ["%E2%80%AEnimda", "a%0Ab", "x" * 300])
async def test_user_sessions_example_refuses_a_bad_name_with_a_4xx(name: str) -> None:
    """The example takes the subject from the URL; a name check_subject refuses (a bidi
    override, a newline, over 256 characters) is a 422, no longer a 500."""
    from examples.user_sessions_app import create_app

    app = create_app(MemoryStore(Data), SECRET)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        answer = await c.post(f"/login/{name}")
    assert answer.status_code == 422
