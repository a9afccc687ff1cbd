"""What only the Redis store promises: its key layout, TTLs, corrupt records, round trips.

The shared contract (versions, conflicts, expiry, isolation, concurrency) runs against
Redis in ``test_store_contract.py``; faults are in ``test_redis_faults.py``.
"""

# pyright: reportPrivateUsage=false
# (tests of the module's internals, by name)

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio import Connection, ConnectionPool, Redis, RedisCluster

from typed_sessions import (
    Conflict,
    Err,
    Expiry,
    Ok,
    Session,
    SessionEncodeError,
    SessionId,
    SessionStore,
    StoreCorruptError,
    new_session,
    new_session_id,
    replace_data,
    utc_now,
)
from typed_sessions.core.ids import id_digest
from typed_sessions.stores import redis as redis_module
from typed_sessions.stores import redis_format, redis_save
from typed_sessions.stores.redis import OnCorrupt, RedisStore

from .conftest import FakeClock
from .redis_server import (
    delete_prefix,
    redis_server,
    require_cluster,
    require_redis,
    unique_prefix,
)

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]
Counted = tuple[RedisStore[Data], list[str]]


class Profile(BaseModel):
    user: str
    roles: list[str] = []


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


def make_store(client: Redis, prefix: str, on_corrupt: OnCorrupt = "raise") -> RedisStore[Data]:
    return RedisStore(client, dict[str, Any], prefix=prefix, on_corrupt=on_corrupt)


async def saved(store: RedisStore[Data], data: Data | None = None) -> Session[Data]:
    result = await store.save(
        new_session({"n": 0} if data is None else data, EXPIRY, now=utc_now())
    )
    assert isinstance(result, Ok)
    return result.value


async def test_is_a_session_store_for_typed_data(client: Redis, prefix: str) -> None:
    store: SessionStore[Profile] = RedisStore(client, Profile, prefix=prefix)
    session = new_session(Profile(user="ada", roles=["admin"]), EXPIRY, now=utc_now())
    result = await store.save(session)
    assert isinstance(result, Ok)
    loaded = await store.load(session.id)
    assert loaded is not None
    assert loaded.data == Profile(user="ada", roles=["admin"])
    assert loaded.version == 1
    loaded.data.roles.append("root")  # the caller's copy; the stored record is unchanged
    again = await store.load(session.id)
    assert again is not None
    assert again.data.roles == ["admin"]


async def test_keys_are_prefix_and_hash_never_the_raw_id(client: Redis, prefix: str) -> None:
    store = make_store(client, prefix)
    session = await saved(store)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    expected = prefix + hashlib.sha256(session.id.encode()).hexdigest()
    assert keys == [expected.encode()]
    assert store.key_for(session.id) == expected
    raw = await client.get(expected)
    assert isinstance(raw, bytes)
    assert session.id.encode() not in expected.encode() + raw  # not in the key, nor the value

    header, _, body = raw.partition(b"|")
    version, write_id = header.split(b" ")
    assert version == b"1"
    assert len(write_id) == 16
    assert int(write_id, 16) >= 0
    assert body.startswith(b'{"id":"",')  # the codec's JSON (no pickle), without the ID


def test_the_key_stays_the_hash_of_its_id_past_the_kept_digests() -> None:
    """key_for keeps recent digests: each key is still its own ID's, however many IDs."""
    store: RedisStore[dict[str, Any]] = RedisStore(Redis(), dict[str, Any], prefix="p:")
    ids = [f"id-{n}" for n in range(3000)] + ["id-5", "\udcff"]  # again; not UTF-8 alone
    for _ in range(2):
        for session_id in ids:
            digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
            assert store.key_for(SessionId(session_id)) == "p:" + digest


async def test_ttl_is_the_records_expires_at(client: Redis, prefix: str) -> None:
    store = make_store(client, prefix)
    now = utc_now()
    session = new_session({"n": 1}, Expiry(idle=timedelta(seconds=90)), now=now)
    assert isinstance(await store.save(session), Ok)
    ttl_ms = await client.pttl(store.key_for(session.id))
    assert 85_000 < ttl_ms <= 90_000
    touched = dataclasses.replace(session, version=1, expires_at=now + timedelta(seconds=300))
    assert isinstance(await store.save(touched), Ok)
    assert 295_000 < await client.pttl(store.key_for(session.id)) <= 300_000


async def test_saving_an_ended_record_leaves_a_short_tombstone(
    client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(client, prefix)
    first = await saved(store)
    ended = dataclasses.replace(first, expires_at=utc_now() - timedelta(seconds=1))
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    assert await store.save(ended) == Ok(dataclasses.replace(ended, version=2))
    key = store.key_for(first.id)
    tombstone = await client.get(key)  # no data, no ID: the version and the write ids
    assert isinstance(tombstone, bytes)
    assert tombstone.startswith(b"2 00000000000000aa,")
    assert redis_format.TOMBSTONE.match(tombstone)
    assert 0 < await client.pttl(key) <= redis_module.TOMBSTONE_SECONDS * 1000
    assert await store.load(first.id) is None  # reads as no session, not as corrupt
    # The same ending resent (a lost reply) is done; any other save finds no record.
    assert await store.save(ended) == Ok(dataclasses.replace(ended, version=2))
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000bb")
    assert await store.save(ended) == Err(Conflict(expected=1, found=None))
    touched = replace_data(first, {"n": 5}, now=utc_now())
    assert await store.save(touched) == Err(Conflict(expected=1, found=None))
    assert await store.load(first.id) is None  # an ended session is never revived


async def test_load_checks_expires_at_against_the_clock_too(client: Redis, prefix: str) -> None:
    """Native TTL is the rule; a clock ahead of Redis's still never sees an ended record."""
    session = await saved(make_store(client, prefix))
    late = FakeClock(utc_now() + EXPIRY.idle + timedelta(seconds=1))
    ahead: RedisStore[Data] = RedisStore(client, dict[str, Any], prefix=prefix, clock=late)
    assert await ahead.load(session.id) is None


async def test_encode_error_raises_before_any_write(client: Redis, prefix: str) -> None:
    store = make_store(client, prefix)
    session = new_session({"bad": object()}, EXPIRY, now=utc_now())
    with pytest.raises(SessionEncodeError):
        await store.save(session)
    assert await client.exists(store.key_for(session.id)) == 0


async def test_a_retried_save_is_recognised_not_a_conflict(
    client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client library may resend a save whose reply was lost: same write id -> Ok."""
    store = make_store(client, prefix)
    first = await saved(store)
    change = replace_data(first, {"n": 1}, now=utc_now())
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    once = await store.save(change)
    assert once == Ok(dataclasses.replace(change, version=2))
    assert await store.save(change) == once  # the resend: already done
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000bb")
    assert await store.save(change) == Err(Conflict(expected=1, found=2))  # another writer


async def test_a_retried_save_is_recognised_after_other_saves_came_in_between(
    client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resend comes after up to KEPT_WRITE_IDS - 1 other saves (whose requests read
    what it wrote): still done, not a conflict that a merge would apply a second time.
    An older resend, and any save of another write id, are conflicts."""
    store = make_store(client, prefix)
    first = await saved(store)
    change = replace_data(first, {"n": 1}, now=utc_now())
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    once = await store.save(change)
    assert once == Ok(dataclasses.replace(change, version=2))
    latest = dataclasses.replace(change, version=2)
    for n in range(redis_format.KEPT_WRITE_IDS - 1):  # others save on top, each in turn
        monkeypatch.setattr(redis_module, "new_write_id", lambda n=n: f"{n:016x}")
        result = await store.save(replace_data(latest, {"n": 10 + n}, now=utc_now()))
        assert isinstance(result, Ok)
        latest = result.value
        monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
        assert await store.save(change) == once  # the resend: already done
    raw = await client.get(store.key_for(first.id))
    assert isinstance(raw, bytes)
    assert raw.startswith(b"%d 0000000000000002,0000000000000001," % latest.version)
    assert raw.index(b"|") == len(b"5 ") + 17 * redis_format.KEPT_WRITE_IDS - 1
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000bb")
    assert await store.save(change) == Err(Conflict(expected=1, found=latest.version))
    # One save more: the first write id is no longer kept, and its resend is a conflict.
    result = await store.save(replace_data(latest, {"n": 99}, now=utc_now()))
    assert isinstance(result, Ok)
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    assert await store.save(change) == Err(Conflict(expected=1, found=latest.version + 1))
    loaded = await store.load(first.id)
    assert loaded is not None
    assert loaded.data == {"n": 99}


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


async def test_prefixes_isolate_stores(client: Redis, prefix: str) -> None:
    one = make_store(client, prefix + "one:")
    two = make_store(client, prefix + "two:")
    session = await saved(one)
    assert await two.load(session.id) is None
    assert isinstance(
        await two.save(new_session({"n": 9}, EXPIRY, now=utc_now(), session_id=session.id)), Ok
    )
    loaded = await one.load(session.id)
    assert loaded is not None
    assert loaded.data == {"n": 0}


# -- corrupt records ---------------------------------------------------------------------

GARBAGE: list[bytes] = [
    b"\xff\xfe\x00garbage",
    b"",
    b"{}",
    b"1 0123456789abcdef|not json",
    b'1 0123456789abcdef|{"id": "x"}',
    b"0 0123456789abcdef|{}",
    # Not quite a tombstone: the script and load must both call these corrupt.
    b"2 ABC~junk",
    b"2 0123456789ABCDEF~",
    b'2 0123456789abcdef~{"n": 1}',
]


@pytest.mark.parametrize("value", GARBAGE)
async def test_garbage_raises_store_corrupt_error(client: Redis, prefix: str, value: bytes) -> None:
    store = make_store(client, prefix)
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    key = store.key_for(session.id)
    await client.set(key, value, ex=60)
    with pytest.raises(StoreCorruptError):
        await store.load(session.id)
    if not value.startswith(b"1 "):  # an unreadable header also stops a save
        with pytest.raises(StoreCorruptError):
            await store.save(session)
    assert await client.get(key) == value  # nothing touched


async def test_a_record_that_names_an_id_is_corrupt(client: Redis, prefix: str) -> None:
    """Stored records carry no ID; one that does was not written by this store."""
    store = make_store(client, prefix)
    session = await saved(store)
    raw = await client.get(store.key_for(session.id))
    assert isinstance(raw, bytes)
    await client.set(store.key_for(session.id), raw.replace(b'"id":""', b'"id":"x"'), ex=60)
    with pytest.raises(StoreCorruptError, match="does not match"):
        await store.load(session.id)


async def test_a_record_of_another_data_model_is_corrupt(client: Redis, prefix: str) -> None:
    old = await saved(make_store(client, prefix), {"n": "not a profile"})
    new: RedisStore[Profile] = RedisStore(client, Profile, prefix=prefix)
    with pytest.raises(StoreCorruptError):
        await new.load(old.id)


async def test_a_key_of_another_type_is_corrupt(client: Redis, prefix: str) -> None:
    store = make_store(client, prefix)
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    await client.hset(store.key_for(session.id), "v", "1")
    with pytest.raises(StoreCorruptError):
        await store.load(session.id)
    with pytest.raises(StoreCorruptError):
        await store.save(session)


async def test_discard_mode_treats_garbage_as_no_session(
    client: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(client, prefix, on_corrupt="discard")
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    key = store.key_for(session.id)
    await client.set(key, b"\x80garbage", ex=60)
    with caplog.at_level(logging.WARNING, logger="typed_sessions.stores.redis"):
        assert await store.load(session.id) is None
    assert await client.exists(key) == 0
    assert f"[sid#{id_digest(session.id)}]" in caplog.text  # the usual short digest
    assert key not in caplog.text
    assert session.id not in caplog.text
    # A save over garbage (or another type) written since: a new record takes the key.
    await client.hset(key, "v", "1")
    assert await store.save(session) == Ok(dataclasses.replace(session, version=1))
    await client.set(key, b"garbage", ex=60)
    assert await store.save(dataclasses.replace(session, version=1)) == Err(
        Conflict(expected=1, found=None)
    )
    await client.hset(prefix + "other", "v", "1")
    assert await store.load(prefix + "other") is None  # type: ignore[arg-type]  # any text


async def test_text_clients_work_and_garbage_is_still_corrupt(client: Redis, prefix: str) -> None:
    text = Redis.from_url(require_redis(), decode_responses=True)
    try:
        store: RedisStore[Data] = RedisStore(text, dict[str, Any], prefix=prefix)
        session = await saved(store, {"name": "Zoë ✓"})
        loaded = await store.load(session.id)
        assert loaded is not None
        assert loaded.data == {"name": "Zoë ✓"}
        assert isinstance(await store.save(replace_data(loaded, {"n": 1}, now=utc_now())), Ok)
        await client.set(store.key_for(session.id), b"1 0123456789abcdef|\xff\xfe", ex=60)
        with pytest.raises(StoreCorruptError):
            await store.load(session.id)
        assert await text.ping()  # the connection is still in a good state
    finally:
        await text.aclose()


# -- construction ------------------------------------------------------------------------


async def test_invalid_configuration_raises_at_construction(client: Redis) -> None:
    with pytest.raises(ValueError, match="timeout"):
        RedisStore(client, dict[str, Any], timeout=0)
    with pytest.raises(ValueError, match="on_corrupt"):
        RedisStore(client, dict[str, Any], on_corrupt="ignore")  # type: ignore[call-overload]  # checked at run time


async def test_from_url_owns_its_client_and_a_given_client_stays_open(
    client: Redis, prefix: str
) -> None:
    async with RedisStore[Data].from_url(require_redis(), Data, prefix=prefix) as owned:
        session = await saved(owned)
        assert await owned.load(session.id) is not None
    assert isinstance(owned.client, Redis)
    assert owned.client.connection_pool.connection_kwargs["socket_timeout"] == owned.timeout
    borrowed = make_store(client, prefix)
    await borrowed.aclose()
    assert await borrowed.load(session.id) is not None  # the user's client was not closed


def test_header_bound_matches_the_script() -> None:
    assert f"'GETRANGE', KEYS[1], 0, {redis_format.HEADER_MAX - 1})" in redis_save.SAVE_SCRIPT
    longest = b"%d %s|" % (2**64, b",".join([b"f" * 16] * redis_format.KEPT_WRITE_IDS))
    assert len(longest) <= redis_format.HEADER_MAX
    assert redis_format.HEADER.match(longest) is not None


def test_write_ids_are_distinct_across_calls_and_forked_workers() -> None:
    """Unique per save call, whatever the app does with the global ``random``: workers
    that each seed it alike (for reproducibility) still draw different write ids."""
    import os
    import random
    import re

    ids = {redis_save.new_write_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{16}", write_id) for write_id in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        random.seed(1234)
        os.write(write, redis_save.new_write_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        in_child = pipe.read()
    state = random.getstate()
    try:
        random.seed(1234)
        assert re.fullmatch(r"[0-9a-f]{16}", in_child)
        assert in_child != redis_save.new_write_id()  # the child reseeded, not a copy
        random.seed(1234)
        first = redis_save.new_write_id()
        random.seed(1234)
        assert redis_save.new_write_id() != first  # the global seed plays no part
    finally:
        random.setstate(state)


# -- round trips -------------------------------------------------------------------------


@asynccontextmanager
async def counting_store(
    url: str, prefix: str
) -> AsyncGenerator[tuple[RedisStore[Data], list[str]], None]:
    """A store whose every command sent over the wire is recorded by name."""
    sent: list[str] = []

    class CountingConnection(Connection):
        async def send_command(self, *args: Any, **kwargs: Any) -> None:
            sent.append(str(args[0]).upper())
            await super().send_command(*args, **kwargs)

    pool = ConnectionPool.from_url(url, connection_class=CountingConnection)
    counting = Redis(connection_pool=pool)
    await counting.ping()  # connect now: the hand-shake is not part of any store call
    sent.clear()
    try:
        yield RedisStore(counting, dict[str, Any], prefix=prefix), sent
    finally:
        await counting.aclose(close_connection_pool=True)


@pytest.fixture
async def counted(prefix: str) -> AsyncIterator[Counted]:
    async with counting_store(require_redis(), prefix) as made:
        yield made


async def test_one_round_trip_per_call(counted: Counted) -> None:
    store, sent = counted
    session = new_session({"n": 0}, EXPIRY, now=utc_now())
    await store.save(session)  # may load the script on this server first (NOSCRIPT -> EVAL)
    sent.clear()

    assert await store.load(session.id) is not None
    assert sent == ["GET"]
    sent.clear()
    assert await store.load(new_session(Data(), EXPIRY, now=utc_now()).id) is None
    assert sent == ["GET"]
    sent.clear()
    loaded = await store.load(session.id)
    assert loaded is not None
    sent.clear()
    assert isinstance(await store.save(replace_data(loaded, {"n": 1}, now=utc_now())), Ok)
    assert sent == ["EVALSHA"]
    sent.clear()
    assert isinstance(await store.save(replace_data(loaded, {"n": 2}, now=utc_now())), Err)
    assert sent == ["EVALSHA"]
    sent.clear()
    await store.delete(session.id)
    assert sent == ["DEL"]


async def test_script_is_sent_once_when_the_server_lacks_it() -> None:
    with redis_server() as server:  # a fresh server of our own: no script cached yet
        async with counting_store(server.url, "s:") as (store, sent):
            assert isinstance(await store.save(new_session({}, EXPIRY, now=utc_now())), Ok)
            assert sent == ["EVALSHA", "EVAL"]  # NOSCRIPT, then the script itself (now cached)
            sent.clear()
            assert isinstance(await store.save(new_session({}, EXPIRY, now=utc_now())), Ok)
            assert sent == ["EVALSHA"]


async def test_a_burst_beyond_the_pool_waits_for_connections(prefix: str) -> None:
    """``from_url`` makes a blocking pool: 300 calls on 10 connections all succeed."""
    url = require_redis()
    async with RedisStore[Data].from_url(url, Data, prefix=prefix, max_connections=10) as store:
        sessions = [new_session({"i": i}, EXPIRY, now=utc_now()) for i in range(300)]
        results = await asyncio.gather(*(store.save(s) for s in sessions))
        assert all(isinstance(r, Ok) for r in results)
        loaded = await asyncio.gather(*(store.load(s.id) for s in sessions))
        assert [s.data["i"] for s in loaded if s is not None] == list(range(300))


async def test_cluster_spreads_keys_over_nodes_and_every_call_works() -> None:
    """Single-key commands only: every call goes to the node owning the key's slot."""
    cluster = RedisCluster.from_url(require_cluster())
    prefix = unique_prefix()
    try:
        store: RedisStore[Data] = RedisStore(cluster, Data, prefix=prefix)
        sessions = [await saved(store, {"i": i}) for i in range(30)]
        nodes = [cluster.get_node_from_key(store.key_for(session.id)) for session in sessions]
        owners = {node.name for node in nodes if node is not None}
        assert len(owners) == 3  # 30 random keys land on all three nodes
        for session in sessions:
            loaded = await store.load(session.id)
            assert loaded == session
            changed = await store.save(replace_data(session, {"i": -1}, now=utc_now()))
            assert isinstance(changed, Ok)
            assert await store.save(session) == Err(Conflict(expected=1, found=2))
            await store.delete(session.id)
            assert await store.load(session.id) is None
    finally:
        await cluster.aclose()


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the old loop's connection
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_each_new_event_loop_connects_anew_and_every_call_works() -> None:
    """Found by audits: a client's pooled connection made on a loop closed since (a
    first ``asyncio.run``, one test client after another) failed its next call, after
    sending it (a save done, answered as failed): every other request of a
    ``TestClient`` used without ``with`` answered 503. The store now forgets the
    pool's connections when the last call's loop is closed."""
    client = Redis.from_url(require_redis())
    prefix = unique_prefix()
    store: RedisStore[Data] = RedisStore(client, dict[str, Any], prefix=prefix)
    made = new_session({"n": 0}, Expiry(), now=utc_now())

    async def step(session: Session[Data]) -> Session[Data]:
        assert await store.load(session.id) == (None if session is made else session)
        saved = await store.save(replace_data(session, {"n": session.data["n"] + 1}, now=utc_now()))
        assert isinstance(saved, Ok)
        return saved.value

    session = made
    for n in range(1, 5):  # each on a loop of its own, the last one closed
        session = asyncio.run(step(session))
        assert session.data == {"n": n}

    async def last() -> None:
        loaded = await store.load(session.id)
        assert loaded is not None
        assert (loaded.data, loaded.version) == ({"n": 4}, 4)
        await delete_prefix(client, prefix)
        await client.aclose()

    asyncio.run(last())
    gc.collect()  # the first loops' connections, which cannot be closed: warned of here


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the old loop's connections
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_stores_sharing_a_client_forget_its_connections_once_per_loop() -> None:
    """Found by a review: each store forgot the shared pool's connections on its own
    first call on a new loop, the second one while the first store's call was in
    flight there: that call failed (``KeyError`` in redis-py's release, a 500)."""
    client = Redis.from_url(require_redis())
    prefix = unique_prefix()
    a: RedisStore[Data] = RedisStore(client, dict[str, Any], prefix=prefix + "a:")
    b: RedisStore[Data] = RedisStore(client, dict[str, Any], prefix=prefix + "b:")
    made = new_session({"n": 1}, Expiry(), now=utc_now())

    async def first() -> None:
        assert isinstance(await a.save(made), Ok)
        assert await b.load(made.id) is None

    async def second() -> None:
        in_flight = asyncio.create_task(a.load(made.id))
        for _ in range(3):
            await asyncio.sleep(0)  # its command sent, its reply awaited
        assert await b.load(made.id) is None  # b's first call on this loop
        loaded = await in_flight
        assert loaded is not None
        assert loaded.data == {"n": 1}
        await delete_prefix(client, prefix)
        await client.aclose()

    asyncio.run(first())
    asyncio.run(second())
    gc.collect()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_store_made_from_a_url_gets_a_new_pool_on_each_new_loop() -> None:
    """Found by a review: the ``BlockingConnectionPool`` of :meth:`from_url` keeps a
    condition bound to the first loop on which a burst waited; on a later loop every
    burst that must wait failed. Such a store's own client is made anew instead."""
    store: RedisStore[Data] = RedisStore.from_url(
        require_redis(), dict[str, Any], prefix=unique_prefix(), max_connections=2
    )

    async def burst() -> None:
        await store.delete(new_session_id())  # the first call: its method looked up first
        assert (
            await asyncio.gather(*(store.load(new_session_id()) for _ in range(10))) == [None] * 10
        )

    for _ in range(3):  # each on a loop of its own, each burst waiting for connections
        asyncio.run(burst())

    async def close() -> None:
        await store.aclose()

    asyncio.run(close())
    gc.collect()
