"""Two uvicorn worker processes of ``examples/sql_app.py`` share sessions through one
PostgreSQL database (a table of the test's own, dropped afterwards).

A session started through one worker is read and changed through the other, and
concurrent changes through both lose nothing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from examples.sql_app import create_table_from_env, store_from_env

from .conftest import SECRET
from .redis_server import free_port
from .sql_server import require_postgres, unique_table
from .workers import ROOT, wait_ready

pytestmark = pytest.mark.anyio


def start_worker(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "examples.sql_app:app_from_env",
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


@pytest.fixture(scope="module")
def environment() -> Iterator[dict[str, str]]:
    """The workers' settings: the shared PostgreSQL and a table of this module's own."""
    settings = {
        "TYPED_SESSIONS_SECRET": SECRET,
        "TYPED_SESSIONS_SQL_URL": require_postgres(),
        "TYPED_SESSIONS_TABLE": unique_table(),
        "TYPED_SESSIONS_INSECURE_COOKIE": "1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        asyncio.run(create_table_from_env())
        yield {**os.environ}
    finally:
        asyncio.run(_drop_table())
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _drop_table() -> None:
    async with store_from_env() as store:
        await store.drop_table()


@pytest.fixture(scope="module")
def workers(environment: dict[str, str]) -> Iterator[tuple[str, str]]:
    ports = [free_port(), free_port()]
    processes = [start_worker(port, environment) for port in ports]
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


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as made:
        yield made


async def test_a_session_started_on_one_worker_is_read_and_changed_on_the_other(
    workers: tuple[str, str], client: httpx.AsyncClient
) -> None:
    a, b = workers
    first = (await client.post(a + "/count")).json()
    assert first["count"] == 1
    read: dict[str, Any] = (await client.get(b + "/session")).json()
    assert read["data"] == {"count": 1}
    assert read["worker"] != first["worker"]  # two processes
    assert (await client.post(b + "/count")).json()["count"] == 2
    assert (await client.get(a + "/session")).json()["data"] == {"count": 2}


async def test_concurrent_changes_through_both_workers_lose_nothing(
    workers: tuple[str, str], client: httpx.AsyncClient
) -> None:
    a, b = workers
    assert (await client.post(a + "/count")).status_code == 200  # the session exists
    replies = await asyncio.gather(*(client.post(f"{(a, b)[i % 2]}/mark/k{i}") for i in range(40)))
    assert [r.status_code for r in replies] == [200] * 40
    assert len({r.json()["worker"] for r in replies}) == 2
    data = (await client.get(b + "/session")).json()["data"]
    assert set(data) == {"count"} | {f"k{i}" for i in range(40)}
    assert data["count"] == 1


async def test_health_check(workers: tuple[str, str], client: httpx.AsyncClient) -> None:
    for base in workers:
        assert (await client.get(base + "/healthz")).json() == {"status": "ok"}
