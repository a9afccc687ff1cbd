"""A user's sessions across two uvicorn workers sharing Redis: "sign out everywhere else"
through one worker ends the other devices on their very next request through either
worker; disabling an account ends all of its sessions everywhere."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from .conftest import SECRET
from .redis_server import delete_prefix_sync, free_port, require_redis, unique_prefix
from .workers import start_worker, stop_workers, wait_ready

pytestmark = pytest.mark.anyio
FACTORY = "examples.user_sessions_app:app_from_env"


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[str, str]]:
    url = require_redis()
    prefix = unique_prefix()
    env = {
        **os.environ,
        "TYPED_SESSIONS_SECRET": SECRET,
        "TYPED_SESSIONS_REDIS_URL": url,
        "TYPED_SESSIONS_PREFIX": prefix,
    }
    ports = [free_port(), free_port()]
    processes = [start_worker(port, env, FACTORY) for port in ports]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for process, base in zip(processes, bases, strict=True):
            wait_ready(process, base, "/docs")
        yield bases[0], bases[1]
    finally:
        stop_workers(processes)
        delete_prefix_sync(url, prefix)


async def sign_in(client: httpx.AsyncClient, base: str, user: str) -> dict[str, str]:
    return {"X-Session": (await client.post(f"{base}/login/{user}")).json()["token"]}


async def test_sign_out_everywhere_else_reaches_both_workers(workers: tuple[str, str]) -> None:
    a, b = workers
    async with httpx.AsyncClient(timeout=10) as client:
        devices = [await sign_in(client, (a, b, a)[i], "ada") for i in range(3)]
        assert (await client.post(a + "/sessions/end-others", headers=devices[0])).json() == {
            "ended": 2
        }
        for base in (a, b):
            assert (await client.get(base + "/me", headers=devices[1])).status_code == 401
            assert (await client.get(base + "/me", headers=devices[2])).status_code == 401
            assert (await client.get(base + "/me", headers=devices[0])).status_code == 200


async def test_a_disabled_account_is_signed_out_on_every_worker(workers: tuple[str, str]) -> None:
    a, b = workers
    async with httpx.AsyncClient(timeout=10) as client:
        admin = await sign_in(client, a, "admin")
        eve = [await sign_in(client, base, "eve") for base in (a, b, b)]
        assert (await client.post(b + "/admin/disable/eve", headers=admin)).json() == {"ended": 3}
        for base in (a, b):
            for token in eve:
                assert (await client.get(base + "/me", headers=token)).status_code == 401
