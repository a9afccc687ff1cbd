"""Static types of the stores and of redis-py as the library sees it, checked by mypy and
pyright (both run this file in CI; ``assert_type`` is a no-op at run time). A data type
that is not a class (a union) needs an annotation instead of silently becoming ``Any``;
the local stubs in ``typings/`` give redis-py's results real types instead of ``Any``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, assert_type

from pydantic import BaseModel
from redis.asyncio import Redis

from typed_sessions import MemoryStore, SessionCodec
from typed_sessions.stores.redis import RedisStore
from typed_sessions.stores.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
URL = "redis://127.0.0.1:6379/0"  # no connection is made in this file
SQL_URL = "sqlite+aiosqlite://"  # nor here: the engine connects on its first call


class User(BaseModel):
    name: str


def test_stores_of_a_class_are_of_that_class() -> None:
    assert_type(MemoryStore(User), MemoryStore[User])
    assert_type(MemoryStore(dict[str, Any]), MemoryStore[dict[str, Any]])
    assert_type(SessionCodec(User), SessionCodec[User])
    store = RedisStore.from_url(URL, User)
    assert_type(store, RedisStore[User])
    assert_type(RedisStore(Redis.from_url(URL), User), RedisStore[User])
    sql = SqlStore.from_url(SQL_URL, User)
    assert_type(sql, SqlStore[User])
    assert_type(SqlStore(sql.engine, User), SqlStore[User])


def test_a_union_data_type_takes_its_type_from_the_annotation() -> None:
    union: MemoryStore[int | str] = MemoryStore(int | str)
    assert_type(union, MemoryStore[int | str])
    redis_union: RedisStore[int | str] = RedisStore.from_url(URL, int | str)
    assert_type(redis_union, RedisStore[int | str])
    sql_union: SqlStore[int | str] = SqlStore.from_url(SQL_URL, int | str)
    assert_type(sql_union, SqlStore[int | str])
    unannotated = MemoryStore(int | str)  # type: ignore[var-annotated]  # mypy: needs one
    del unannotated


async def redis_results(client: Redis) -> None:
    """Never run: what the stubs say the commands the store sends return."""
    assert_type(await client.get("k"), bytes | str | None)
    assert_type(await client.delete("k"), int)
    assert_type(await client.ping(), bool)
    reply = await client.evalsha("sha", 1, "k", b"v")  # strings, numbers, nil, or arrays
    scalar = None if isinstance(reply, list | tuple) else reply
    assert_type(scalar, bytes | str | int | float | None)


def _pyright(source: str, tmp_path: Path) -> str:
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(source))
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        '{"typeCheckingMode": "strict", "stubPath": "%s", "pythonVersion": "3.11"}'
        % (ROOT / "typings")
    )
    run = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, "-p", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return run.stdout


def test_pyright_refuses_a_store_of_unknown_data_and_sees_redis_results(tmp_path: Path) -> None:
    """pyright reports what mypy's ``var-annotated`` above reports, and no Unknown for
    the store's ``from_url`` nor for redis-py's results."""
    out = _pyright(
        """
        from redis.asyncio import Redis  # pyright: ignore[reportUnusedImport]
        from typed_sessions.stores.memory import MemoryStore
        from typed_sessions.stores.redis import RedisStore
        from typed_sessions.stores.sql import SqlStore

        unannotated = MemoryStore(int | str)
        annotated: MemoryStore[int | str] = MemoryStore(int | str)
        store = RedisStore.from_url("redis://", int)
        reveal_type(store)
        sql = SqlStore.from_url("sqlite+aiosqlite://", int)
        reveal_type(sql)

        async def get(client: Redis) -> None:
            reveal_type(await client.get("k"))
        """,
        tmp_path,
    )
    assert 'Type of "unannotated" is "MemoryStore[Unknown]"' in out
    assert out.count("error:") == 1, out  # the annotated one is fine
    assert 'Type of "store" is "RedisStore[int]"' in out
    assert 'Type of "sql" is "SqlStore[int]"' in out
    assert 'is "bytes | str | None"' in out
