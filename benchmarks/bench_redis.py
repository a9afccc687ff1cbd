"""Sessions in Redis: typed-sessions' ``RedisStore`` vs starsessions' ``RedisStore``, one run.

Both talk to the same Redis (``TYPED_SESSIONS_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) through the same kind of client (``redis.asyncio.Redis``, a
plain pool, no hiredis unless installed for both), each under its own key prefix.

1. The store alone, one session read and written back per call:
   - bare redis-py ``GET`` + ``SET`` of the bytes (the floor: two round trips, no codec);
   - typed-sessions: ``load`` (``GET``) + ``save`` (``EVALSHA``: the versioned
     compare-and-set with the record's TTL), JSON through pydantic, typed data;
   - starsessions: ``read`` (``GET``) + ``write`` (``SET EX``), its ``JsonSerializer``,
     no version check (the last writer wins).
2. The seed's counter route end to end (FastAPI over ``httpx.ASGITransport``, one client
   each keeping its cookie): typed-sessions' ``session_middleware`` vs starsessions'
   ``SessionMiddleware`` + ``SessionAutoloadMiddleware``, each over its Redis store, and
   the same route without sessions as the baseline. Also a route that only reads the
   session (one round trip for typed-sessions).

3. With ``--overhead``: what the store's own code costs per load + save, over a client
   that answers at once in-process (no socket, no redis-py): the part of the store
   that is ours.
4. With ``--store``: only the store, also with 64 sessions read and written at once (one
   call: 64 concurrent load + save, each on its own session; bare: 64 concurrent GET + SET).

With ``--store --lean`` also the prototype client of ``lean_redis.py``: a bare ``GET`` +
``SET`` on it, and RedisStore on it.

Run from this folder: ``python bench_redis.py [rounds] [batch] [--store [--lean]|--overhead]``
(peers: the ``bench`` extra; a Redis server). Targets: at least starsessions' requests per second
(issue 5); the store within 1.1x of the bare GET + SET (issue 13).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from redis.asyncio import Redis
from starsessions import SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarSessionMiddleware
from starsessions.serializers import JsonSerializer
from starsessions.stores.redis import RedisStore as StarRedisStore

from harness import Browser, run_async, table
from typed_sessions import Expiry, Ok, new_session, replace_data
from typed_sessions.stores.redis import RedisStore

URL = os.environ.get("TYPED_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "benchmark-secret-0123456789abcdef0123456789"
BASE = "https://testserver"
RUN = uuid.uuid4().hex[:8]
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


# -- 1. the store alone --------------------------------------------------------------------

Call = Callable[[], Awaitable[object]]


def lazy(setup: Callable[[], Awaitable[Call]]) -> Call:
    """A contender set up on its first call, inside the event loop that times it."""
    ready: list[Call] = []

    async def call() -> object:
        if not ready:
            ready.append(await setup())
        return await ready[0]()

    return call


def redis_py() -> Any:
    return Redis.from_url(URL)


def lean() -> Any:
    """The prototype client of ``lean_redis.py`` (one pipelined connection, no redis-py)."""
    from urllib.parse import urlsplit

    from lean_redis import LeanRedis

    url = urlsplit(URL)
    return LeanRedis(url.hostname or "127.0.0.1", url.port or 6379, int(url.path[1:] or 0))


async def bare_setup(make: Callable[[], Any] = redis_py) -> Call:
    client = make()
    key = f"bench:{RUN}:bare:{uuid.uuid4().hex}"
    await client.set(key, json.dumps({"test_counter": 0}).encode(), ex=3600)

    async def bare() -> None:
        raw = await client.get(key)
        assert raw is not None
        data = json.loads(raw)
        data["test_counter"] += 1
        await client.set(key, json.dumps(data).encode(), ex=3600)

    return bare


async def ours_setup(make: Callable[[], Any] = redis_py) -> Call:
    store: RedisStore[dict[str, Any]] = RedisStore(
        redis_py(), dict[str, Any], prefix=f"bench:{RUN}:ours:"
    )
    store.client = make()  # the lean prototype client is no redis.asyncio client
    first = await store.save(new_session({"test_counter": 0}, EXPIRY, now=datetime.now(UTC)))
    assert isinstance(first, Ok)
    session_id = first.value.id

    async def typed_sessions() -> None:
        session = await store.load(session_id)
        assert session is not None
        data = {**session.data, "test_counter": session.data["test_counter"] + 1}
        saved = await store.save(replace_data(session, data, now=datetime.now(UTC)))
        assert isinstance(saved, Ok)

    return typed_sessions


async def star_setup() -> Call:
    store = StarRedisStore(connection=Redis.from_url(URL), prefix=f"bench:{RUN}:star:")
    serializer = JsonSerializer()
    star_id = uuid.uuid4().hex
    await store.write(star_id, serializer.serialize({"test_counter": 0}), lifetime=3600, ttl=3600)

    async def starsessions() -> None:
        data = serializer.deserialize(await store.read(star_id, lifetime=3600))
        data["test_counter"] += 1
        await store.write(star_id, serializer.serialize(data), lifetime=3600, ttl=3600)

    return starsessions


def concurrently(setup: Callable[[], Awaitable[Call]], sessions: int = 64) -> Call:
    """``sessions`` contenders of ``setup`` (one session each), called at once per call."""

    async def setup_all() -> Call:
        calls = [await setup() for _ in range(sessions)]

        async def all_at_once() -> None:
            await asyncio.gather(*(call() for call in calls))

        return all_at_once

    return lazy(setup_all)


def store_only(rounds: int, batch: int) -> None:
    """The store alone: one session per call, then 64 sessions at once per call."""
    for title, wrap, calls in (
        ("store: load + save one session", lazy, batch),
        ("store: load + save 64 sessions at once", concurrently, max(batch // 32, 5)),
    ):
        contenders = [
            ("bare redis-py GET + SET", wrap(bare_setup)),
            ("typed-sessions RedisStore", wrap(ours_setup)),
            ("starsessions RedisStore", wrap(star_setup)),
        ]
        if "--lean" in sys.argv:  # the prototype client (lean_redis.py), both ways
            contenders += [
                ("bare lean GET + SET", wrap(partial(bare_setup, lean))),
                ("typed-sessions RedisStore, lean client", wrap(partial(ours_setup, lean))),
            ]
        medians = run_async(contenders, rounds=rounds, batch=calls)
        print(table(title, medians, baseline="bare redis-py GET + SET"))
        ours = medians["typed-sessions RedisStore"]
        print(f"  typed-sessions / bare: {ours / medians['bare redis-py GET + SET']:.3f}x"
              " (target <= 1.1)")  # fmt: skip
        if "--lean" in sys.argv:
            ours = medians["typed-sessions RedisStore, lean client"]
            print(f"  typed-sessions on the lean client / bare redis-py:"
                  f" {ours / medians['bare redis-py GET + SET']:.3f}x; / bare lean:"
                  f" {ours / medians['bare lean GET + SET']:.3f}x")  # fmt: skip
        print()


class InstantClient:
    """Answers ``GET`` and the save script at once, from one stored value (no I/O)."""

    def __init__(self) -> None:
        self.value: bytes | None = None

    async def get(self, key: str) -> bytes | None:
        return self.value

    async def evalsha(self, sha: str, keys: int, *args: bytes | str) -> int:
        value = args[keys]
        assert isinstance(value, bytes)
        self.value = value
        return 0


def overhead(rounds: int, batch: int) -> None:
    """The store's own code per load + save, and each alone, over :class:`InstantClient`."""
    store: RedisStore[dict[str, Any]] = RedisStore(Redis(), dict[str, Any])
    store.client = InstantClient()  # type: ignore[assignment]  # enough for load and save

    async def setup() -> Call:
        first = await store.save(new_session({"test_counter": 0}, EXPIRY, now=datetime.now(UTC)))
        assert isinstance(first, Ok)
        session_id = first.value.id

        async def load_and_save() -> None:
            session = await store.load(session_id)
            assert session is not None
            await store.save(session)  # the instant client checks no version

        return load_and_save

    async def load_setup() -> Call:
        saved = await store.save(new_session({"test_counter": 0}, EXPIRY, now=datetime.now(UTC)))
        assert isinstance(saved, Ok)
        return lambda: store.load(saved.value.id)

    async def save_setup() -> Call:
        session = new_session({"test_counter": 0}, EXPIRY, now=datetime.now(UTC))
        return lambda: store.save(session)

    medians = run_async(
        [("load + save", lazy(setup)), ("load", lazy(load_setup)), ("save", lazy(save_setup))],
        rounds=rounds,
        batch=batch * 10,
    )
    print(table("the store's own code (instant client)", medians, baseline="load + save"))


# -- 2. the counter route end to end -------------------------------------------------------


def bump(session: Any) -> dict[str, int]:
    """The seed page's handler body, shared by every contender."""
    if "test_counter" not in session:
        session["test_counter"] = 0
    session["test_counter"] += 1
    return {"test_counter": session["test_counter"]}


def peek(session: Any) -> dict[str, int]:
    return {"test_counter": session.get("test_counter", 0)}


def no_sessions() -> FastAPI:
    app = FastAPI()
    counter: dict[str, int] = {}

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(counter)

    @app.get("/peek")
    async def peek_route(request: Request) -> dict[str, int]:
        return peek(counter)

    return app


def typed_sessions_app(client: Redis, *, take_turns: bool = False) -> FastAPI:
    from typed_sessions.adapters.middleware import session_middleware

    store: RedisStore[dict[str, Any]] = RedisStore(
        client, dict[str, Any], prefix=f"bench:{RUN}:ours-mw:"
    )
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET, take_turns=take_turns)

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(request.state.session.get_session())

    @app.get("/peek")
    async def peek_route(request: Request) -> dict[str, int]:
        return peek(request.state.session.get_session())

    return app


def starsessions_app(client: Redis) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(
        StarSessionMiddleware,
        store=StarRedisStore(connection=client, prefix=f"bench:{RUN}:star-mw:"),
        lifetime=3600,
    )

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        return bump(request.session)

    @app.get("/peek")
    async def peek_route(request: Request) -> dict[str, int]:
        return peek(request.session)

    return app


def get(browser: Browser, path: str) -> Callable[[], Awaitable[object]]:
    async def call() -> None:
        status = await browser.get(path)
        if status != 200:  # pragma: no cover - a broken contender
            raise RuntimeError(f"{path}: {status}")

    return call


def per_second(medians: dict[str, float], unit: str) -> str:
    return "\n".join(f"  {name}: {1 / value:,.0f} {unit}" for name, value in medians.items())


async def cleanup() -> None:
    client = Redis.from_url(URL)
    keys = [key async for key in client.scan_iter(match=f"bench:{RUN}:*", count=1000)]
    for start in range(0, len(keys), 500):
        await client.delete(*keys[start : start + 500])
    await client.aclose()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 20
    batch = int(args[1]) if len(args) > 1 else 200
    print(f"Redis {URL}; {rounds} rounds of {batch} calls per contender, interleaved\n")
    if "--overhead" in sys.argv:
        overhead(rounds, batch)
        return
    if "--store" in sys.argv:
        try:
            store_only(rounds, batch)
        finally:
            asyncio.run(cleanup())
        return
    try:
        store = run_async(
            [
                ("bare redis-py GET + SET", lazy(bare_setup)),
                ("typed-sessions RedisStore", lazy(ours_setup)),
                ("starsessions RedisStore", lazy(star_setup)),
            ],
            rounds=rounds,
            batch=batch,
        )
        print(table("store: load + save one session", store, baseline="bare redis-py GET + SET"))
        print(per_second(store, "calls/s"))
        ours, star = store["typed-sessions RedisStore"], store["starsessions RedisStore"]
        print(f"  typed-sessions / starsessions calls/s: {star / ours:.2f}x\n")

        for title, path in (
            ("counter route: read + write the session per request", "/session_test"),
            ("read-only route: read the session per request", "/peek"),
        ):
            # Fresh apps and clients per run: each run_async has its own event loop.
            browsers = {
                "no sessions": Browser(no_sessions()),
                OURS: Browser(typed_sessions_app(Redis.from_url(URL))),
                STAR: Browser(starsessions_app(Redis.from_url(URL))),
            }
            medians = run_async(
                [(name, lazy(primed(b, path))) for name, b in browsers.items()],
                rounds=rounds,
                batch=batch,
            )
            print(table(title, medians, baseline="no sessions"))
            print(per_second(medians, "req/s"))
            print(f"  typed-sessions / starsessions req/s: {medians[STAR] / medians[OURS]:.2f}x"
                  " (target >= 1)\n")  # fmt: skip
    finally:
        asyncio.run(cleanup())


OURS = "typed-sessions middleware + RedisStore"
STAR = "starsessions middleware + RedisStore"


def primed(browser: Browser, path: str) -> Callable[[], Awaitable[Call]]:
    """Start a session (one counter request) in the timing loop, then time ``path``."""

    async def setup() -> Call:
        await browser.get("/session_test")
        return get(browser, path)

    return setup


if __name__ == "__main__":
    main()
