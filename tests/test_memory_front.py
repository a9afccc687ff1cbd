"""MemoryStore's front: the usual records in use lately, kept unpacked (see memory_lane).

A record is in the front or in the table, never both; moving between them is never a
change (no conflict, no lost save), and every call but the lane's sees the table.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from typed_sessions import Expiry, MemoryStore, Ok, Session, SessionId, new_session
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory_lane import FRONT_RECORDS, FRONT_WINDOW
from typed_sessions.stores.memory_records import to_us
from typed_sessions.stores.memory_table import SHARD_SIZE
from typed_sessions.stores.protocol import Conflict

from .conftest import FakeClock, run

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
WINDOW = timedelta(microseconds=FRONT_WINDOW)


def store_of(
    clock: FakeClock, max_sessions: int = 10_000, *, front: int | None = None
) -> MemoryStore[dict[str, Any]]:
    """A store; with ``front``, its front bounded to that many records (small enough to
    fill in a test)."""
    store = MemoryStore(dict[str, Any], clock=clock, max_sessions=max_sessions)
    if front is not None:
        store._front_limit = front  # pyright: ignore[reportPrivateUsage]
    return store


def created(store: MemoryStore[dict[str, Any]], clock: FakeClock, **data: Any) -> Session[Any]:
    result = run(store.save(new_session(data, EXPIRY, now=clock())))
    assert isinstance(result, Ok)
    return result.value


def loaded(store: MemoryStore[dict[str, Any]], session_id: SessionId) -> StoredRecord:
    stored = run(store.load_record(session_id))
    assert stored is not None
    return stored


def in_front(store: MemoryStore[dict[str, Any]]) -> int:
    return len(store._front)  # pyright: ignore[reportPrivateUsage]


def resave(
    store: MemoryStore[dict[str, Any]],
    session_id: SessionId,
    stored: StoredRecord,
    data: bytes,
    last: int | None = None,
) -> Conflict | None:
    last = stored.last if last is None else last
    return run(store.save_record(session_id, stored, data, last, stored.expires))


def test_a_record_in_use_is_read_and_saved_in_the_front(clock: FakeClock) -> None:
    store = store_of(clock)
    session = created(store, clock, n=1)
    stored = loaded(store, session.id)  # saved just now: in use, so to the front
    assert (in_front(store), len(store)) == (1, 1)
    assert stored.raw[stored.data_at :] == b'{"n":1}'
    assert resave(store, session.id, stored, b'{"n":2}') is None
    again = run(store.load(session.id))
    assert again is not None
    assert (again.data, again.version) == ({"n": 2}, 2)
    assert dataclasses.replace(again, data=session.data, version=1) == session
    # Every other call sees the table: a save of the session takes it out of the front.
    saved = run(store.save(dataclasses.replace(again, subject="ada")))
    assert isinstance(saved, Ok)
    assert (in_front(store), len(store), saved.value.version) == (0, 1, 3)
    assert [info.subject for info in run(store.list_subject("ada"))] == ["ada"]
    # A record with a subject stays in the table.
    loaded(store, session.id)
    assert in_front(store) == 0


def test_a_stale_save_in_the_front_is_refused(clock: FakeClock) -> None:
    store = store_of(clock)
    session = created(store, clock, n=1)
    first, second = loaded(store, session.id), loaded(store, session.id)
    assert first is second  # the front hands out its record
    assert resave(store, session.id, first, b'{"n":2}') is None
    assert resave(store, session.id, second, b'{"n":3}') == Conflict(expected=1, found=2)
    newest = run(store.load(session.id))
    assert newest is not None
    assert newest.data == {"n": 2}


def test_a_record_back_in_the_table_since_its_load_is_saved(clock: FakeClock) -> None:
    """The front (2 records here) was full, and its oldest went back to the table
    between a load and its save: the save finds it there, unchanged, and is done."""
    store = store_of(clock, front=2)
    a, b = created(store, clock, n=1), created(store, clock, n=1)
    stored_a = loaded(store, a.id)
    loaded(store, b.id)
    assert in_front(store) == 2
    clock.advance(2 * WINDOW)
    c = created(store, clock, n=1)
    loaded(store, c.id)  # the front's oldest (a) entered long enough ago: it goes back
    assert run(store.load_record(a.id)) is not None  # read from the table now
    assert resave(store, a.id, stored_a, b'{"n":2}') is None
    assert resave(store, a.id, stored_a, b'{"n":3}') == Conflict(expected=1, found=2)
    after = run(store.load(a.id))
    assert after is not None
    assert (after.data, after.version, len(store)) == ({"n": 2}, 2, 3)


def test_a_record_moved_to_the_front_since_its_load_is_saved(clock: FakeClock) -> None:
    """A load from the table (the front was full of records that entered just now),
    then the record moved to the front by another load: the save finds it there."""
    store = store_of(clock, front=2)
    for session in (created(store, clock, n=1), created(store, clock, n=1)):
        loaded(store, session.id)
    clock.advance(WINDOW / 2)
    d = created(store, clock, n=1)
    stored_d = loaded(store, d.id)  # the front is full, and its records are new
    assert stored_d.data_at > 0
    clock.advance(WINDOW * 0.6)
    moved = loaded(store, d.id)  # now the oldest makes room
    assert moved.data_at == 0
    assert resave(store, d.id, stored_d, b'{"n":2}') is None
    assert resave(store, d.id, moved, b'{"n":3}') == Conflict(expected=1, found=2)
    after = run(store.load(d.id))
    assert after is not None
    assert (after.data, after.version) == ({"n": 2}, 2)


def test_the_front_is_bounded_and_counted(clock: FakeClock) -> None:
    store = store_of(clock)  # 10,000 records: a front of FRONT_RECORDS
    for i in range(FRONT_RECORDS + 10):
        loaded(store, created(store, clock, n=i).id)
    assert (in_front(store), len(store)) == (FRONT_RECORDS, FRONT_RECORDS + 10)
    # A store of at most SHARD_SIZE records evicts exactly the least recently used: the
    # front, which keeps no order of use, would break that. It has none.
    small = store_of(clock, max_sessions=SHARD_SIZE)
    loaded(small, created(small, clock, n=1).id)
    assert in_front(small) == 0


def test_a_small_store_evicts_exactly_the_least_recently_used(clock: FakeClock) -> None:
    """Sessions used once just after they started, then idle, are evicted before the
    ones in use (an audit's case: with a front, a and b stayed, d went)."""
    store = store_of(clock, max_sessions=4)
    a, b = created(store, clock, n=1), created(store, clock, n=1)
    loaded(store, a.id)
    loaded(store, b.id)
    clock.advance(timedelta(minutes=10))
    c = created(store, clock, n=1)
    clock.advance(timedelta(seconds=5))
    d = created(store, clock, n=1)
    loaded(store, c.id)
    created(store, clock, n=1)  # one too many: a, idle longest, goes
    alive = [run(store.load(s.id)) is not None for s in (a, b, c, d)]
    assert alive == [False, True, True, True]


def full_store(
    clock: FakeClock, idle: timedelta
) -> tuple[MemoryStore[dict[str, Any]], list[Session[Any]]]:
    """A full store of SHARD_SIZE + 1 records: two in the front for ``idle``, then the
    rest saved since (a sweep hours away)."""
    store = MemoryStore(
        dict[str, Any], clock=clock, max_sessions=SHARD_SIZE + 1, sweep_interval=timedelta(hours=3)
    )
    pair = [created(store, clock, n=1) for _ in range(2)]
    for session in pair:
        loaded(store, session.id)
    clock.advance(idle)
    rest = [created(store, clock, n=2) for _ in range(SHARD_SIZE - 1)]
    assert (in_front(store), len(store)) == (2, SHARD_SIZE + 1)
    clock.advance(timedelta(seconds=5))
    return store, pair + rest


def test_an_eviction_drops_the_front_s_expired_records_first(clock: FakeClock) -> None:
    """Expired records of the front never hold a place while a live one is evicted."""
    store, sessions = full_store(clock, EXPIRY.idle)
    newest = created(store, clock, n=3)
    assert (in_front(store), len(store)) == (0, SHARD_SIZE)  # room made: nothing evicted
    alive = [run(store.load(s.id)) is not None for s in [*sessions, newest]]
    assert alive == [False, False] + [True] * SHARD_SIZE


def test_an_eviction_sends_the_front_s_idle_records_back_first(clock: FakeClock) -> None:
    """Records of the front not saved for a second go back to the table at an eviction
    (where they are evicted in turn like the others), so none stays there for ever."""
    store, sessions = full_store(clock, timedelta(minutes=10))
    newest = created(store, clock, n=3)
    assert (in_front(store), len(store)) == (0, SHARD_SIZE + 1)
    alive = [run(store.load(s.id)) is not None for s in [*sessions, newest]]
    # The pair is back in the table, as its newest; one of the others (the least
    # recently used of the new record's shard) was evicted.
    assert alive[:2] == [True, True]
    assert (alive.count(False), alive[-1]) == (1, True)


def test_the_front_ends_records_like_the_table(clock: FakeClock) -> None:
    store = store_of(clock)
    a, b, c = (created(store, clock, n=1) for _ in range(3))
    for session in (a, b, c):
        loaded(store, session.id)
    assert in_front(store) == 3
    run(store.delete(a.id))
    assert run(store.load(a.id)) is None
    assert len(store) == 2
    stale = loaded(store, b.id)
    clock.advance(EXPIRY.idle)
    assert run(store.load(b.id)) is None  # expired: gone
    assert resave(store, b.id, stale, b'{"n":2}') == Conflict(expected=1, found=None)
    clock.advance(timedelta(minutes=2))  # past the sweep interval: the next call sweeps
    created(store, clock, n=2)
    assert (in_front(store), len(store)) == (0, 1)


def test_an_expired_record_in_the_front_is_not_handed_out(clock: FakeClock) -> None:
    """Between sweeps too (three hours apart here)."""
    store = MemoryStore(dict[str, Any], clock=clock, sweep_interval=timedelta(hours=3))
    session = created(store, clock, n=1)
    stale = loaded(store, session.id)
    assert stale.data_at == 0
    clock.advance(EXPIRY.idle)
    assert resave(store, session.id, stale, b'{"n":2}') == Conflict(expected=1, found=None)
    assert len(store) == 0
    other = created(store, clock, n=1)
    loaded(store, other.id)
    clock.advance(EXPIRY.idle)
    assert run(store.load_record(other.id)) is None
    assert run(store.load(other.id)) is None
    assert len(store) == 0


def test_a_record_not_in_use_lately_stays_in_the_table(clock: FakeClock) -> None:
    store = store_of(clock)
    session = created(store, clock, n=1)
    clock.advance(2 * WINDOW)
    stored = loaded(store, session.id)
    assert (stored.data_at > 0, in_front(store)) == (True, 0)
    # Its save makes it in use: the next load finds it in the front.
    assert resave(store, session.id, stored, b'{"n":2}', last=to_us(clock())) is None
    assert in_front(store) == 0  # saved where it was loaded, last used long ago
    assert loaded(store, session.id).data_at == 0
