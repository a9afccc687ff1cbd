"""RedisStore's value header keeps the write ids of the last saves: the save script
reads exactly the headers load reads, and a resend is recognised across an ending too.
Found by a review of the change that made the header keep several ids."""

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
    StoreCorruptError,
    new_session,
    replace_data,
    utc_now,
)
from typed_sessions.stores import redis as redis_module
from typed_sessions.stores.redis import RedisStore

from .redis_server import delete_prefix, require_redis, unique_prefix

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]
ID = b"0123456789abcdef"


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    made = Redis.from_url(require_redis())
    yield made
    await made.aclose()


@pytest.fixture
async def prefix(client: Redis) -> AsyncIterator[str]:
    chosen = unique_prefix()
    yield chosen
    await delete_prefix(client, chosen)


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
    client: Redis, prefix: str, value: bytes
) -> None:
    """As for any garbage: the script and load both call it corrupt, and nothing is
    written (a first version of the script answered a conflict with version 2)."""
    store = RedisStore(client, Data, prefix=prefix)
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    key = store.key_for(session.id)
    await client.set(key, value, ex=60)
    with pytest.raises(StoreCorruptError):
        await store.load(session.id)
    with pytest.raises(StoreCorruptError):
        await store.save(session)
    assert await client.get(key) == value


@pytest.mark.parametrize("value", COMMA_GARBAGE)
async def test_discarding_a_new_record_overwrites_a_malformed_list_of_ids(
    client: Redis, prefix: str, value: bytes
) -> None:
    """on_corrupt="discard": a save of a new record overwrites it, as any garbage."""
    store = RedisStore(client, Data, prefix=prefix, on_corrupt="discard")
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    await client.set(store.key_for(session.id), value, ex=60)
    assert await store.save(session) == Ok(dataclasses.replace(session, version=1))


@pytest.mark.parametrize("bad_id", [ID.upper(), ID[:15], ID + b"0"])
async def test_a_save_never_copies_an_id_load_would_refuse(
    client: Redis, prefix: str, bad_id: bytes
) -> None:
    """A header id that load refuses (uppercase, not 16 digits): the save refuses it
    too, and never acknowledges a write whose value load would then call corrupt."""
    store = RedisStore(client, Data, prefix=prefix)
    first = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
    assert isinstance(first, Ok)
    key = store.key_for(first.value.id)
    raw = await client.get(key)
    assert isinstance(raw, bytes)
    head, bar, body = raw.partition(b"|")
    await client.set(key, head.split(b" ")[0] + b" " + bad_id + bar + body, ex=600)
    with pytest.raises(StoreCorruptError):
        await store.save(replace_data(first.value, {"n": 1}, now=utc_now()))


async def test_a_resend_is_recognised_across_an_ending_in_between(
    client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save in between ends the session (the old record of a rotation): the
    tombstone keeps the earlier ids too, so the applied resend is done, not a conflict
    with no record (which the adapters would answer with 409)."""
    store = RedisStore(client, Data, prefix=prefix)
    first = await store.save(new_session({"n": 0}, EXPIRY, now=utc_now()))
    assert isinstance(first, Ok)
    change = replace_data(first.value, {"n": 1}, now=utc_now())
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    once = await store.save(change)  # applied; its reply "lost"
    assert isinstance(once, Ok)
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000bb")
    ending = dataclasses.replace(once.value, expires_at=utc_now() - timedelta(seconds=1))
    assert isinstance(await store.save(ending), Ok)  # another request ends it (rotation)
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    assert await store.save(change) == once  # the resend: applied, one save in between
