"""uvicorn worker processes for the many-process tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def start_worker(
    port: int, env: dict[str, str], factory: str = "examples.redis_app:app_from_env"
) -> subprocess.Popen[bytes]:
    """A uvicorn worker process serving ``factory`` on a loopback port."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
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


def wait_ready(process: subprocess.Popen[bytes], base_url: str, path: str = "/healthz") -> None:
    """Wait until the worker answers 200 on ``path`` (fail if it exits or takes 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"worker {base_url} exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(base_url + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"worker {base_url} not ready within 30 s")


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the workers and wait for them (kill one that hangs)."""
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
