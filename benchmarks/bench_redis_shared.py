"""One session shared by 32 concurrent connections, over uvicorn and wrk, on one Redis.

The seed's counter route (read ``test_counter``, write it plus one), each contender in a
uvicorn process of its own, all on the same Redis, interleaved in one run (A, B, C, A, B,
C, ...). For each: requests per second, the share of 409 answers, 5xx answers, and lost
writes: answers of 200 whose increment is not in the store (200 answers minus the
counter's growth). Contenders: typed-sessions (a stale read-modify-write is refused with
409), typed-sessions with ``take_turns=True`` (one worker: requests take turns), and
starsessions (the last writer wins).

Run from this folder: ``python bench_redis_shared.py [rounds] [seconds]`` (needs ``wrk``,
a Redis server, the ``bench`` extra). Target (issue 18): at least starsessions' requests
per second, zero lost writes, zero 5xx, and all 200 with ``take_turns``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

HERE = Path(__file__).resolve().parent
CONTENDERS = ("typed-sessions", "typed-sessions take_turns", "starsessions")


def app_from_env() -> FastAPI:
    """The contender named by ``CONTENDER``, for ``uvicorn --factory``."""
    import bench_redis

    name = os.environ["CONTENDER"]
    if name == "no sessions":
        return bench_redis.no_sessions()
    if name == "typed-sessions, lean client":  # the prototype of lean_redis.py
        return bench_redis.typed_sessions_app(bench_redis.lean())
    client = Redis.from_url(bench_redis.URL)
    if name == "starsessions":
        return bench_redis.starsessions_app(client)
    return bench_redis.typed_sessions_app(client, take_turns=name.endswith("take_turns"))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench_redis_shared:app_from_env",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=HERE, env={**os.environ, "CONTENDER": name},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/peek", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


def session_cookie(base: str) -> str:
    answer = httpx.get(base + "/session_test")
    return answer.headers["set-cookie"].split(";", 1)[0]


def counter(base: str, cookie: str) -> int:
    return int(httpx.get(base + "/peek", headers={"cookie": cookie}).json()["test_counter"])


def wrk(base: str, cookie: str, seconds: int) -> tuple[float, dict[int, int]]:
    done = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(HERE / "statuses.lua"),
         "-H", f"Cookie: {cookie}", base + "/session_test"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    statuses = {int(s): int(n) for s, n in re.findall(r"STATUS (\d+) (\d+)", done.stdout)}
    return rate, statuses


def main() -> None:
    args = [int(a) for a in sys.argv[1:3]]
    rounds, seconds = (args + [3, 5][len(args) :])[:2]
    servers = {name: start(name) for name in CONTENDERS}
    results: dict[str, list[tuple[float, dict[int, int], int]]] = {n: [] for n in CONTENDERS}
    try:
        for _ in range(rounds):
            for name, (_, base) in servers.items():
                cookie = session_cookie(base)
                before = counter(base, cookie)
                rate, statuses = wrk(base, cookie, seconds)
                grown = counter(base, cookie) - before
                results[name].append((rate, statuses, statuses.get(200, 0) - grown))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
        import asyncio

        import bench_redis

        asyncio.run(bench_redis.cleanup())
    report(results)


def report(results: dict[str, list[tuple[float, dict[int, int], int]]]) -> None:
    print("## one session, 32 connections (wrk), counter route, Redis")
    print("| contender | requests/s (each round) | 409 share | 5xx | lost writes |")
    print("| --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        rates = ", ".join(f"{rate:,.0f}" for rate, _, _ in runs)
        total = sum(sum(s.values()) for _, s, _ in runs)
        conflicts = sum(s.get(409, 0) for _, s, _ in runs)
        errors = sum(n for _, s, _ in runs for code, n in s.items() if code >= 500)
        lost = sum(lost for _, _, lost in runs)
        print(f"| {name} | {rates} | {conflicts / max(total, 1):.1%} | {errors} | {lost} |")
    ours = [r for r, _, _ in results["typed-sessions"]]
    star = [r for r, _, _ in results["starsessions"]]
    ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, star, strict=True))
    print(f"typed-sessions / starsessions requests/s per round: {ratios}")


if __name__ == "__main__":
    main()
