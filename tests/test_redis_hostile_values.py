"""RedisStore against values it did not write, in its own keyspace: each gets a store
outcome (``StoreCorruptError``, ``StoreUnavailableError`` or "no session"), never a raw
exception, and a failed save writes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from typed_sessions import (
    Expiry,
    Ok,
    Session,
    StoreCorruptError,
    StoreUnavailableError,
    new_session,
    replace_data,
    session_handle,
    utc_now,
)
from typed_sessions.stores.redis import RedisStore

from .redis_server import delete_prefix, require_redis, unique_prefix

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]
NOT_TEXT = b"\xff\xfe not text"


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    made = Redis.from_url(require_redis())
    yield made
    await made.aclose()


@pytest.fixture
async def text() -> AsyncIterator[Redis]:
    made = Redis.from_url(require_redis(), decode_responses=True)
    yield made
    await made.aclose()


@pytest.fixture
async def prefix(raw: Redis) -> AsyncIterator[str]:
    chosen = unique_prefix()
    yield chosen
    await delete_prefix(raw, chosen)


async def sign_in(store: RedisStore[Data], subject: str) -> Session[Data]:
    result = await store.save(new_session({}, EXPIRY, now=utc_now(), subject=subject))
    assert isinstance(result, Ok)
    return result.value


async def test_a_text_client_listing_a_value_that_is_not_text_gets_a_corrupt_store(
    raw: Redis, text: Redis, prefix: str
) -> None:
    store = RedisStore(text, Data, prefix=prefix)
    first = await sign_in(store, "ada")
    await sign_in(store, "ada")
    await raw.set(store.key_for(first.id), NOT_TEXT)
    with pytest.raises(StoreCorruptError):
        await store.load(first.id)
    with pytest.raises(StoreCorruptError, match="not UTF-8"):
        await store.list_subject("ada")


async def test_a_text_client_capping_past_a_value_that_is_not_text_gets_a_corrupt_store(
    raw: Redis, text: Redis, prefix: str
) -> None:
    store = RedisStore(text, Data, prefix=prefix, max_per_subject=1)
    first = await sign_in(store, "ada")
    await raw.set(store.key_for(first.id), NOT_TEXT, ex=600)
    with pytest.raises(StoreCorruptError):
        await store.save(new_session({}, EXPIRY, now=utc_now(), subject="ada"))


async def test_an_indexed_save_over_a_foreign_index_key_writes_nothing(
    raw: Redis, prefix: str
) -> None:
    """A script's writes are not undone when a later command fails: the index's type is
    checked before the record is written."""
    store = RedisStore(raw, Data, prefix=prefix)
    await raw.set(store.index_key_for("bob"), "not a sorted set")
    session = new_session({"n": 1}, EXPIRY, now=utc_now(), subject="bob")
    with pytest.raises(StoreUnavailableError, match="WRONGTYPE"):
        await store.save(session)
    assert await raw.exists(store.key_for(session.id)) == 0


async def test_a_record_with_times_without_an_offset_is_corrupt(raw: Redis, prefix: str) -> None:
    store = RedisStore(raw, Data, prefix=prefix)
    session = await sign_in(store, "ada")
    key = store.key_for(session.id)
    value = await raw.get(key)
    assert isinstance(value, bytes)
    assert b'Z"' in value
    await raw.set(key, value.replace(b'Z"', b'"'), ex=600)
    with pytest.raises(StoreCorruptError, match="UTC offset"):
        await store.load(session.id)
    assert await store.list_subject("ada") == []  # unreadable: listed as dead
    discarding = RedisStore(raw, Data, prefix=prefix, on_corrupt="discard")
    assert await discarding.load(session.id) is None


@pytest.mark.parametrize(
    ("written", "spoilt", "reason"),
    [
        (b'"subject":"ada"', b'"subject":"ada\\n"', "subject"),
        (b'"subject":"ada"', b'"subject":""', "subject"),
        (b'"version":1', b'"version":9223372036854775807', "version"),
    ],
)
async def test_a_record_the_library_could_not_have_written_is_corrupt(
    raw: Redis, prefix: str, written: bytes, spoilt: bytes, reason: str
) -> None:
    """A subject check_subject refuses, a version at the 64-bit limit: each loaded, then
    failed at the next save (a 500)."""
    store = RedisStore(raw, Data, prefix=prefix)
    session = await sign_in(store, "ada")
    key = store.key_for(session.id)
    value = await raw.get(key)
    assert isinstance(value, bytes)
    assert written in value
    await raw.set(key, value.replace(written, spoilt, 1), ex=600)
    with pytest.raises(StoreCorruptError, match=reason):
        await store.load(session.id)
    assert await store.list_subject("ada") == []  # unreadable: listed as dead


async def test_ending_everything_passes_over_a_foreign_key_under_the_prefix(
    raw: Redis, prefix: str
) -> None:
    store = RedisStore(raw, Data, prefix=prefix)
    session = await sign_in(store, "ada")
    await raw.set(prefix + "subject:{not-ours}", "a string")
    assert await store.end_all() == 1
    assert await store.load(session.id) is None
    assert await raw.get(prefix + "subject:{not-ours}") == b"a string"


async def test_ending_everything_over_a_key_name_that_is_not_text_is_corrupt(
    text: Redis, raw: Redis, prefix: str
) -> None:
    """A ``decode_responses`` client cannot read a key name that is not UTF-8 (another
    program's, under the prefix): ``StoreCorruptError`` saying so, not redis-py's
    ``UnicodeDecodeError``."""
    store = RedisStore(text, Data, prefix=prefix)
    await sign_in(store, "ada")
    foreign = prefix.encode() + b"subject:{\xff\xfe}"
    await raw.zadd(foreign, {b"x": 1})
    with pytest.raises(StoreCorruptError, match="not UTF-8 text"):
        await store.end_all()
    await raw.delete(foreign)
    assert await store.end_all() == 1


async def test_a_session_key_of_another_type_is_listed_as_dead(raw: Redis, prefix: str) -> None:
    """Another program made one session's key a hash: that session is not listed (as an
    unreadable value is not), and the subject's others still are, where the whole list
    used to fail with ``StoreUnavailableError``."""
    store = RedisStore(raw, Data, prefix=prefix)
    good = await sign_in(store, "kim")
    bad = await sign_in(store, "kim")
    key = store.key_for(bad.id)
    await raw.delete(key)
    await raw.hset(key, "x", "y")
    listed = await store.list_subject("kim")
    assert [info.handle for info in listed] == [session_handle(good.id)]
    assert await store.end_subject("kim") == 1
    assert await store.load(good.id) is None
    await raw.delete(key)


ID = b"0123456789abcdef"
# Headers that load calls corrupt (redis_format.HEADER refuses them), and so must the
# save script: a first pattern for several ids accepted them.
COMMA_GARBAGE: list[bytes] = [
    b"2 ,,,|{}",
    b"2 " + ID + b",|{}",
    b"2 ," + ID + b"|{}",
    b"2 " + b",".join([ID] * 5) + b"|{}",  # five ids: more than KEPT_WRITE_IDS
    b"2 " + ID + b"," + ID.upper() + b"|{}",
]


@pytest.mark.parametrize("value", COMMA_GARBAGE)
async def test_the_script_and_load_both_refuse_a_malformed_list_of_ids(
    raw: Redis, prefix: str, value: bytes
) -> None:
    """As for any garbage: the script and load both call it corrupt, and nothing is
    written (a first version of the script answered a conflict with version 2)."""
    store = RedisStore(raw, Data, prefix=prefix)
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    key = store.key_for(session.id)
    await raw.set(key, value, ex=60)
    with pytest.raises(StoreCorruptError):
        await store.load(session.id)
    with pytest.raises(StoreCorruptError):
        await store.save(session)
    assert await raw.get(key) == value


@pytest.mark.parametrize("value", COMMA_GARBAGE)
async def test_discarding_a_new_record_overwrites_a_malformed_list_of_ids(
    raw: Redis, prefix: str, value: bytes
) -> None:
    """on_corrupt="discard": a save of a new record overwrites it, as any garbage."""
    store = RedisStore(raw, Data, prefix=prefix, on_corrupt="discard")
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    await raw.set(store.key_for(session.id), value, ex=60)
    assert await store.save(session) == Ok(dataclasses.replace(session, version=1))


@pytest.mark.parametrize("bad_id", [ID.upper(), ID[:15], ID + b"0"])
async def test_a_save_never_copies_an_id_load_would_refuse(
    raw: Redis, prefix: str, bad_id: bytes
) -> None:
    """A header id that load refuses (uppercase, not 16 digits): the save refuses it
    too, and never acknowledges a write whose value load would then call corrupt."""
    store = RedisStore(raw, Data, prefix=prefix)
    first = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
    assert isinstance(first, Ok)
    key = store.key_for(first.value.id)
    stored = await raw.get(key)
    assert isinstance(stored, bytes)
    head, bar, body = stored.partition(b"|")
    await raw.set(key, head.split(b" ")[0] + b" " + bad_id + bar + body, ex=600)
    with pytest.raises(StoreCorruptError):
        await store.save(replace_data(first.value, {"n": 1}, now=utc_now()))


async def test_the_readiness_probe_leaves_a_key_it_did_not_write_alone(
    raw: Redis, prefix: str
) -> None:
    """ping() writes prefix + "ready" only where nothing is (found by a review)."""
    store = RedisStore(raw, Data, prefix=prefix)
    await raw.hset(prefix + "ready", mapping={"owner": "another component"})
    await store.ping()
    assert await raw.type(prefix + "ready") == b"hash"
    assert await raw.pttl(prefix + "ready") == -1  # no expiry put on it
    await raw.delete(prefix + "ready")
    await store.ping()
    assert 0 < await raw.pttl(prefix + "ready") <= 1000


@pytest.mark.parametrize(
    "url",
    [
        "rediss://127.0.0.1:6379/0?ssl_cert_reqs=requried",  # a misspelt value
        "redis://127.0.0.1:6379/0?protocol=4",
    ],
)
def test_from_url_refuses_a_bad_option_value_with_its_value_error(url: str) -> None:
    """redis-py's connection refuses these values with its own exceptions, which escaped
    from_url (found by a review)."""
    with pytest.raises(ValueError, match="invalid Redis URL"):
        RedisStore.from_url(url, Data, prefix="unused:")
