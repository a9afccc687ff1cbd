"""What only the Redis store promises for subjects: its index layout, round trips that do
not grow with a subject's sessions, the order of its steps on Cluster, and its failures.

The shared SubjectIndex contract runs against Redis, Cluster and Valkey in
``test_subject_contract.py``.
"""

# pyright: reportPrivateUsage=false
# (the order of the store's steps is checked through its internals, by name)

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeGuard

import pytest
from redis.asyncio import BlockingConnectionPool, Connection, Redis, RedisCluster

from typed_sessions import (
    Device,
    Expiry,
    Ok,
    Session,
    SessionCodec,
    SessionStore,
    StoreUnavailableError,
    new_session,
    session_handle,
    utc_now,
)
from typed_sessions.stores import redis as redis_module
from typed_sessions.stores import redis_index, redis_scripts
from typed_sessions.stores.operations import move_session
from typed_sessions.stores.redis import RedisStore

from .conftest import FakeClock
from .redis_server import delete_prefix, free_port, require_cluster, require_redis, unique_prefix
from .stores import HARNESSES

pytestmark = pytest.mark.anyio
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
Data = dict[str, Any]


def is_redis(store: SessionStore[Data]) -> TypeGuard[RedisStore[Data]]:
    """A Redis store (of the data type every harness store holds)."""
    return isinstance(store, RedisStore)


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    made = Redis.from_url(require_redis())
    yield made
    await made.aclose()


@pytest.fixture
async def store(client: Redis) -> AsyncIterator[RedisStore[Data]]:
    prefix = unique_prefix()
    yield RedisStore(client, Data, prefix=prefix)
    await delete_prefix(client, prefix)


async def sign_in(
    store: RedisStore[Data], subject: str | None, data: Data | None = None
) -> Session[Data]:
    made = new_session(data or {}, EXPIRY, now=utc_now(), subject=subject)
    result = await store.save(made)
    assert isinstance(result, Ok)
    return result.value


async def sign_in_many(store: RedisStore[Data], subject: str, count: int) -> list[Session[Data]]:
    sessions: list[Session[Data]] = []
    for start in range(0, count, 50):
        batch = [sign_in(store, subject) for _ in range(start, min(start + 50, count))]
        sessions.extend(await asyncio.gather(*batch))
    return sessions


# -- layout ------------------------------------------------------------------------------


async def test_the_index_holds_no_subject_and_no_session_id(
    client: Redis, store: RedisStore[Data]
) -> None:
    session = await sign_in(store, "ada@example.com")
    key = store.index_key_for("ada@example.com")
    digest = hashlib.sha256(b"ada@example.com").hexdigest()
    assert key == f"{store.prefix}subject:{{{digest}}}"
    members = await client.zrange(key, 0, -1, withscores=True)
    session_key = store.key_for(session.id)
    member = f"{session_handle(session.id)}:{session_key.removeprefix(store.prefix)}"
    assert members == [
        (member.encode(), float(redis_index.epoch_ms(session.expires_at, ceil=True)))
    ]
    keys = {k async for k in client.scan_iter(match=store.prefix + "*")}
    assert keys == {key.encode(), session_key.encode()}
    for name in keys:
        assert b"ada@example.com" not in name
        assert session.id.encode() not in name
    assert session.id.encode() not in member.encode()
    # The index lives as long as its latest session, and a little more; not forever.
    ttl = await client.pttl(key)
    left = (session.expires_at - utc_now()) / timedelta(milliseconds=1)
    assert left < ttl <= left + 1000 + 50


async def test_entries_whose_time_passed_go_on_the_next_save(
    client: Redis, store: RedisStore[Data]
) -> None:
    short = Expiry(idle=timedelta(milliseconds=300), absolute=timedelta(milliseconds=300))
    for _ in range(3):
        result = await store.save(new_session({}, short, now=utc_now(), subject="ada"))
        assert isinstance(result, Ok)
    assert await client.zcard(store.index_key_for("ada")) == 3
    await asyncio.sleep(0.4)
    await sign_in(store, "ada")  # a save of that subject sweeps it: no list needed
    assert await client.zcard(store.index_key_for("ada")) == 1


async def test_ending_checks_the_records_own_subject(
    client: Redis, store: RedisStore[Data]
) -> None:
    """A stale or forged entry in ada's index cannot end bob's session, not even one whose
    data holds what ada's record would (the check reads the record's own field)."""
    decoy = {"nested": {"x": 1, "subject": "ada", "auth_time": None}, "subject": "ada"}
    bobs = await sign_in(store, "bob", decoy)
    anonymous = await sign_in(store, None, {"s": ',"subject":"ada","auth_time":'})
    adas_key = store.index_key_for("ada")
    for session in (bobs, anonymous):
        await client.zadd(adas_key, {store.index_member(session.id): 2**50})
    handle = session_handle(bobs.id)
    assert await store.end_subject_session("ada", handle) is False
    assert await store.end_subject("ada") == 0
    assert await store.list_subject("ada") == []
    assert await store.load(bobs.id) == bobs
    assert await store.load(anonymous.id) == anonymous
    assert await client.zcard(adas_key) == 0  # found to be others': dropped


async def test_keys_and_members_another_program_wrote_that_are_not_utf8(
    client: Redis, store: RedisStore[Data]
) -> None:
    """Read back, they were sent again through redis-py's strict encoder, which raised a
    bare UnicodeEncodeError (an audit's case), also from a save over the cap after its
    record was stored. Now a foreign member is a dead entry, dropped like any other."""
    foreign = b"\xff\xfe:" + b"x" * 10
    ada = await sign_in(store, "ada")
    index = store.index_key_for("ada")
    await client.zadd(index, {foreign: 2**50})
    await client.zadd(store.prefix.encode() + b"subject:{\xfe}", {b"a\xff": 2**50})
    assert [info.handle for info in await store.list_subject("ada")] == [session_handle(ada.id)]
    assert await client.zcard(index) == 1  # the foreign member: dropped
    await client.zadd(index, {foreign: 2**50})
    capped = RedisStore(client, Data, prefix=store.prefix, max_per_subject=1)
    newer = await sign_in(capped, "ada")  # over the cap: ada's first session ends
    assert (await store.load(ada.id), await client.zcard(index)) == (None, 1)
    await client.zadd(index, {foreign: 2**50})
    assert await store.end_subject("ada", keep=newer.id) == 0
    assert await store.end_all() == 1
    assert await store.load(newer.id) is None


@pytest.mark.parametrize(
    "subject",
    ['a"quoted"\\subject', "ünïcödé \U0001d518 ✓", "'); DROP TABLE sessions; --", "x" * 256],
)
async def test_any_valid_subject_is_found_and_ended(store: RedisStore[Data], subject: str) -> None:
    sessions = [await sign_in(store, subject) for _ in range(2)]
    assert {i.handle for i in await store.list_subject(subject)} == {
        session_handle(s.id) for s in sessions
    }
    assert await store.end_subject_session(subject, session_handle(sessions[0].id)) is True
    assert await store.end_subject(subject) == 1


async def test_a_client_that_decodes_responses_works_the_same() -> None:
    made = Redis.from_url(require_redis(), decode_responses=True)
    store: RedisStore[Data] = RedisStore(made, Data, prefix=unique_prefix())
    try:
        sessions = [await sign_in(store, "ada") for _ in range(3)]
        assert len(await store.list_subject("ada")) == 3
        assert await store.end_subject_session("ada", session_handle(sessions[0].id))
        assert await store.end_subject("ada", keep=sessions[1].id) == 1
        assert await store.end_all() == 1
    finally:
        await delete_prefix(made, store.prefix)
        await made.aclose()


# -- round trips -------------------------------------------------------------------------


@asynccontextmanager
async def counting_store(
    prefix: str, **options: Any
) -> AsyncGenerator[tuple[RedisStore[Data], list[int]], None]:
    """A store whose every write to a connection (one round trip) is counted, but the
    pages of a ``SCAN`` (their number depends on the whole keyspace of the server)."""
    sent = [0]

    class CountingConnection(Connection):
        async def send_packed_command(self, command: Any, *args: Any, **kwargs: Any) -> None:
            head = command if isinstance(command, bytes) else b"".join(command)[:32]
            sent[0] += b"\r\nSCAN\r\n" not in head[:32]
            await super().send_packed_command(command, *args, **kwargs)

    pool = BlockingConnectionPool.from_url(require_redis(), connection_class=CountingConnection)
    counting = Redis(connection_pool=pool)
    await counting.ping()
    try:
        yield RedisStore(counting, Data, prefix=prefix, **options), sent
    finally:
        await delete_prefix(counting, prefix)
        await counting.aclose(close_connection_pool=True)


async def test_a_subject_costs_no_extra_round_trip_per_request() -> None:
    async with counting_store(unique_prefix()) as (store, sent):
        for subject in (None, "ada"):
            session = await sign_in(store, subject)  # loads the scripts, once per server
            sent[0] = 0
            assert await store.load(session.id) == session
            assert sent[0] == 1
            assert isinstance(await store.save(session), Ok)
            assert sent[0] == 2


@pytest.mark.heavy
async def test_ten_thousand_sessions_in_bounded_round_trips() -> None:
    async with counting_store(unique_prefix()) as (store, sent):
        sessions = await sign_in_many(store, "ada", 10_000)
        others = await sign_in_many(store, "bob", 3)
        sent[0] = 0
        listed = await store.list_subject("ada")
        assert len(listed) == 10_000
        assert sent[0] == 2  # the index, then every record in one pipeline
        sent[0] = 0
        assert await store.end_subject("ada", keep=sessions[0].id) == 9_999
        assert sent[0] <= 4 + 2  # index, ends, drops, index again (+ SCRIPT LOAD, a retry)
        sent[0] = 0
        assert [i.handle for i in await store.list_subject("ada")] == [
            session_handle(sessions[0].id)
        ]
        assert sent[0] == 2
        assert await store.load(sessions[1].id) is None
        assert await store.load(sessions[-1].id) is None
        assert await store.client.zcard(store.index_key_for("ada")) == 1
        sent[0] = 0
        assert await store.end_all() == 4
        assert sent[0] <= 3  # besides the SCAN: the sets, the ends, the drops
        assert await store.load(others[0].id) is None


async def test_the_cap_in_round_trips() -> None:
    async with counting_store(unique_prefix(), max_per_subject=2) as (store, sent):
        first = await sign_in(store, "ada")
        await sign_in(store, "ada")
        sent[0] = 0
        await sign_in(store, "ada")  # over the cap: save, list (2), end, drop
        assert sent[0] == 5
        assert await store.load(first.id) is None
        assert len(await store.list_subject("ada")) == 2


async def test_a_resent_sign_in_over_the_cap_still_enforces_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """redis-py resends a save whose reply was lost: the script finds the save done and
    the entry held, and still says the subject is over the cap, so the resend enforces
    it (it used to say nothing: three live sessions under a cap of two)."""
    async with counting_store(unique_prefix(), max_per_subject=2) as (store, _):
        first = await sign_in(store, "ada")
        await sign_in(store, "ada")
        third: Session[Data] = new_session({}, EXPIRY, now=utc_now(), subject="ada")
        monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")

        async def reply_lost(subject: str, saved: Session[Any]) -> None:
            return None  # the first reply never reached the caller: nothing enforced

        monkeypatch.setattr(store, "_enforce_cap", reply_lost)
        assert isinstance(await store.save(third), Ok)
        assert len(await store.list_subject("ada")) == 3
        monkeypatch.undo()
        monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
        assert isinstance(await store.save(third), Ok)  # the resend: already done
        assert len(await store.list_subject("ada")) == 2
        assert await store.load(first.id) is None


async def test_a_resent_save_does_not_bring_back_a_session_ended_in_between(
    store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py resends a save whose reply was lost. When end_subject ended the session in
    between, the resend is done (Ok) and the session stays ended: the ending leaves the
    tombstone an ending save leaves, with the record's write ids (an audit's case: its
    bare DEL dropped them, so the resend wrote the record and its entry again)."""
    session: Session[Data] = new_session({}, EXPIRY, now=utc_now(), subject="ada")
    monkeypatch.setattr(redis_module, "new_write_id", lambda: "00000000000000aa")
    once = await store.save(session)  # applied; its reply "lost"
    assert isinstance(once, Ok)
    monkeypatch.setattr(redis_index, "new_write_id", lambda: "00000000000000ee")
    assert await store.end_subject("ada") == 1
    assert await store.save(session) == once  # the resend: done, not written again
    assert (await store.load(session.id), await store.list_subject("ada")) == (None, [])
    # The ending, sent again (its reply lost): it finds its own tombstone and says 1 again;
    # another ending finds nothing to end.
    call = (store.key_for(session.id), redis_index.subject_fragment("ada"))
    assert await store._pipelined_scripts(redis_scripts.END, [(*call, "00000000000000ee")]) == [1]
    assert await store._pipelined_scripts(redis_scripts.END, [(*call, "00000000000000ff")]) == [0]


# -- Cluster: ordered steps --------------------------------------------------------------


@pytest.fixture
async def cluster_store() -> AsyncIterator[RedisStore[Data]]:
    cluster = RedisCluster.from_url(require_cluster())
    prefix = unique_prefix()
    try:
        yield RedisStore(cluster, Data, prefix=prefix)
    finally:
        keys = [k async for k in cluster.scan_iter(match=prefix + "*")]
        for key in keys:
            await cluster.delete(key)
        await cluster.aclose()


async def test_cluster_interrupted_save_leaves_no_unindexed_live_session(
    cluster_store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index step runs first: a save cut off after it leaves an entry and no record;
    the next list drops that entry."""
    store = cluster_store
    real = store._script

    async def cut_after_the_index(script: Any, keys: tuple[str, ...], *args: Any) -> Any:
        if script.sha != redis_scripts._INDEX.sha:
            raise StoreUnavailableError("cut")
        return await real(script, keys, *args)

    monkeypatch.setattr(store, "_script", cut_after_the_index)
    session: Session[Data] = new_session({}, EXPIRY, now=utc_now(), subject="ada")
    with pytest.raises(StoreUnavailableError):
        await store.save(session)
    monkeypatch.undo()
    assert await store.load(session.id) is None
    assert await store.client.zcard(store.index_key_for("ada")) == 1
    assert await store.list_subject("ada") == []
    assert await store.client.zcard(store.index_key_for("ada")) == 0


async def test_cluster_interrupted_end_leaves_no_live_session(
    cluster_store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records end first: an end cut off before the entries are dropped leaves entries
    without sessions, which the next list drops."""
    store = cluster_store
    sessions = [await sign_in(store, "ada") for _ in range(5)]

    async def cut(*args: Any) -> None:
        raise StoreUnavailableError("cut")

    monkeypatch.setattr(store, "_drop", cut)
    with pytest.raises(StoreUnavailableError):
        await store.end_subject("ada")
    monkeypatch.undo()
    for session in sessions:
        assert await store.load(session.id) is None
    assert await store.client.zcard(store.index_key_for("ada")) == 5
    assert await store.list_subject("ada") == []
    assert await store.client.zcard(store.index_key_for("ada")) == 0


async def test_cluster_a_list_racing_a_sign_in_cannot_unindex_it(
    cluster_store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list that runs between the index step and the record write finds no record and
    drops the entry; the sign-in enters it again after its write."""
    store = cluster_store
    real = store._script
    listed: list[int] = []

    async def list_between_the_steps(script: Any, keys: tuple[str, ...], *args: Any) -> Any:
        reply = await real(script, keys, *args)
        if script.sha == redis_scripts._INDEX.sha and not listed:
            listed.append(len(await store.list_subject("ada")))
        return reply

    monkeypatch.setattr(store, "_script", list_between_the_steps)
    session = await sign_in(store, "ada")
    monkeypatch.undo()
    assert listed == [0]
    assert [i.handle for i in await store.list_subject("ada")] == [session_handle(session.id)]
    assert await store.end_subject("ada") == 1


async def test_cluster_sessions_of_one_subject_spread_over_nodes(
    cluster_store: RedisStore[Data],
) -> None:
    store = cluster_store
    assert isinstance(store.client, RedisCluster)
    sessions = [await sign_in(store, "ada") for _ in range(30)]
    cluster = store.client
    nodes = {
        getattr(cluster.get_node_from_key(store.key_for(s.id)), "name", None) for s in sessions
    }
    assert len(nodes) == 3
    assert len(await store.list_subject("ada")) == 30
    assert await store.end_subject("ada", keep=sessions[3].id) == 29
    assert await store.load(sessions[3].id) == sessions[3]


# -- failures ----------------------------------------------------------------------------


async def test_index_calls_fail_with_store_unavailable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with RedisStore[Data].from_url(url, Data, timeout=0.5) as store:
        for call in (
            store.list_subject("ada"),
            store.end_subject_session("ada", "A" * 22),
            store.end_subject("ada"),
            store.end_all(),
            store.save(new_session({}, EXPIRY, now=utc_now(), subject="ada")),
        ):
            with pytest.raises(StoreUnavailableError):
                await call


async def test_bad_subjects_are_programming_errors(store: RedisStore[Data]) -> None:
    for bad in ("", "a\nb", "x" * 257, "\u202e"):
        with pytest.raises(ValueError, match="subject"):
            await store.list_subject(bad)
        with pytest.raises(ValueError, match="subject"):
            await store.end_subject(bad)


@pytest.mark.heavy
@pytest.mark.parametrize("kind", ["redis-cluster", "valkey"])
async def test_ten_thousand_sessions_on_cluster_and_valkey(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each store-level round (one pipeline, or one script call; on Cluster a pipeline's
    commands go to their nodes in parallel) is counted: their number does not grow."""
    async with HARNESSES[kind]() as harness:
        store = harness.store
        assert is_redis(store)
        sessions = await sign_in_many(store, "ada", 10_000)
        rounds = [0]
        for name in ("_send", "_script"):  # every pipeline goes through _send
            real = getattr(store, name)

            def counted(*args: Any, _real: Any = real) -> Any:
                rounds[0] += 1
                return _real(*args)

            monkeypatch.setattr(store, name, counted)
        assert len(await store.list_subject("ada")) == 10_000
        assert rounds[0] == 2
        rounds[0] = 0
        assert await store.end_subject("ada", keep=sessions[-1].id) == 9_999
        assert rounds[0] <= 4 + 2  # index, ends, drops, index again (+ retries after NOSCRIPT)
        monkeypatch.undo()
        assert [i.handle for i in await store.list_subject("ada")] == [
            session_handle(sessions[-1].id)
        ]
        assert await store.load(sessions[0].id) is None


@pytest.mark.parametrize("subject", ["ada", 'a"b\\c', "ünï \U0001d518"])
def test_the_end_script_finds_the_records_own_subject_field(subject: str) -> None:
    """The end script matches the last top-level ',"subject":' of the stored JSON against
    ``subject_fragment``: this holds only while ``Session`` writes ``subject`` right
    before ``auth_time``, after ``data``. A change of the record's fields breaks it here,
    not silently in production (ending would end nothing)."""
    codec: SessionCodec[Data] = SessionCodec(Data)
    decoy = {"subject": "ada", "x": {"y": 1, "subject": "ada", "auth_time": None}}
    made: Session[Data] = new_session(decoy, EXPIRY, now=utc_now(), subject=subject)
    device = Device(',"subject":"ada","auth_time":', None)
    for session in (made, dataclasses.replace(made, device=device, auth_time=utc_now())):
        record = codec.encode(session).decode()
        last = record.rindex(',"subject":')
        assert record[last:].startswith(redis_index.subject_fragment(subject))
        assert record.count(redis_index.subject_fragment(subject)) == 1 + (subject == "ada")


def test_zrange_replies_are_read_flat_or_paired() -> None:
    """redis-py 5.0 answers ZRANGE ... WITHSCORES in a pipeline flat; later ones pair it."""
    from typed_sessions.stores.redis_index import _scored

    paired = [(b"a", 1.0), (b"b", 2.0)]
    flat = [b"a", b"1", b"b", b"2"]
    assert _scored(paired) == _scored(flat) == [("a", 1.0), ("b", 2.0)]
    assert _scored([]) == []


@pytest.mark.parametrize("everyone", [False, True])
async def test_a_rotation_finishing_while_sessions_end_is_ended_too(
    store: RedisStore[Data], monkeypatch: pytest.MonkeyPatch, everyone: bool
) -> None:
    """Another device rotates between the read of the index and the ending of what it
    listed: its new record is ended by the next pass ("sign out everywhere else" after a
    password change must not leave a device signed in)."""
    mine, other = await sign_in(store, "ada"), await sign_in(store, "ada")
    moved: list[Session[Data]] = []
    send = store._send  # pyright: ignore[reportPrivateUsage]  # every pipeline's

    async def rotation_after_the_first_read(calls: Any) -> Any:
        replies = await send(calls)
        if not moved and any(call[0] in ("ZRANGE", "ZRANGEBYSCORE") for call in calls):
            result = await move_session(store, other, other.data, lambda d: d, expiry=EXPIRY)
            assert isinstance(result, Ok)
            moved.append(result.value)
        return replies

    monkeypatch.setattr(store, "_send", rotation_after_the_first_read)
    if everyone:
        assert await store.end_all() == 2
    else:
        assert await store.end_subject("ada", keep=mine.id) == 1
    monkeypatch.undo()
    assert moved
    assert await store.load(other.id) is None
    assert await store.load(moved[0].id) is None
    assert [i.handle for i in await store.list_subject("ada")] == (
        [] if everyone else [session_handle(mine.id)]
    )


async def test_an_expired_session_is_neither_ended_nor_counted(client: Redis) -> None:
    """Found by an audit: by the store's clock, past its deadline (Redis's own TTL, on the
    real clock, may not have removed it yet), a session is not live: ending it by handle
    answers ``False`` and ``end_all`` counts nothing, as on every other store."""
    clock = FakeClock()
    prefix = unique_prefix()
    store: RedisStore[Data] = RedisStore(client, Data, prefix=prefix, clock=clock)
    try:
        empty: Data = {}
        made = [new_session(empty, EXPIRY, now=clock(), subject="ada") for _ in range(2)]
        for session in made:
            assert isinstance(await store.save(session), Ok)
        clock.advance(EXPIRY.idle + timedelta(seconds=1))
        assert await store.load(made[0].id) is None
        assert await store.end_subject_session("ada", session_handle(made[0].id)) is False
        assert await store.end_all() == 0
        assert await store.end_subject("ada") == 0
    finally:
        await delete_prefix(client, prefix)
