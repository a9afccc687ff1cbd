"""Both seed pages' apps, through the shims and on Redis, share sessions across two
uvicorn worker processes (issue 16). Each page changes one more line for Redis: the
backend (``RedisBackend``) and the store (``RedisStore``); see ``tests/compat_pages.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from .compat_pages import ROOT, seeds_dir
from .redis_server import delete_prefix_sync, free_port, require_redis, unique_prefix

pytestmark = pytest.mark.anyio


def start_worker(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.compat_pages:pages_on_redis_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ready(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"worker {base_url} exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(base_url + "/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"worker {base_url} not ready within 30 s")


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[str, str]]:
    """Two workers on free loopback ports, one Redis prefix; their base URLs."""
    seeds = seeds_dir()
    url = require_redis()
    prefix = unique_prefix()
    env = {
        **os.environ,
        "TYPED_SESSIONS_REDIS_URL": url,
        "TYPED_SESSIONS_PREFIX": prefix,
        "TYPED_SESSIONS_SEEDS": str(seeds),
    }
    ports = [free_port(), free_port()]
    processes = [start_worker(port, env) for port in ports]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for process, base in zip(processes, bases, strict=True):
            wait_ready(process, base)
        yield bases[0], bases[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        delete_prefix_sync(url, prefix)


def worker(reply: httpx.Response) -> str:
    return reply.headers["x-worker"]


async def test_fastapi_sessions_page_sessions_are_shared(workers: tuple[str, str]) -> None:
    a, b = workers
    async with httpx.AsyncClient(timeout=10) as client:
        created = await client.post(a + "/create_session/ann")
        assert created.json() == "created session for ann"
        token = created.cookies["cookie"]
        cookie = {"cookie": f"cookie={token}"}
        whoami = await client.get(b + "/whoami", headers=cookie)
        assert whoami.json() == {"username": "ann"}
        assert worker(created) != worker(whoami)  # two processes
        deleted = await client.post(b + "/delete_session", headers=cookie)
        assert deleted.json() == "deleted session"
        refused = await client.get(a + "/whoami", headers=cookie)
        assert (refused.status_code, refused.json()) == (403, {"detail": "invalid session"})
        replay = await client.post(a + "/delete_session", headers=cookie)
        assert replay.status_code == 200


async def test_authx_extra_page_counter_continues_across_workers(
    workers: tuple[str, str],
) -> None:
    a, b = workers
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.get(a + "/authx/session_test")
        assert first.json() == {"test_counter": 1}
        cookie = {"cookie": f"sid={first.cookies['sid']}"}
        replies = [
            await client.get(base + "/authx/session_test", headers=cookie)
            for base in (b, a, b, a, b)
        ]
    assert [r.json()["test_counter"] for r in replies] == [2, 3, 4, 5, 6]
    assert {worker(r) for r in replies} == {worker(first), worker(replies[0])}
    assert worker(first) != worker(replies[0])
