"""A tiny interleaved benchmark harness: medians and ratios in one process run.

Contenders run in turns (A, B, C, A, B, C, ...) so that machine noise hits them alike;
each turn times a batch of calls and the table reports the median per-call time.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

Sync = Callable[[], object]
Async = Callable[[], Awaitable[object]]


def run_sync(
    contenders: Sequence[tuple[str, Sync]], *, rounds: int = 30, batch: int = 2000
) -> dict[str, float]:
    """Return each contender's median seconds per call, measured interleaved."""
    samples: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _, fn in contenders:  # warm-up
        for _ in range(batch // 10 or 1):
            fn()
    for _ in range(rounds):
        for name, fn in contenders:
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - start) / batch)
    return {name: statistics.median(values) for name, values in samples.items()}


def run_async(
    contenders: Sequence[tuple[str, Async]], *, rounds: int = 20, batch: int = 300
) -> dict[str, float]:
    """Like :func:`run_sync` for coroutine functions, all on one event loop."""

    async def main() -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name, _ in contenders}
        for _, fn in contenders:
            for _ in range(batch // 10 or 1):
                await fn()
        for _ in range(rounds):
            for name, fn in contenders:
                start = time.perf_counter()
                for _ in range(batch):
                    await fn()
                samples[name].append((time.perf_counter() - start) / batch)
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(main())


def table(title: str, medians: dict[str, float], *, baseline: str) -> str:
    """Format medians as a table with each contender's ratio to ``baseline``."""
    base = medians[baseline]
    width = max(len(name) for name in medians)
    lines = [f"## {title}", f"{'contender':<{width}}  {'median':>12}  {'ratio':>7}"]
    for name, value in medians.items():
        lines.append(f"{name:<{width}}  {value * 1e6:>9.2f} us  {value / base:>6.2f}x")
    return "\n".join(lines)


class Browser:
    """One client over ``httpx.ASGITransport`` that keeps its cookies in a plain dict.

    ``httpx.AsyncClient``'s cookie jar (``http.cookiejar``) costs tens of microseconds
    per request that carries a cookie, on the client side, which would swamp what the
    session libraries cost; every contender gets this same cheap cookie keeping instead.
    """

    def __init__(self, app: Any, base: str = "https://testserver") -> None:
        self.transport = httpx.ASGITransport(app=app)
        self.base = base
        self.cookies: dict[str, str] = {}

    async def get(self, path: str) -> int:
        """GET ``path`` with the cookies kept so far; keep the ones the response sets."""
        headers = [(b"host", b"testserver")]
        if self.cookies:
            jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers.append((b"cookie", jar.encode("latin-1")))
        request = httpx.Request("GET", self.base + path, headers=headers)
        response = await self.transport.handle_async_request(request)
        await response.aread()
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if "max-age=0" in header.lower() or "1970" in header:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status_code


def callgrind_count(script: str, *args: str) -> int:
    """Instructions ``python script *args`` executed, as valgrind's callgrind counts them
    (hash randomisation fixed: the same program and inputs give the same count). It runs
    once without valgrind first, so that compiling a changed module's bytecode (done by
    whichever run imports it first) is never counted."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, script, *args], capture_output=True, check=True, env=env)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, script, *args],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:  # pragma: no cover - valgrind missing or changed
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))
