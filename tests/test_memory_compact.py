"""The memory store's compact layout: records read back exactly, IDs never alias, work
per call bounded (counted, not timed), eviction and purging as documented."""

from __future__ import annotations

import base64
import dataclasses
import gc
import tracemalloc
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typed_sessions import (
    Device,
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionId,
    new_session,
    new_session_id,
    session_handle,
    utc_now,
)
from typed_sessions.stores.memory import PURGE_BUDGET
from typed_sessions.stores.memory_records import (
    encode_record,
    from_us,
    id_key,
    id_of,
    now_us,
    record_fields,
    to_us,
)
from typed_sessions.stores.memory_table import SHARD_SIZE, Key, Shard

from .conftest import START, FakeClock, run

pytestmark = pytest.mark.anyio
R = TypeVar("R")
EXPIRY = Expiry(idle=timedelta(minutes=5), absolute=timedelta(hours=1))
SHORT = Expiry(idle=timedelta(minutes=1), absolute=timedelta(minutes=1))
LONG = Expiry(idle=timedelta(hours=1), absolute=timedelta(hours=2))


def store_of(clock: FakeClock, **options: Any) -> MemoryStore[dict[str, Any]]:
    return MemoryStore(dict[str, Any], clock=clock, **options)


def save_new(
    store: MemoryStore[dict[str, Any]], clock: FakeClock, expiry: Expiry = EXPIRY, **fields: Any
) -> Session[dict[str, Any]]:
    result = run(store.save(new_session({"n": 1}, expiry, now=clock(), **fields)))
    assert isinstance(result, Ok)
    return result.value


def id_from(raw: bytes) -> SessionId:
    return SessionId(base64.urlsafe_b64encode(raw).decode()[:43])


class CountingShard(dict[Key, bytes]):
    """A shard that counts the records the store reads, writes and removes in it."""

    touched = 0

    def get(self, key: Key, default: Any = None) -> Any:
        CountingShard.touched += 1
        return super().get(key, default)

    def __setitem__(self, key: Key, value: bytes) -> None:
        CountingShard.touched += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Key) -> None:
        CountingShard.touched += 1
        super().__delitem__(key)

    def __getitem__(self, key: Key) -> bytes:
        CountingShard.touched += 1
        return super().__getitem__(key)

    def pop(self, key: Key, default: Any = None) -> Any:
        CountingShard.touched += 1
        return super().pop(key, default)


def counting(store: MemoryStore[Any]) -> None:
    """Make the (empty) store's shards count what each call touches."""
    assert len(store) == 0
    shards: list[Shard] = [CountingShard() for _ in store._entries.shards]  # pyright: ignore[reportPrivateUsage]
    store._entries.shards = shards  # pyright: ignore[reportPrivateUsage]


def touched_by(call: Coroutine[Any, Any, R]) -> int:
    before = CountingShard.touched
    run(call)
    return CountingShard.touched - before


# --- records read back exactly --------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), UTC]),
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@given(moment=moments)
def test_microseconds_are_exact(moment: datetime) -> None:
    back = from_us(to_us(moment))
    assert back == moment
    assert back.tzinfo is UTC


@settings(max_examples=300)
@given(
    created=moments,
    last=moments,
    expires=moments,
    version=st.integers(1, 2**64 - 1) | st.integers(1, 70_000),
    subject=st.none() | texts.filter(bool),
    auth_time=st.none() | moments,
    device=st.none() | st.builds(Device, texts, st.none() | texts),
    data=st.binary(max_size=30),
    canonical=st.booleans(),
)
def test_every_record_reads_back(
    created: datetime,
    last: datetime,
    expires: datetime,
    version: int,
    subject: str | None,
    auth_time: datetime | None,
    device: Device | None,
    data: bytes,
    canonical: bool,
) -> None:
    session_id = new_session_id() if canonical else SessionId("not canonical")
    session: Session[object] = Session(
        session_id, None, created, last, expires, 0, subject, auth_time, device
    )
    found = id_key(session_id)
    assert (found is not None) is canonical
    record = encode_record(None if found is None else found[1], session, version, data)
    fields = record_fields(record)
    assert fields[:7] == (
        to_us(created),
        to_us(last),
        to_us(expires),
        version,
        subject,
        None if auth_time is None else to_us(auth_time),
        device,
    )
    assert record[fields[7] :] == data
    if found is not None:
        assert id_of(found[0], record) == session_id


def test_the_default_clocks_time_in_microseconds() -> None:
    before = to_us(utc_now())
    now = now_us()
    assert before <= now <= to_us(utc_now())


async def test_a_store_on_the_default_clock_keeps_live_records_only() -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    over = new_session(dict[str, Any](), EXPIRY, now=utc_now() - timedelta(minutes=6))
    assert isinstance(await store.save(over), Ok)
    assert len(store) == 0
    live = new_session({"n": 1}, EXPIRY, now=utc_now())
    assert isinstance(await store.save(live), Ok)
    copy = SessionId("".join(live.id))  # an equal ID in another str object
    assert copy is not live.id
    assert await store.load(copy) == dataclasses.replace(live, version=1)


async def test_loaded_records_are_the_saved_ones_in_utc(clock: FakeClock) -> None:
    store = store_of(clock)
    india = timezone(timedelta(hours=5, minutes=30))
    now = clock().astimezone(india)
    session = dataclasses.replace(
        new_session({"a": [1]}, EXPIRY, now=now, subject="ada", device=Device("ua", "10.0.0.0/24")),
        auth_time=now - timedelta(microseconds=7),
    )
    saved = await store.save(session)
    assert saved == Ok(dataclasses.replace(session, version=1))
    loaded = await store.load(session.id)
    assert loaded == dataclasses.replace(session, version=1)
    assert loaded is not None
    stamps = (loaded.created_at, loaded.last_active, loaded.expires_at, loaded.auth_time)
    assert all(stamp is not None and stamp.tzinfo is UTC for stamp in stamps)


async def test_a_naive_datetime_is_refused_and_nothing_stored(clock: FakeClock) -> None:
    store = store_of(clock)
    session = dataclasses.replace(
        new_session(dict[str, Any](), EXPIRY, now=clock()), last_active=datetime(2026, 1, 1)
    )
    with pytest.raises(TypeError):
        await store.save(session)
    assert len(store) == 0


async def test_long_lived_records_keep_their_times(clock: FakeClock) -> None:
    """Past the short form (about 12 days between the times and the deadline)."""
    store = store_of(clock)
    long = Expiry(idle=timedelta(days=400), absolute=timedelta(days=800))
    session = save_new(store, clock, long)
    assert await store.load(session.id) == session
    clock.advance(timedelta(days=300))
    saved = await store.save(dataclasses.replace(session, last_active=clock()))
    assert isinstance(saved, Ok)
    assert await store.load(session.id) == saved.value


# --- IDs never alias ------------------------------------------------------------------


async def test_ids_sharing_an_int_key_are_kept_apart(clock: FakeClock) -> None:
    """Two IDs whose first 60 bits agree share an int key: the second is kept by text."""
    store = store_of(clock)
    first = id_from(bytes(8) + b"\x01" * 24)
    second = id_from(bytes(8) + b"\x02" * 24)
    third = id_from(bytes(8) + b"\x03" * 24)
    assert {id_key(i)[0] for i in (first, second, third)} == {0}  # type: ignore[index]  # pyright: ignore[reportOptionalSubscript]
    made = {i: save_new(store, clock, session_id=i, subject="ada") for i in (first, second, third)}
    for session_id, session in made.items():
        assert await store.load(session_id) == session
    await store.delete(first)  # frees the int key: the others still load
    assert await store.load(first) is None
    assert await store.load(second) == made[second]
    assert await store.load(third) == made[third]
    again = save_new(store, clock, session_id=first)
    assert await store.load(first) == again
    assert len(store) == 3
    listed = {info.handle for info in await store.list_subject("ada")}
    assert listed == {session_handle(second), session_handle(third)}
    assert await store.end_subject_session("ada", session_handle(second))
    assert await store.load(second) is None
    assert await store.load(third) == made[third]
    assert await store.end_subject("ada") == 1
    assert await store.load(first) == again
    assert len(store) == 1


@pytest.mark.parametrize(
    "other",
    [
        "x" * 43,  # its last character has spare bits: not canonical
        "short",
        "é" * 43,
        "",
    ],
)
async def test_other_ids_are_kept_by_text(clock: FakeClock, other: str) -> None:
    store = store_of(clock)
    session = save_new(store, clock, session_id=SessionId(other))
    assert id_key(other) is None
    assert await store.load(SessionId(other)) == session
    await store.delete(SessionId(other))
    assert len(store) == 0


async def test_an_alternative_spelling_of_an_id_is_another_id(clock: FakeClock) -> None:
    store = store_of(clock)
    session = save_new(store, clock, session_id=id_from(b"\xfb\xff" + bytes(30)))
    assert session.id.startswith("-_")
    for alias in ("+/" + session.id[2:], "+_" + session.id[2:], session.id[:42] + "B"):
        assert await store.load(SessionId(alias)) is None
    assert await store.load(session.id) == session


# --- work per call: counted ----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [(10, [3, 2, 3, 2, 3, 5]), (2_000, [2, 2, 6, 2, 3, 5]), (5_000, [2, 2, 6, 2, 3, 5])],
)
async def test_each_call_touches_a_fixed_number_of_records(
    clock: FakeClock, size: int, expected: list[int]
) -> None:
    """O(1): load, save, delete and an evicting save touch as many records at any size
    (a store of at most SHARD_SIZE records has no front: a hit moves the record within
    the table, and a save finds it there)."""
    store = store_of(clock, max_sessions=size)
    counting(store)
    sessions = [save_new(store, clock) for _ in range(size)]
    some = sessions[size // 2]
    touches = [
        touched_by(store.load(some.id)),
        touched_by(store.load(new_session_id())),
        touched_by(store.save(some)),
        touched_by(store.delete(some.id)),
        touched_by(store.save(new_session({}, EXPIRY, now=clock()))),  # fills the gap
        touched_by(store.save(new_session({}, EXPIRY, now=clock()))),  # evicts one
    ]
    assert len(store) == size
    # a hit: read, then moved to the front (removed); a miss: read by int key, then by
    # text; a save of it: back to the table first (read by int key, then by text;
    # added), then read and moved; a delete: read, removed; a new record: two reads,
    # added; and evicting one: read and removed.
    assert touches == expected


async def test_purging_looks_at_a_bounded_number_of_records_per_call(clock: FakeClock) -> None:
    """However many records expire, each call looks at PURGE_BUDGET of them at most (and a
    lookup of its own); the purge ends them all within a known number of calls."""
    count = 12 * SHARD_SIZE
    store = store_of(clock, max_sessions=count, sweep_interval=timedelta(minutes=2))
    counting(store)
    shards = len(store._entries.shards)  # pyright: ignore[reportPrivateUsage]
    doomed = [save_new(store, clock, SHORT) for _ in range(count // 2)]
    kept = [save_new(store, clock, subject="ada") for _ in range(count // 2)]
    clock.advance(timedelta(minutes=3))  # past the short deadlines and the interval
    calls = 0
    worst = 0
    while len(store) > len(kept):
        worst = max(worst, touched_by(store.load(new_session_id())))
        calls += 1
        assert calls <= count // PURGE_BUDGET + shards  # each call makes progress
    # Each record looked at is read, and removed when expired; the lookup: two reads.
    assert worst <= 2 * PURGE_BUDGET + 2
    assert calls >= count // (2 * PURGE_BUDGET)
    assert all(run(store.load(session.id)) == session for session in kept)
    assert all(run(store.load(session.id)) is None for session in doomed[:50])
    assert len(await store.list_subject("ada")) == len(kept)


async def test_a_purge_starts_only_every_sweep_interval(clock: FakeClock) -> None:
    store = store_of(clock, sweep_interval=timedelta(minutes=10))
    for _ in range(20):
        save_new(store, clock, SHORT)
    clock.advance(timedelta(minutes=5))  # expired, but no purge is due
    save_new(store, clock, LONG)
    assert len(store) == 21
    clock.advance(timedelta(minutes=5))
    save_new(store, clock, LONG)
    assert len(store) == 2


# --- eviction -------------------------------------------------------------------------


async def test_eviction_takes_the_least_recently_used_of_the_saved_sessions_shard(
    clock: FakeClock,
) -> None:
    size = 3 * SHARD_SIZE
    store = store_of(clock, max_sessions=size)
    sessions = [save_new(store, clock) for _ in range(size)]
    shards = store._entries.shards  # pyright: ignore[reportPrivateUsage]
    assert len(shards) == 3

    def shard_of(session_id: SessionId) -> int:
        found = id_key(session_id)
        assert found is not None
        return found[0] % len(shards)

    newcomer = new_session(dict[str, Any](), EXPIRY, now=clock())
    home = [s for s in sessions if shard_of(s.id) == shard_of(newcomer.id)]
    assert await store.load(home[0].id) == home[0]  # used: no longer the least recent
    assert isinstance(await store.save(newcomer), Ok)
    assert len(store) == size
    assert await store.load(home[1].id) is None  # the shard's least recently used
    assert await store.load(home[0].id) == home[0]
    assert await store.load(newcomer.id) is not None
    assert await store.load(sessions[-1].id) == sessions[-1]


async def test_a_store_of_one_evicts_never_the_session_saved(clock: FakeClock) -> None:
    store = store_of(clock, max_sessions=1)
    first = save_new(store, clock)
    second = save_new(store, clock)
    assert len(store) == 1
    assert await store.load(first.id) is None
    assert await store.load(second.id) == second


# --- the footprint --------------------------------------------------------------------


def test_a_session_costs_about_what_a_dict_of_id_to_json_costs(clock: FakeClock) -> None:
    """starsessions' memory store (ID -> JSON bytes) holds such a session in ~177.5 bytes."""
    count = 20 * SHARD_SIZE
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = store_of(clock, max_sessions=count)
        for _ in range(count):
            run(store.save(new_session({"user": "alice", "n": 1}, EXPIRY, now=START)))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) == count
    assert used / count <= 177.5
