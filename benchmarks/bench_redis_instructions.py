"""RedisStore's own code per load + save, in CPU instructions (callgrind), not seconds.

Over ``bench_redis.InstantClient`` (answers in-process at once: no socket, no redis-py),
so the count is the store's own work: the codec, the key, the time limit, the script's
arguments. Each run is a process of its own under callgrind, ``N1`` and then ``N2``
cycles; the difference over ``N2 - N1`` is the instructions per cycle, without start-up.
Noise-free where timings on a shared machine are not: use it for before/after figures
of changes to the store's code.

Run from this folder: ``python bench_redis_instructions.py [N1 N2]`` (needs valgrind).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any


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


def count(cycles: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", str(cycles)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:  # pragma: no cover - valgrind missing or changed
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        serve(int(sys.argv[2]))
        return
    low, high = [int(a) for a in sys.argv[1:3]] or [200, 1200]
    per_cycle = (count(high) - count(low)) / (high - low)
    print(f"RedisStore load + save, own code: {per_cycle:,.0f} instructions per cycle")


if __name__ == "__main__":
    main()
