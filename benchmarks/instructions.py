"""Work per request, counted in CPU instructions (valgrind's callgrind), not in seconds.

Timings on a shared two-core machine are noisy; instruction counts are not: the same
program, inputs and environment give the same count, whatever else the machine does
(hash randomisation is fixed with ``PYTHONHASHSEED=0``; the Redis runs still vary a
little with how replies arrive).
Each contender serves the seed's counter route ``N1`` and then ``N2`` times, each run in
a process of its own under callgrind; the difference over ``N2 - N1`` is its
instructions per request, without start-up and imports. The Redis contenders count only
the application's process (the client side), not the server's work.

Contenders: the no-session app; typed-sessions' middleware (its FastAPI counter also with
the route as our docs write it, the manager from ``SessionDep``), Starlette's
``SessionMiddleware`` and starsessions over memory; typed-sessions and starsessions over
Redis (``TYPED_SESSIONS_REDIS_URL``); the raw scenarios also run "prototype"
(``prototype_middleware.py``). Instructions are not time (cache misses and the
server's share are not in them), so read this beside ``bench_middleware.py`` and
``bench_redis.py``.

Four scenarios: through FastAPI or as raw ASGI (the middleware alone, no FastAPI, no
httpx), on the counter route (a read and a write) or a read-only route. The Redis
contenders run the FastAPI counter only.

Run from this folder: ``python instructions.py [N1 N2] [--only NAME] [--scenario S]``
(needs ``valgrind``; a few minutes for everything).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from harness import Browser, callgrind_count

APPS = (
    "no sessions",
    "typed-sessions, memory",
    "typed-sessions, SessionDep",
    "starlette SessionMiddleware",
    "starsessions, memory",
    "typed-sessions, Redis",
    "starsessions, Redis",
    "prototype",
    "prototype, compact store",
)

SCENARIOS = ("fastapi counter", "fastapi read", "raw counter", "raw read")
"""Through FastAPI (over httpx's ASGI transport) or as raw ASGI (the middleware alone);
the counter route (a read and a write per request) or a read-only route."""

_RAW_NAMES = {
    "no sessions": "no sessions",
    "typed-sessions, memory": "typed-sessions",
    "starlette SessionMiddleware": "starlette SessionMiddleware",
    "starsessions, memory": "starsessions InMemoryStore",
    "prototype": "prototype",
    "prototype, compact store": "prototype, compact store",
}


def build(name: str) -> FastAPI:
    from redis.asyncio import Redis

    import bench_middleware as memory
    import bench_redis as redis

    makers: dict[str, Callable[[], FastAPI]] = {
        "no sessions": memory.no_sessions,
        "typed-sessions, memory": memory.typed_sessions,
        "typed-sessions, SessionDep": memory.typed_sessions_dependency,
        "starlette SessionMiddleware": memory.starlette,
        "starsessions, memory": memory.starsessions,
        "typed-sessions, Redis": lambda: redis.typed_sessions_app(Redis.from_url(redis.URL)),
        "starsessions, Redis": lambda: redis.starsessions_app(Redis.from_url(redis.URL)),
    }
    return makers[name]()


def applies(name: str, scenario: str) -> bool:
    """The Redis contenders run the FastAPI counter route only; the prototype
    (prototype_middleware.py) the raw ASGI routes only."""
    if name.startswith("prototype"):
        return scenario.startswith("raw")
    if name == "typed-sessions, SessionDep":  # the route as our docs write it
        return scenario == "fastapi counter"
    return "Redis" not in name or scenario == "fastapi counter"


def request_maker(name: str, scenario: str) -> Callable[[], Awaitable[int]]:
    """One request of ``scenario`` to ``name``'s app, by one client keeping its cookie."""
    import bench_middleware as memory

    if scenario.startswith("raw"):
        route = memory.counter_app if scenario == "raw counter" else memory.read_app
        driver = memory.raw_driver(memory.raw_apps(route)[_RAW_NAMES[name]])

        async def raw() -> int:
            await driver()
            return 200

        return raw
    browser = Browser(build(name))
    path = "/session_test" if scenario == "fastapi counter" else "/session_read"
    first = [True]

    async def fastapi() -> int:
        if first[0]:  # the read-only route reads the session the counter started
            first[0] = False
            await browser.get("/session_test")
        return await browser.get(path)

    return fastapi


def serve(name: str, scenario: str, requests: int) -> None:
    """The child: ``requests`` requests of ``scenario`` through one client."""

    async def run() -> None:
        call = request_maker(name, scenario)
        for _ in range(requests):
            if await call() != 200:
                raise RuntimeError(f"{name}: a request failed")

    asyncio.run(run())
    if "Redis" in name:
        import bench_redis

        asyncio.run(bench_redis.cleanup())


def count(name: str, scenario: str, requests: int) -> int:
    """Instructions the child process executed, as callgrind reports them."""
    return callgrind_count(__file__, "--child", name, scenario, str(requests))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("low", nargs="?", type=int, default=100)
    parser.add_argument("high", nargs="?", type=int, default=600)
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help="count only contenders whose name holds NAME (repeatable; the no-session "
        "baseline is always counted)",
    )  # fmt: skip
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, default=[],
        help="count only this scenario (repeatable; default: all)",
    )  # fmt: skip
    args = parser.parse_args()
    low, high = args.low, args.high
    names = [
        name for name in APPS
        if name == "no sessions" or not args.only or any(o in name for o in args.only)
    ]  # fmt: skip
    for scenario in args.scenario or SCENARIOS:
        per_request = {
            name: (count(name, scenario, high) - count(name, scenario, low)) / (high - low)
            for name in names
            if applies(name, scenario)
        }
        base = per_request["no sessions"]
        print(f"## instructions per request, {scenario} ({low} and {high} requests, callgrind)")
        for name, value in per_request.items():
            print(f"{name:<28} {value:>12,.0f}   {value - base:>+10,.0f} over no sessions")
        for ours, peer in (
            ("typed-sessions, memory", "starsessions, memory"),
            ("typed-sessions, memory", "starlette SessionMiddleware"),
            ("typed-sessions, Redis", "starsessions, Redis"),
            ("prototype", "starsessions, memory"),
            ("prototype", "typed-sessions, memory"),
        ):
            if ours in per_request and peer in per_request:
                ratio = (per_request[ours] - base) / (per_request[peer] - base)
                print(f"  session work, {ours} / {peer}: {ratio:.2f}x")
        print(flush=True)


if __name__ == "__main__":
    main()
