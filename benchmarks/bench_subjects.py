"""A user's sessions: what listing and ending them costs on Redis, and what carrying a
subject costs per request (store level: one load and one save), on memory and Redis.

    ../.venv/bin/python bench_subjects.py            # Redis at TYPED_SESSIONS_REDIS_URL
    ../.venv/bin/python bench_subjects.py --instructions   # the client side, noise-free

Each figure is a median; ending is timed on freshly signed-in sessions each round.
``--instructions`` counts the CPU instructions of one load + save in the application's
process (valgrind's callgrind, as ``instructions.py`` does), with and without a subject:
the Redis server's own work is not in it.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from harness import run_async, table
from typed_sessions import Expiry, MemoryStore, Ok, new_session, replace_data, utc_now
from typed_sessions.stores.redis import RedisStore

URL = os.environ.get("TYPED_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/0")
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Store = Any


async def sign_in_many(store: Store, subject: str, count: int) -> None:
    for start in range(0, count, 200):
        batch = [
            store.save(new_session({"n": i}, EXPIRY, now=utc_now(), subject=subject))
            for i in range(start, min(start + 200, count))
        ]
        await asyncio.gather(*batch)


async def index_timings(store: Store) -> list[str]:
    lines = ["## Redis: a subject's sessions", "sessions     list_subject     end_subject"]
    for count, rounds in ((1, 30), (100, 15), (10_000, 3)):
        listed, ended = [], []
        for _ in range(rounds):
            subject = f"user-{uuid.uuid4().hex}"
            await sign_in_many(store, subject, count)
            start = time.perf_counter()
            infos = await store.list_subject(subject)
            listed.append(time.perf_counter() - start)
            assert len(infos) == count
            start = time.perf_counter()
            assert await store.end_subject(subject) == count
            ended.append(time.perf_counter() - start)
        lines.append(
            f"{count:>8}  {statistics.median(listed) * 1e3:>12.2f} ms"
            f"  {statistics.median(ended) * 1e3:>11.2f} ms"
        )
    return lines


def per_request(store: Store, name: str) -> str:
    """One request's store work: load, then save a change (as a counter route does)."""

    ids: dict[str | None, Any] = {}

    def request(subject: str | None) -> Any:
        async def run() -> None:
            if subject not in ids:  # made on the benchmark's own event loop
                made = new_session({"n": 0}, EXPIRY, now=utc_now(), subject=subject)
                result = await store.save(made)
                assert isinstance(result, Ok)
                ids[subject] = result.value.id
            current = await store.load(ids[subject])
            saved = await store.save(
                replace_data(current, {"n": current.data["n"] + 1}, now=utc_now())
            )
            assert isinstance(saved, Ok)

        return run

    medians = run_async(
        [("no subject", request(None)), ("with a subject", request("user-42"))],
        rounds=15,
        batch=200,
    )
    return table(f"{name}: load + save per request", medians, baseline="no subject")


async def main() -> None:
    prefix = f"bench-subjects:{uuid.uuid4().hex[:8]}:"
    store: RedisStore[dict[str, Any]] = RedisStore.from_url(URL, dict[str, Any], prefix=prefix)
    try:
        print("\n".join(await index_timings(store)))
    finally:
        await store.aclose()
        await delete_prefix(prefix)


async def delete_prefix(prefix: str) -> None:
    client = Redis.from_url(URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])
    await client.aclose()


async def cycles(kind: str, subject: str | None, count: int) -> None:
    """``count`` load + save cycles of one session (a child process of ``instructions``)."""
    prefix = f"bench-subjects:{uuid.uuid4().hex[:8]}:"
    store: Any = (
        MemoryStore(dict[str, Any])
        if kind == "memory"
        else RedisStore.from_url(URL, dict[str, Any], prefix=prefix)
    )
    result = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now(), subject=subject))
    session_id = result.value.id
    for _ in range(count):
        current = await store.load(session_id)
        await store.save(replace_data(current, {"n": current.data["n"] + 1}, now=utc_now()))
    if kind == "redis":
        await store.aclose()
        await delete_prefix(prefix)


def count_instructions(kind: str, subject: str, cycles: int) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", kind, subject, str(cycles)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(found.group(1))


def instructions(low: int = 200, high: int = 1200) -> None:
    print("## instructions per load + save (client side)")
    for kind in ("memory", "redis"):
        per = {}
        for subject in ("-", "user-42"):
            diff = count_instructions(kind, subject, high) - count_instructions(kind, subject, low)
            per[subject] = diff / (high - low)
        ratio = per["user-42"] / per["-"]
        print(f"{kind:<7} no subject {per['-']:>9.0f}  with a subject {per['user-42']:>9.0f}"
              f"  {ratio:.3f}x")  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    kind, subject, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    asyncio.run(cycles(kind, None if subject == "-" else subject, count))
elif __name__ == "__main__" and sys.argv[1:2] == ["--instructions"]:
    instructions()
elif __name__ == "__main__":
    asyncio.run(main())
    print(per_request(MemoryStore(dict[str, Any], max_sessions=100), "memory"))
    redis_prefix = f"bench-subjects:{uuid.uuid4().hex[:8]}:"
    redis_store = RedisStore.from_url(URL, dict[str, Any], prefix=redis_prefix)
    print(per_request(redis_store, "Redis"))
    asyncio.run(delete_prefix(redis_prefix))
