"""RedisStore's own code per load + save, in CPU instructions (callgrind), not seconds.

Over ``bench_redis.InstantClient`` (answers in-process at once: no socket, no redis-py),
so the count is the store's own work: the codec, the key, the time limit, the script's
arguments. Each run is a process of its own under callgrind, ``N1`` and then ``N2``
cycles; the difference over ``N2 - N1`` is the instructions per cycle, without start-up.
Noise-free where timings on a shared machine are not: use it for before/after figures
of changes to the store's code.

With ``--requests``: the counter route instead (``bench_redis``'s apps over
``harness.Browser``, one client keeping its cookie, the client side only): no sessions,
typed-sessions on redis-py and on the prototype client of ``lean_redis.py``, and
starsessions; instructions per request.

With ``--ratio``: issue 13's ratio in instructions instead of seconds, over the real
Redis (``bench_redis``'s server, client side only): the store's load + save (one session,
``bench_redis.ours_setup``) against a bare redis-py ``GET`` + ``SET`` of the same kind
(``bench_redis.bare_setup``), per cycle. The target is at most 1.1.

Run from this folder: ``python bench_redis_instructions.py [N1 N2] [--requests|--ratio]``
(needs valgrind).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from harness import callgrind_count


def serve(cycles: int) -> None:
    """The child: ``cycles`` load + save of one session over the instant client."""
    from redis.asyncio import Redis

    from bench_redis import EXPIRY, InstantClient
    from typed_sessions import Ok, new_session
    from typed_sessions.stores.redis import RedisStore

    async def run() -> None:
        store: RedisStore[dict[str, Any]] = RedisStore(Redis(), dict[str, Any])
        store.client = InstantClient()  # type: ignore[assignment]  # enough for load and save
        first = await store.save(new_session({"test_counter": 0}, EXPIRY, now=datetime.now(UTC)))
        assert isinstance(first, Ok)
        for _ in range(cycles):
            session = await store.load(first.value.id)
            assert session is not None
            await store.save(session)

    asyncio.run(run())


def serve_pair(name: str, cycles: int) -> None:
    """The child: ``cycles`` load + save over real Redis, the store's or bare redis-py's."""
    import bench_redis

    async def run() -> None:
        setup = bench_redis.ours_setup if name == "ours" else bench_redis.bare_setup
        call = await setup()
        for _ in range(cycles):
            await call()

    asyncio.run(run())
    asyncio.run(bench_redis.cleanup())


APPS = ("no sessions", "typed-sessions", "typed-sessions, lean client", "starsessions")


def serve_requests(name: str, requests: int) -> None:
    """The child: ``requests`` counter requests through one client keeping its cookie."""
    import bench_redis
    from harness import Browser

    makers = {
        "no sessions": bench_redis.no_sessions,
        "typed-sessions": lambda: bench_redis.typed_sessions_app(bench_redis.redis_py()),
        "typed-sessions, lean client": lambda: bench_redis.typed_sessions_app(bench_redis.lean()),
        "starsessions": lambda: bench_redis.starsessions_app(bench_redis.redis_py()),
    }

    async def run() -> None:
        browser = Browser(makers[name]())
        for _ in range(requests):
            if await browser.get("/session_test") != 200:
                raise RuntimeError(f"{name}: a request failed")

    asyncio.run(run())
    asyncio.run(bench_redis.cleanup())


def count(cycles: int, app: str = "", pair: str = "") -> int:
    child = ["--child", str(cycles)] + (["--app", app] if app else [])
    child += ["--pair", pair] if pair else []
    return callgrind_count(__file__, *child)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        if sys.argv[3:4] == ["--app"]:
            serve_requests(sys.argv[4], int(sys.argv[2]))
        elif sys.argv[3:4] == ["--pair"]:
            serve_pair(sys.argv[4], int(sys.argv[2]))
        else:
            serve(int(sys.argv[2]))
        return
    low, high = [int(a) for a in sys.argv[1:] if not a.startswith("--")][:2] or [200, 1200]
    if "--ratio" in sys.argv:
        ours, bare = (
            (count(high, pair=name) - count(low, pair=name)) / (high - low)
            for name in ("ours", "bare")
        )
        print(f"RedisStore load + save: {ours:,.0f} instructions per cycle (client side)")
        print(f"bare redis-py GET + SET: {bare:,.0f}")
        print(f"  typed-sessions / bare: {ours / bare:.3f}x (target <= 1.1)")
        return
    if "--requests" not in sys.argv:
        per_cycle = (count(high) - count(low)) / (high - low)
        print(f"RedisStore load + save, own code: {per_cycle:,.0f} instructions per cycle")
        return
    print(f"## instructions per counter request on Redis ({low} and {high} requests)")
    for app in APPS:
        per_request = (count(high, app) - count(low, app)) / (high - low)
        print(f"{app}: {per_request:,.0f}", flush=True)


if __name__ == "__main__":
    main()
