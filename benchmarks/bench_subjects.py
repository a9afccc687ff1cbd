"""A user's sessions: what listing and ending them costs on Redis, and what carrying a
subject costs per request (store level: one load and one save), on memory and Redis.

    ../.venv/bin/python bench_subjects.py            # Redis at TYPED_SESSIONS_REDIS_URL

Each figure is a median; ending is timed on freshly signed-in sessions each round.
"""

from __future__ import annotations

import asyncio
import os
import statistics
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


if __name__ == "__main__":
    asyncio.run(main())
    print(per_request(MemoryStore(dict[str, Any], max_sessions=100), "memory"))
    redis_prefix = f"bench-subjects:{uuid.uuid4().hex[:8]}:"
    redis_store = RedisStore.from_url(URL, dict[str, Any], prefix=redis_prefix)
    print(per_request(redis_store, "Redis"))
    asyncio.run(delete_prefix(redis_prefix))
