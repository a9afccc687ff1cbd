"""The seed page's counter, rewritten in examples/counter_middleware.py, driven over ASGI."""

from __future__ import annotations

import httpx
import pytest

from examples.counter_middleware import create_app

pytestmark = pytest.mark.anyio

SECRET = "0123456789abcdef0123456789abcdef-example"


@pytest.mark.parametrize("route", ["/session_test", "/typed_session_test"])
async def test_counter_example_counts_one_two_three(route: str) -> None:
    transport = httpx.ASGITransport(app=create_app(SECRET))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        counts = [(await client.get(route)).json()["test_counter"] for _ in range(3)]
        assert counts == [1, 2, 3]
        client.cookies.clear()  # a new browser: a new session
        assert (await client.get(route)).json() == {"test_counter": 1}


async def test_counter_example_cookie_and_skip_header() -> None:
    transport = httpx.ASGITransport(app=create_app(SECRET))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        first = await client.get("/session_test")
        (cookie,) = first.headers.get_list("set-cookie")
        assert cookie.startswith("sid=")
        assert cookie.endswith("; Path=/; HttpOnly; Secure; SameSite=lax")
        skipped = await client.get("/session_test", headers={"x-skip-session": "1"})
        assert skipped.status_code == 400
        assert (await client.get("/session_test")).json() == {"test_counter": 2}
