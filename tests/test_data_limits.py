"""Session data size limit and the typed-store upgrade hook, on memory, Redis and SQL
(SQLite, PostgreSQL, MariaDB).

The limit (``max_data_bytes``, 64 KiB of JSON by default) is checked by the codec before
any write; the upgrade hook reads records stored for an older data model, and the next
save writes them in the current shape.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from typed_sessions import (
    DEFAULT_MAX_DATA_BYTES,
    Err,
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionCodec,
    SessionEncodeError,
    SessionId,
    SessionStore,
    SessionTooLargeError,
    StoreCorruptError,
    new_session,
    replace_data,
    utc_now,
)
from typed_sessions.stores.redis import RedisStore
from typed_sessions.stores.sql import SqlStore
from typed_sessions.stores.sql_table import session_table

from .redis_server import delete_prefix, require_redis, unique_prefix
from .sql_server import SQL_KINDS, sql_url, unique_table

pytestmark = pytest.mark.anyio

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
MIB = 1 << 20


class CartV1(BaseModel):
    user: str


class CartV2(BaseModel):  # gains a required field
    user: str
    currency: str


class ProfileV1(BaseModel):
    name: str


class ProfileV2(BaseModel):  # renames a field
    display_name: str


def add_currency(old: Any) -> Any:
    return {**old, "currency": "EUR"}


def rename_name(old: Any) -> Any:
    if "name" in old:  # an old record; a record of the current shape never gets here
        old = {"display_name": old.pop("name"), **old}
    return old


@dataclass
class Backend:
    """Stores of any data type over one storage: a deploy of a new model is a new store."""

    kind: str
    redis: Redis | None = None
    prefix: str = ""
    entries: Any = None
    front: Any = None
    url: str = ""
    table: Table | None = None
    engine: AsyncEngine | None = None  # for raw reads of the SQL table
    made: list[Any] = field(default_factory=list[Any])

    def store(self, data_type: Any, **options: Any) -> Any:
        made: MemoryStore[Any] | RedisStore[Any] | SqlStore[Any]
        if self.table is not None:  # a store with an engine of its own, as a worker has
            made = SqlStore.from_url(self.url, data_type, table=self.table, **options)
        elif self.redis is None:
            memory: MemoryStore[Any] = MemoryStore(data_type, **options)
            if self.entries is None:
                self.entries = memory._entries  # pyright: ignore[reportPrivateUsage]
                self.front = memory._front  # pyright: ignore[reportPrivateUsage]
            # one process's memory, two deploys of the model
            memory._entries = self.entries  # pyright: ignore[reportPrivateUsage]
            memory._front = self.front  # pyright: ignore[reportPrivateUsage]
            made = memory
        else:
            made = RedisStore(self.redis, data_type, prefix=self.prefix, **options)
        self.made.append(made)
        return made

    async def raw(self, session_id: SessionId) -> bytes | None:
        """What the storage holds for ``session_id`` (the data's JSON is in it)."""
        if self.engine is not None and self.table is not None:
            return await sql_raw(self.engine, self.table, session_id)
        if self.redis is None:
            kept = self.front.get(session_id)  # a record the middleware saved lately
            if kept is not None:
                return bytes(kept.raw)
            entry = self.entries.get(session_id)
            return None if entry is None else bytes(entry.data)
        key = RedisStore(self.redis, dict[str, Any], prefix=self.prefix).key_for(session_id)
        value = await self.redis.get(key)
        assert not isinstance(value, str)  # a client without decode_responses
        return value


async def sql_raw(engine: AsyncEngine, table: Table, session_id: SessionId) -> bytes | None:
    """The row's version, times and data (a write changes at least one of them)."""
    c = table.c
    query = select(c.version, c.last_active, c.expires_at, c.data)
    async with engine.connect() as conn:
        found = await conn.execute(query.where(c.key == SqlStore.key_for(session_id)))
        row = found.first()
    if row is None:
        return None
    version, last_active, expires_at, data = row
    return f"{version} {last_active} {expires_at} {data}".encode()


@asynccontextmanager
async def sql_backend(kind: str, folder: Path) -> AsyncGenerator[Backend, None]:
    """A table of the test's own; each store made on it has an engine of its own."""
    url = sql_url(kind, folder)
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    tables: SqlStore[Any] = SqlStore(engine, Any, table=session_table(name=unique_table()))
    await tables.create_table()
    made = Backend(kind, url=url, table=tables.table, engine=engine)
    try:
        yield made
    finally:
        for store in made.made:
            await store.aclose()
        await tables.drop_table()
        await engine.dispose()


@pytest.fixture(params=["memory", "redis", *SQL_KINDS])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory")
        return
    if request.param in SQL_KINDS:
        async with sql_backend(request.param, tmp_path) as made:
            yield made
        return
    client = Redis.from_url(require_redis())
    prefix = unique_prefix()
    try:
        yield Backend("redis", client, prefix)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def saved(store: SessionStore[Any], data: Any) -> Session[Any]:
    result = await store.save(new_session(data, EXPIRY, now=utc_now()))
    assert isinstance(result, Ok)
    return result.value


# --- the size limit ----------------------------------------------------------------------


def test_the_codec_refuses_data_over_the_limit_naming_size_and_limit() -> None:
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    assert codec.max_data_bytes == DEFAULT_MAX_DATA_BYTES == 64 * 1024
    big = {"blob": "x" * (10 * MIB)}
    session = new_session(big, EXPIRY, now=utc_now())
    encoders: list[Callable[[], bytes]] = [
        lambda: codec.encode(session),
        lambda: codec.encode_data(big),
    ]
    for encode in encoders:
        with pytest.raises(SessionTooLargeError) as caught:
            encode()
        assert caught.value.size == 10 * MIB + len('{"blob":""}')
        assert caught.value.limit == 64 * 1024
        assert f"{10 * MIB + 11} bytes" in str(caught.value)
        assert "65536" in str(caught.value)
        assert isinstance(caught.value, SessionEncodeError)  # caught where encoding errors are


def test_the_limit_is_on_the_data_and_configurable() -> None:
    limit = 100
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any], max_data_bytes=limit)
    just = {"k": "x" * (limit - len('{"k":""}'))}
    assert len(codec.encode_data(just)) == limit
    record = codec.encode(new_session(just, EXPIRY, now=utc_now()))
    assert len(record) > limit  # the record's ID and times do not count
    with pytest.raises(SessionTooLargeError):
        codec.encode_data({"k": just["k"] + "x"})
    unlimited: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any], max_data_bytes=None)
    assert len(unlimited.encode_data({"k": "x" * MIB})) > MIB
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_data_bytes"):
            SessionCodec(dict[str, Any], max_data_bytes=bad)  # type: ignore[arg-type]  # checked at run time


async def test_ten_mib_is_refused_by_the_store_and_nothing_is_written(backend: Backend) -> None:
    store: SessionStore[dict[str, Any]] = backend.store(dict[str, Any])
    huge = new_session({"blob": "x" * (10 * MIB)}, EXPIRY, now=utc_now())
    with pytest.raises(SessionTooLargeError, match="over the limit of 65536 bytes"):
        await store.save(huge)
    assert await backend.raw(huge.id) is None
    assert await store.load(huge.id) is None
    # An update too large leaves the stored record as it was.
    small = await saved(store, {"n": 1})
    before = await backend.raw(small.id)
    with pytest.raises(SessionTooLargeError):
        await store.save(replace_data(small, {"n": 2, "blob": "x" * (10 * MIB)}, now=utc_now()))
    assert await backend.raw(small.id) == before
    loaded = await store.load(small.id)
    assert loaded is not None
    assert (loaded.data, loaded.version) == ({"n": 1}, 1)


async def test_a_store_limit_of_its_own(backend: Backend) -> None:
    store: SessionStore[dict[str, Any]] = backend.store(dict[str, Any], max_data_bytes=MIB)
    await saved(store, {"blob": "x" * (MIB // 2)})  # over the default, under this store's
    with pytest.raises(SessionTooLargeError, match=f"over the limit of {MIB} bytes"):
        await saved(store, {"blob": "x" * MIB})


def mebibyte_of_text(tail: str) -> dict[str, Any]:
    """Data whose JSON is exactly 1 MiB of UTF-8, with 2-, 3- and 4-byte characters."""
    piece = "é€😀x"  # 10 bytes
    room = MIB - len('{"blob":""}') - len(tail.encode())
    return {"blob": piece * (room // 10) + "x" * (room % 10) + tail}


async def test_data_up_to_the_limit_is_stored_whole(backend: Backend) -> None:
    """No storage truncates or refuses data the limit allows: 1 MiB of JSON under a
    limit of 1 MiB, non-ASCII included (utf8mb4 and LONGTEXT on MariaDB), new and updated."""
    store: SessionStore[dict[str, Any]] = backend.store(dict[str, Any], max_data_bytes=MIB)
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any], max_data_bytes=None)
    first, second = mebibyte_of_text("1"), mebibyte_of_text("2")
    assert len(codec.encode_data(first)) == len(codec.encode_data(second)) == MIB
    written = await saved(store, first)
    loaded = await store.load(written.id)
    assert loaded is not None
    assert loaded.data == first
    updated = await store.save(replace_data(loaded, second, now=utc_now()))
    assert isinstance(updated, Ok)
    again = await store.load(written.id)
    assert again is not None
    assert (again.data, again.version) == (second, 2)
    with pytest.raises(SessionTooLargeError, match=f"is {MIB + 1} bytes"):
        await store.save(replace_data(again, {"blob": second["blob"] + "x"}, now=utc_now()))


# --- the upgrade hook --------------------------------------------------------------------


async def test_a_model_that_gains_a_required_field(backend: Backend) -> None:
    old: SessionStore[CartV1] = backend.store(CartV1)
    written = await saved(old, CartV1(user="ada"))
    without: SessionStore[CartV2] = backend.store(CartV2)
    with pytest.raises(StoreCorruptError):  # as today, without a hook
        await without.load(written.id)
    new: SessionStore[CartV2] = backend.store(CartV2, upgrade=add_currency)
    loaded = await new.load(written.id)
    assert loaded is not None
    assert loaded.data == CartV2(user="ada", currency="EUR")
    assert loaded.version == written.version  # the same record: a save is a normal CAS
    assert b'"currency"' not in (await backend.raw(written.id) or b"")  # not rewritten yet
    assert isinstance(await new.save(loaded), Ok)  # the next save writes the new shape
    assert b'"currency":"EUR"' in (await backend.raw(written.id) or b"")
    assert (await without.load(written.id)) is not None  # readable without the hook now


async def test_a_model_that_renames_a_field(backend: Backend) -> None:
    old: SessionStore[ProfileV1] = backend.store(ProfileV1)
    written = await saved(old, ProfileV1(name="Ada"))
    new: SessionStore[ProfileV2] = backend.store(ProfileV2, upgrade=rename_name)
    loaded = await new.load(written.id)
    assert loaded is not None
    assert loaded.data == ProfileV2(display_name="Ada")
    stale = await old.load(written.id)
    assert isinstance(await new.save(loaded), Ok)
    raw = await backend.raw(written.id) or b""
    assert b'"display_name":"Ada"' in raw
    assert b'"name"' not in raw
    # A write from an old worker that loaded before the upgrade is a conflict, not a loss.
    assert stale is not None
    assert isinstance(await old.save(stale), Err)


async def test_rolling_deploy_both_ways(backend: Backend) -> None:
    """The recipe of docs/stores.md: old workers ship the reverse hook first, so old and
    new workers read each other's records while both run."""

    def back_to_name(value: Any) -> Any:
        return {"name": value["display_name"]}

    old: SessionStore[ProfileV1] = backend.store(ProfileV1, upgrade=back_to_name)
    new: SessionStore[ProfileV2] = backend.store(ProfileV2, upgrade=rename_name)
    by_old = await saved(old, ProfileV1(name="Ada"))
    by_new = await saved(new, ProfileV2(display_name="Grace"))
    loaded_new = await new.load(by_old.id)
    loaded_old = await old.load(by_new.id)
    assert loaded_new is not None
    assert loaded_old is not None
    assert loaded_new.data == ProfileV2(display_name="Ada")
    assert loaded_old.data == ProfileV1(name="Grace")


async def test_an_upgrade_that_fails_or_gives_bad_data_is_a_corrupt_record(
    backend: Backend,
) -> None:
    old: SessionStore[CartV1] = backend.store(CartV1)
    written = await saved(old, CartV1(user="ada"))

    def broken(value: Any) -> Any:
        raise KeyError("no such field")

    upgrades: list[Callable[[Any], Any]] = [broken, lambda value: value, lambda value: object()]
    for upgrade in upgrades:
        new: SessionStore[CartV2] = backend.store(CartV2, upgrade=upgrade)
        with pytest.raises(StoreCorruptError, match="upgrade"):
            await new.load(written.id)


def test_the_upgrade_is_not_called_for_data_that_validates() -> None:
    calls: list[Any] = []

    def spy(value: Any) -> Any:
        calls.append(value)
        return value

    codec: SessionCodec[CartV1] = SessionCodec(CartV1, upgrade=spy)
    session = new_session(CartV1(user="ada"), EXPIRY, now=utc_now())
    assert codec.decode(codec.encode(session)) == Ok(session)
    assert codec.decode_data(codec.encode_data(session.data)) == Ok(session.data)
    assert calls == []
    assert isinstance(codec.decode(b"not json"), Err)  # garbage stays garbage
    assert isinstance(codec.decode(b"[1, 2]"), Err)
