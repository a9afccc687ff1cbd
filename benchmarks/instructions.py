"""Work per request, counted in CPU instructions (valgrind's callgrind), not in seconds.

Timings on a shared two-core machine are noisy; instruction counts are not: the same
program, inputs and environment give the same count, whatever else the machine does
(hash randomisation is fixed with ``PYTHONHASHSEED=0``; the Redis runs still vary a
little with how replies arrive).
Each contender serves the seed's counter route ``N1`` and then ``N2`` times, each run in
a process of its own under callgrind; the difference over ``N2 - N1`` is its
instructions per request, without start-up and imports. The Redis contenders count only
the application's process (the client side), not the server's work.

Contenders: the no-session app; typed-sessions' middleware, Starlette's
``SessionMiddleware`` and starsessions over memory; typed-sessions and starsessions over
Redis (``TYPED_SESSIONS_REDIS_URL``). Instructions are not time (cache misses and the
server's share are not in them), so read this beside ``bench_middleware.py`` and
``bench_redis.py``.

Run from this folder: ``python instructions.py [N1 N2]`` (needs ``valgrind``; a few
minutes).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from harness import Browser

APPS = (
    "no sessions",
    "typed-sessions, memory",
    "starlette SessionMiddleware",
    "starsessions, memory",
    "typed-sessions, Redis",
    "starsessions, Redis",
)


def build(name: str) -> FastAPI:
    from redis.asyncio import Redis

    import bench_middleware as memory
    import bench_redis as redis

    makers: dict[str, Callable[[], FastAPI]] = {
        "no sessions": memory.no_sessions,
        "typed-sessions, memory": memory.typed_sessions,
        "starlette SessionMiddleware": memory.starlette,
        "starsessions, memory": memory.starsessions,
        "typed-sessions, Redis": lambda: redis.typed_sessions_app(Redis.from_url(redis.URL)),
        "starsessions, Redis": lambda: redis.starsessions_app(Redis.from_url(redis.URL)),
    }
    return makers[name]()


def serve(name: str, requests: int) -> None:
    """The child: ``requests`` counter requests through one client keeping its cookie."""

    async def run() -> None:
        browser = Browser(build(name))
        for _ in range(requests):
            if await browser.get("/session_test") != 200:
                raise RuntimeError(f"{name}: a request failed")

    asyncio.run(run())
    if "Redis" in name:
        import bench_redis

        asyncio.run(bench_redis.cleanup())


def count(name: str, requests: int) -> int:
    """Instructions the child process executed, as callgrind reports them."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", name, str(requests)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same hashes, the same count
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:  # pragma: no cover - valgrind missing or changed
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        serve(sys.argv[2], int(sys.argv[3]))
        return
    args: list[Any] = [int(a) for a in sys.argv[1:3]] or [100, 600]
    low, high = args
    per_request = {name: (count(name, high) - count(name, low)) / (high - low) for name in APPS}
    base = per_request["no sessions"]
    print(f"## instructions per counter request ({low} and {high} requests, callgrind)")
    for name, value in per_request.items():
        print(f"{name:<28} {value:>12,.0f}   {value - base:>+10,.0f} over no sessions")
    for ours, peer in (
        ("typed-sessions, memory", "starsessions, memory"),
        ("typed-sessions, memory", "starlette SessionMiddleware"),
        ("typed-sessions, Redis", "starsessions, Redis"),
    ):
        ratio = (per_request[ours] - base) / (per_request[peer] - base)
        print(f"  session work, {ours} / {peer}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
