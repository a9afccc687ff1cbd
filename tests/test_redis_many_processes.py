"""Two uvicorn worker processes of ``examples/redis_app.py`` share sessions through Redis.

A session started through one worker is read and updated through the other; concurrent
updates through both lose nothing; a read is one Redis round trip and an update two
(counted with Redis ``MONITOR``, not by timing).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from .conftest import SECRET
from .redis_server import delete_prefix_sync, free_port, require_redis, unique_prefix
from .workers import start_worker, stop_workers, wait_ready

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[str, str, str]]:
    """Two workers on free loopback ports, same secret and Redis; their URLs and the prefix."""
    url = require_redis()
    prefix = unique_prefix()
    env = {
        **os.environ,
        "TYPED_SESSIONS_SECRET": SECRET,
        "TYPED_SESSIONS_REDIS_URL": url,
        "TYPED_SESSIONS_PREFIX": prefix,
    }
    ports = [free_port(), free_port()]
    processes = [start_worker(port, env) for port in ports]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for process, base in zip(processes, bases, strict=True):
            wait_ready(process, base)
        yield bases[0], bases[1], prefix
    finally:
        stop_workers(processes)
        delete_prefix_sync(url, prefix)


async def start(client: httpx.AsyncClient, base: str) -> tuple[dict[str, str], int]:
    reply = await client.post(base + "/session")
    assert reply.status_code == 200
    body = reply.json()
    return {"X-Session": body["token"]}, body["worker"]


async def test_a_session_started_on_one_worker_is_read_and_updated_on_the_other(
    workers: tuple[str, str, str],
) -> None:
    a, b, _ = workers
    async with httpx.AsyncClient(timeout=10) as client:
        headers, worker_a = await start(client, a)
        read = (await client.get(b + "/count", headers=headers)).json()
        assert read["count"] == 0
        worker_b = read["worker"]
        assert worker_a != worker_b  # two processes
        assert (await client.post(b + "/count", headers=headers)).json()["count"] == 1
        assert (await client.get(a + "/count", headers=headers)).json()["count"] == 1
        assert (await client.post(a + "/count", headers=headers)).json()["count"] == 2
        assert (await client.get(b + "/count", headers=headers)).json() == {
            "count": 2,
            "worker": worker_b,
            "token": None,
        }


async def test_concurrent_updates_through_both_workers_lose_nothing(
    workers: tuple[str, str, str],
) -> None:
    a, b, _ = workers
    async with httpx.AsyncClient(timeout=30) as client:
        headers, _ = await start(client, a)
        replies = await asyncio.gather(
            *(client.post((a, b)[i % 2] + "/count", headers=headers) for i in range(40))
        )
        assert [r.status_code for r in replies] == [200] * 40
        assert sorted(r.json()["count"] for r in replies) == list(range(1, 41))
        assert {r.json()["worker"] for r in replies} == {
            (await client.get(base + "/count", headers=headers)).json()["worker"] for base in (a, b)
        }
        assert (await client.get(b + "/count", headers=headers)).json()["count"] == 40


async def test_round_trips_per_request_counted_by_monitor(workers: tuple[str, str, str]) -> None:
    """A read is one Redis command (GET); an update two (GET, EVALSHA)."""
    a, b, prefix = workers
    async with httpx.AsyncClient(timeout=10) as client:
        headers, _ = await start(client, a)
        await client.post(b + "/count", headers=headers)  # warm: script cached on the server
        with monitor(prefix) as commands:
            assert (await client.get(a + "/count", headers=headers)).status_code == 200
        assert commands == ["GET"]
        with monitor(prefix) as commands:
            assert (await client.post(b + "/count", headers=headers)).status_code == 200
        assert commands == ["GET", "EVALSHA"]


class monitor:
    """Collect the names of the commands clients send with keys under ``prefix``.

    Commands run inside scripts (``GETRANGE``, ``SET``) are not round trips; they are left
    out. The block's end is marked by a command of our own, so nothing arrives late.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.url = require_redis()
        self.commands: list[str] = []

    def __enter__(self) -> list[str]:
        self.client = redis.Redis.from_url(self.url, socket_timeout=10)
        self.feed = self.client.monitor()
        self.feed.__enter__()
        return self.commands

    def __exit__(self, *exc_info: object) -> None:
        marker = self.prefix + "end-of-block"
        marker_client = redis.Redis.from_url(self.url)
        marker_client.get(marker)
        marker_client.close()
        try:
            while True:
                seen: dict[str, Any] = self.feed.next_command()
                command = str(seen["command"])
                if marker in command:
                    break
                if self.prefix in command and seen.get("client_type") != "lua":
                    self.commands.append(command.split(" ", 1)[0].upper())
        finally:
            self.feed.__exit__(None, None, None)
            self.client.close()
