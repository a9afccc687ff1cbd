"""The seed's create / whoami / delete flow, driven through the rewritten example app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from examples.fastapi_sessions_flow import app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def test_create_whoami_delete(client: httpx.AsyncClient) -> None:
    assert (await client.get("/whoami")).status_code == 401

    created = await client.post("/create_session/alice")
    assert created.status_code == 200
    assert created.json() == "created session for alice"
    set_cookie = created.headers["set-cookie"]
    assert set_cookie.startswith("cookie=")
    assert set_cookie.endswith("; Path=/; HttpOnly; Secure; SameSite=lax")
    assert created.headers["cache-control"] == "no-store"
    old_cookie = client.cookies["cookie"]

    whoami = await client.get("/whoami")
    assert whoami.status_code == 200
    assert whoami.json() == {"username": "alice"}

    deleted = await client.post("/delete_session")
    assert deleted.status_code == 200
    assert deleted.json() == "deleted session"
    assert deleted.headers["set-cookie"].startswith('cookie=""; Max-Age=0; ')
    assert deleted.headers["set-cookie"].endswith("; Path=/; HttpOnly; Secure; SameSite=lax")
    assert deleted.headers["cache-control"] == "no-store"
    assert "cookie" not in client.cookies

    replayed = await client.get("/whoami", headers={"Cookie": f"cookie={old_cookie}"})
    assert replayed.status_code == 401
    assert replayed.json() == {"detail": "Not authenticated"}

    assert (await client.post("/delete_session")).status_code == 200  # deleting twice
    again = await client.post("/delete_session", headers={"Cookie": f"cookie={old_cookie}"})
    assert again.status_code == 200


async def test_openapi_documents_the_cookie(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {"type": "apiKey", "in": "cookie", "name": "cookie"}
    }
    assert schema["paths"]["/whoami"]["get"]["security"] == [{"SessionCookie": []}]
    assert schema["paths"]["/delete_session"]["post"]["security"] == [{"SessionCookie": []}]
    assert "security" not in schema["paths"]["/create_session/{name}"]["post"]
