"""A user's sessions through the dependency: sign in on three devices, list them (the
current one marked), end one by handle, end all others, disable an account, never across
users; and re-authentication for sensitive routes. On memory and on the real Redis."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from examples.user_sessions_app import create_app
from typed_sessions import SessionStore

from .conftest import SECRET, FakeClock
from .stores import HARNESSES

pytestmark = pytest.mark.anyio
STORES = ["memory", "redis", "postgresql", "mariadb", "sqlite-memory"]


@asynccontextmanager
async def app_for(
    kind: str, clock: FakeClock | None = None
) -> AsyncGenerator[httpx.AsyncClient, None]:
    async with HARNESSES[kind]() as harness:
        store: SessionStore[dict[str, Any]] = harness.store
        app = create_app(store, SECRET, clock=clock or harness.now)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c


async def sign_in(client: httpx.AsyncClient, user: str, agent: str = "pytest") -> dict[str, str]:
    answer = await client.post(f"/login/{user}", headers={"user-agent": agent})
    return {"X-Session": answer.json()["token"]}


@pytest.mark.parametrize("kind", STORES)
async def test_three_devices_listed_then_sign_out_everywhere_else(kind: str) -> None:
    async with app_for(kind) as client:
        devices = [await sign_in(client, "ada", agent) for agent in ("phone", "laptop", "tv")]
        listed = (await client.get("/sessions", headers=devices[1])).json()
        current = {s["device"]["user_agent"]: s["current"] for s in listed}
        assert current == {"phone": False, "laptop": True, "tv": False}
        assert all(set(s) >= {"handle", "created_at", "last_active", "expires_at"} for s in listed)
        body = str(listed)
        for token in devices:  # neither tokens nor IDs reach the page
            assert token["X-Session"] not in body
        ended = (await client.post("/sessions/end-others", headers=devices[1])).json()
        assert ended == {"ended": 2}
        assert [(await client.get("/me", headers=d)).status_code for d in devices] == [
            401,
            200,
            401,
        ]
        (only,) = (await client.get("/sessions", headers=devices[1])).json()
        assert only["current"]


@pytest.mark.parametrize("kind", STORES)
async def test_one_session_is_ended_by_its_handle_never_across_users(kind: str) -> None:
    async with app_for(kind) as client:
        ada_phone = await sign_in(client, "ada", "phone")
        ada_laptop = await sign_in(client, "ada", "laptop")
        bob = await sign_in(client, "bob")
        listed = (await client.get("/sessions", headers=ada_phone)).json()
        ada_handles = [s["handle"] for s in listed]
        by_agent = {s["device"]["user_agent"]: s["handle"] for s in listed}
        (bob_handle,) = [s["handle"] for s in (await client.get("/sessions", headers=bob)).json()]
        # Bob cannot end Ada's sessions with her handles, nor with guesses.
        for handle in [*ada_handles, "A" * 22, "", "../x"]:
            answer = await client.post(f"/sessions/{handle}/end", headers=bob)
            assert answer.status_code in (200, 404, 405)
            if answer.status_code == 200:
                assert answer.json() == {"ended": False}
        assert (await client.get("/me", headers=ada_phone)).status_code == 200
        # Ada ends her laptop from her phone; Bob's session is not hers to end.
        assert (await client.post(f"/sessions/{bob_handle}/end", headers=ada_phone)).json() == {
            "ended": False
        }
        laptop = by_agent["laptop"]
        assert (await client.post(f"/sessions/{laptop}/end", headers=ada_phone)).json() == {
            "ended": True
        }
        assert (await client.get("/me", headers=ada_laptop)).status_code == 401
        assert (await client.get("/me", headers=bob)).status_code == 200


@pytest.mark.parametrize("kind", STORES)
async def test_a_disabled_account_loses_every_session(kind: str) -> None:
    async with app_for(kind) as client:
        admin = await sign_in(client, "admin")
        mallory = [await sign_in(client, "mallory") for _ in range(3)]
        assert (await client.post("/admin/disable/mallory", headers=mallory[0])).status_code == 403
        assert (await client.post("/admin/disable/mallory", headers=admin)).json() == {"ended": 3}
        assert [(await client.get("/me", headers=m)).status_code for m in mallory] == [401] * 3
        assert (await client.get("/me", headers=admin)).status_code == 200


async def test_sensitive_routes_need_a_recent_sign_in() -> None:
    clock = FakeClock()
    async with app_for("memory", clock) as client:
        ada = await sign_in(client, "ada")
        assert (await client.post("/password", headers=ada)).status_code == 200  # just now
        clock.advance(timedelta(minutes=6))
        stale = await client.post("/password", headers=ada)
        assert stale.status_code == 401
        assert stale.json() == {"detail": "Reauthentication required"}
        assert 'error="insufficient_user_authentication"' in stale.headers["www-authenticate"]
        assert (await client.get("/me", headers=ada)).status_code == 200  # still signed in
        fresh = {"X-Session": (await client.post("/reauthenticate", headers=ada)).json()["token"]}
        assert (await client.get("/me", headers=ada)).status_code == 401  # rotated: old ID dead
        assert (await client.post("/password", headers=fresh)).status_code == 200


def test_the_redis_factory_needs_no_memory_secret() -> None:
    """``uvicorn --factory examples.user_sessions_app:app_from_env`` with the variables its
    docstring names: importing the module built a memory app, which asked for
    ``SESSION_SECRET`` too (found by an audit)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {key: value for key, value in os.environ.items() if key != "SESSION_SECRET"}
    env["TYPED_SESSIONS_SECRET"] = SECRET
    env["TYPED_SESSIONS_REDIS_URL"] = "redis://127.0.0.1:1/0"  # never connected to here
    code = "from examples.user_sessions_app import app_from_env; app_from_env()"
    root = Path(__file__).resolve().parents[1]
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
