"""Sessions in PostgreSQL: typed-sessions' ``SqlStore`` vs sqlspec's ``AsyncpgStore`` and
advanced-alchemy's ``SQLAlchemyStore``, and a bare asyncpg floor, one run.

Every contender talks to the same PostgreSQL (``TYPED_SESSIONS_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) through asyncpg, each in a table of
its own, and reads one session and writes it back per call (the counter bumped, JSON
both ways):

- bare asyncpg (the floor): ``SELECT`` + ``UPDATE`` on one connection held throughout (no
  pool, so no reset query when a connection goes back), no codec beyond ``json``;
- typed-sessions: ``load`` (``SELECT``) + ``save`` (the versioned compare-and-set, a
  conditional ``UPDATE``), pydantic JSON, SQLAlchemy Core over its own pool;
- sqlspec ``AsyncpgStore``: ``get`` + ``set`` (an ``INSERT ... ON CONFLICT`` upsert, no
  version check: the last writer wins), ``json`` for the data;
- advanced-alchemy ``SQLAlchemyStore``: ``get`` + ``set`` (an upsert in an ORM session
  transaction, no version check), ``json`` for the data.

Two tables: the wall time per call, and this process's CPU time per call (the client
side's own cost, which a busy machine or server disturbs far less than the wall time).

``--statements`` instead counts what each contender sends per call, on a PostgreSQL of
its own started with ``log_statement=all`` (``initdb``/``pg_ctl``, as the fault tests do):
the statements of 50 calls, divided by 50.

Run from this folder: ``python bench_sql.py [rounds] [batch]``; ``python bench_sql.py
--own-server [rounds] [batch]`` runs the same on a PostgreSQL of its own (away from other
users of a shared server); ``python bench_sql.py --statements`` (peers: the ``bench``
extra). Target (issue 15): at least
advanced-alchemy's calls per second, and at least 0.8x sqlspec's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from advanced_alchemy.config.engine import EngineConfig
from advanced_alchemy.extensions.litestar.plugins.init import SQLAlchemyAsyncConfig
from advanced_alchemy.extensions.litestar.store import SQLAlchemyStore, StoreModelMixin
from sqlspec.adapters.asyncpg import AsyncpgConfig
from sqlspec.adapters.asyncpg.litestar.store import AsyncpgStore

from harness import run_async, table
from typed_sessions import Expiry, Ok, new_session, replace_data
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table

URL = os.environ.get(
    "TYPED_SESSIONS_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RUN = uuid.uuid4().hex[:8]
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
POOL = 10

Call = Callable[[], Awaitable[object]]
Cleanup = Callable[[], Awaitable[None]]


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def bare_setup(url: str) -> tuple[Call, Cleanup]:
    conn = await asyncpg.connect(dsn(url))  # one connection: no pool, no reset on release
    name = f"bench_bare_{RUN}"
    await conn.execute(
        f"CREATE TABLE {name} (key text PRIMARY KEY, data text NOT NULL, expires_at bigint)"
    )
    await conn.execute(f"INSERT INTO {name} VALUES ('k', $1, 9e15)", json.dumps({"n": 0}))
    select = f"SELECT data FROM {name} WHERE key = $1 AND expires_at > $2"
    update = f"UPDATE {name} SET data = $1, expires_at = $2 WHERE key = $3"

    async def bare() -> None:
        now = int(datetime.now(UTC).timestamp() * 1e6)
        data = json.loads(await conn.fetchval(select, "k", now))
        data["n"] += 1
        await conn.execute(update, json.dumps(data), now + 3_600_000_000, "k")

    async def cleanup() -> None:
        await conn.execute(f"DROP TABLE {name}")
        await conn.close()

    return bare, cleanup


async def ours_setup(url: str) -> tuple[Call, Cleanup]:
    table_ = session_table(name=f"bench_ours_{RUN}")
    store: SqlStore[dict[str, Any]] = SqlStore.from_url(
        url, dict[str, Any], table=table_, pool_size=POOL
    )
    await store.create_table()
    first = await store.save(new_session({"n": 0}, EXPIRY, now=datetime.now(UTC)))
    assert isinstance(first, Ok)
    session_id = first.value.id

    async def typed_sessions() -> None:
        session = await store.load(session_id)
        assert session is not None
        data = {**session.data, "n": session.data["n"] + 1}
        saved = await store.save(replace_data(session, data, now=datetime.now(UTC)))
        assert isinstance(saved, Ok)

    async def cleanup() -> None:
        await store.drop_table()
        await store.aclose()

    return typed_sessions, cleanup


async def sqlspec_setup(url: str) -> tuple[Call, Cleanup]:
    name = f"bench_sqlspec_{RUN}"
    config = AsyncpgConfig(
        connection_config={"dsn": dsn(url), "min_size": 1, "max_size": POOL},
        extension_config={"litestar": {"session_table": name}},
    )
    store = AsyncpgStore(config)
    await store.create_table()
    await store.set("k", json.dumps({"n": 0}).encode(), expires_in=3600)

    async def sqlspec() -> None:
        raw = await store.get("k")
        assert raw is not None
        data = json.loads(raw)
        data["n"] += 1
        await store.set("k", json.dumps(data).encode(), expires_in=3600)

    async def cleanup() -> None:
        async with config.provide_connection() as conn:
            await conn.execute(f"DROP TABLE {name}")
        await config.close_pool()

    return sqlspec, cleanup


async def advanced_alchemy_setup(url: str) -> tuple[Call, Cleanup]:
    model: Any = type("BenchStoreItem", (StoreModelMixin,), {"__tablename__": f"bench_aa_{RUN}"})
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        engine_config=EngineConfig(pool_size=POOL),
    )
    engine = config.get_engine()
    async with engine.begin() as conn:
        await conn.run_sync(model.__table__.create)
    store = SQLAlchemyStore(config, model=model)
    await store.set("k", json.dumps({"n": 0}).encode(), expires_in=3600)

    async def advanced_alchemy() -> None:
        raw = await store.get("k")
        assert raw is not None
        data = json.loads(raw)
        data["n"] += 1
        await store.set("k", json.dumps(data).encode(), expires_in=3600)

    async def cleanup() -> None:
        async with engine.begin() as conn:
            await conn.run_sync(model.__table__.drop)
        await engine.dispose()

    return advanced_alchemy, cleanup


SETUPS = {
    "asyncpg SELECT + UPDATE (floor)": bare_setup,
    "typed-sessions SqlStore": ours_setup,
    "sqlspec AsyncpgStore": sqlspec_setup,
    "advanced-alchemy SQLAlchemyStore": advanced_alchemy_setup,
}


def lazy(setup: Callable[[], Awaitable[tuple[Call, Cleanup]]], cleanups: list[Cleanup]) -> Call:
    """A contender set up on its first call, inside the event loop that times it."""
    ready: list[Call] = []

    async def call() -> object:
        if not ready:
            made, cleanup = await setup()
            ready.append(made)
            cleanups.append(cleanup)
        return await ready[0]()

    return call


def speed(rounds: int, batch: int) -> None:
    cleanups: list[Cleanup] = []  # their pools belong to the timing loop, gone by now
    contenders = [
        (name, lazy(lambda setup=setup: setup(URL), cleanups)) for name, setup in SETUPS.items()
    ]
    cpu: dict[str, list[float]] = {name: [] for name in SETUPS}
    timed = [(name, cpu_timed(call, cpu[name], batch)) for name, call in contenders]
    try:
        medians = run_async(timed, rounds=rounds, batch=batch)
    finally:
        asyncio.run(_drop_tables())
    baseline = next(iter(SETUPS))
    print(table("load + save of one session, wall time per call", medians, baseline=baseline))
    print()
    cpus = {name: statistics.median(values[1:] or values) for name, values in cpu.items()}
    print(table("the same, this process's CPU time per call", cpus, baseline=baseline))
    print()
    for title, figures in (("wall", medians), ("CPU", cpus)):
        ours = figures["typed-sessions SqlStore"]
        for peer in ("sqlspec AsyncpgStore", "advanced-alchemy SQLAlchemyStore"):
            print(f"typed-sessions calls/s vs {peer} ({title}): {figures[peer] / ours:.2f}x")


def cpu_timed(call: Call, samples: list[float], batch: int) -> Call:
    """``call``, also adding this process's CPU time per call to ``samples`` for each
    ``batch`` calls: what the client side costs, whatever the server and the other
    processes on the machine do meanwhile (one call runs at a time in this benchmark)."""
    state = {"calls": 0, "spent": 0.0}

    async def timed() -> object:
        start = time.process_time()
        result = await call()
        state["spent"] += time.process_time() - start
        state["calls"] += 1
        if state["calls"] == batch:
            samples.append(state["spent"] / batch)
            state["calls"], state["spent"] = 0, 0.0
        return result

    return timed


async def _drop_tables() -> None:
    """Drop the contenders' tables, over a connection of this loop's own."""
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(URL)
    async with engine.begin() as conn:
        for prefix in ("bare", "ours", "sqlspec", "aa"):
            await conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS bench_{prefix}_{RUN}"))
    await engine.dispose()


def own_server() -> Any:
    """A PostgreSQL of this run's own (``initdb``/``pg_ctl``, see tests/sql_server.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.sql_server import PostgresServer

    return PostgresServer()


def statements() -> None:
    """Count the statements each contender sends per call, on a server of our own."""
    server = own_server()
    log = Path(server.data.parent) / "server.log"
    server.start()
    try:
        server._run(
            "psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
            "-c", "ALTER SYSTEM SET log_statement = 'all'", "-c", "SELECT pg_reload_conf()",
        )  # fmt: skip
        calls = 50
        for name, setup in SETUPS.items():
            count = asyncio.run(_count(setup, server.url, calls, log))
            print(f"{name:<34} {count / calls:.2f} statements per call (load + save)")
    finally:
        server.cleanup()


async def _count(
    setup: Callable[[str], Awaitable[tuple[Call, Cleanup]]], url: str, calls: int, log: Path
) -> int:
    call, cleanup = await setup(url)
    for _ in range(5):
        await call()  # warm: prepared statements cached
    await asyncio.sleep(0.2)
    before = await asyncio.to_thread(log.read_text)
    for _ in range(calls):
        await call()
    await asyncio.sleep(0.5)  # the log is written asynchronously
    sent = (await asyncio.to_thread(log.read_text))[len(before) :]
    await cleanup()
    found = re.findall(r"LOG:  (?:statement|execute [^:]*):\s*(\S+(?: \S+)?)", sent)
    if os.environ.get("BENCH_SHOW_STATEMENTS"):
        print(sorted(set(found)))
    return len(found)


if __name__ == "__main__":
    if sys.argv[1:] == ["--statements"]:
        statements()
    elif sys.argv[1:2] == ["--own-server"]:  # away from other users of the shared server
        server = own_server()
        server.start()
        try:
            URL = server.url
            speed(*([int(a) for a in sys.argv[2:4]] or [15, 200]))
        finally:
            server.cleanup()
    else:
        speed(*([int(a) for a in sys.argv[1:3]] or [15, 200]))
