"""Two uvicorn workers of the page's counter (``examples/counter_middleware.py``) on Redis.

Many concurrent requests of one session through both workers: every answer is 200 or
the documented 409, and the stored counter equals the number of 200 answers. Across
workers the rule holds with ``take_turns`` too (turns are taken within one worker).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import httpx
import pytest

from .conftest import SECRET
from .redis_server import delete_prefix_sync, free_port, require_redis, unique_prefix
from .workers import start_worker, stop_workers, wait_ready

pytestmark = pytest.mark.anyio
FACTORY = "examples.counter_middleware:app_from_env"


@pytest.fixture(scope="module", params=["0", "1"], ids=["merge-or-refuse", "take-turns"])
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    url = require_redis()
    prefix = unique_prefix()
    env = {
        **os.environ,
        "TYPED_SESSIONS_SECRET": SECRET,
        "TYPED_SESSIONS_REDIS_URL": url,
        "TYPED_SESSIONS_PREFIX": prefix,
        "TAKE_TURNS": request.param,
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


async def test_the_counter_counts_every_acknowledged_increment_across_workers(
    workers: tuple[str, str],
) -> None:
    a, b = workers
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.get(a + "/session_test")
        token = first.cookies["sid"]  # Secure: sent back by hand over plain http
        cookie = {"cookie": f"sid={token}"}
        codes: list[int] = []
        for _ in range(10):
            answers = await asyncio.gather(
                *(client.get((a, b)[i % 2] + "/session_test", headers=cookie) for i in range(32))
            )
            codes += [answer.status_code for answer in answers]
        last = await client.get(b + "/session_test", headers=cookie)
    assert set(codes) <= {200, 409}, codes
    assert last.json()["test_counter"] == 1 + codes.count(200) + 1
