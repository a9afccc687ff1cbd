"""The memory store's cheaper paths give what the general ones give: the usual record
packed in one call, the times of a loaded session reused by identity, the purge check."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typed_sessions import Device, Expiry, MemoryStore, Ok, Session, new_session, new_session_id
from typed_sessions.core.ids import SessionId
from typed_sessions.stores.memory_records import (
    encode_general,
    encode_times,
    id_key,
    record_fields,
    to_us,
)

from .conftest import START, FakeClock, run

EXPIRY = Expiry(idle=timedelta(minutes=5), absolute=timedelta(hours=1))
LIMIT = 1 << 40  # the short form's deltas, in microseconds
IST = timezone(timedelta(hours=5, minutes=30))


# Deltas around the short form's limits (and past them, both ways).
deltas = st.integers(-3, 3) | st.integers(0, LIMIT + 3) | st.integers(LIMIT - 3, LIMIT + 3)


@settings(max_examples=500)
@given(
    expires=st.integers(-(10**16), 10**17),
    since_created=deltas,
    since_last=deltas,
    version=st.integers(1, 70_000) | st.integers(65_530, 65_540),
    subject=st.none() | st.just("ada"),
    auth_time=st.none() | st.just(START),
    device=st.none() | st.just(Device("agent", None)),
    canonical=st.booleans(),
)
def test_the_usual_record_in_one_call_is_the_general_encoding(
    expires: int,
    since_created: int,
    since_last: int,
    version: int,
    subject: str | None,
    auth_time: datetime | None,
    device: Device | None,
    canonical: bool,
) -> None:
    session_id = new_session_id() if canonical else SessionId("not canonical")
    found = id_key(session_id)
    tail = None if found is None else found[1]
    session: Session[object] = Session(
        session_id, None, START, START, START, 0, subject, auth_time, device
    )
    created, last = expires - since_created, expires - since_last
    record = encode_times(tail, session, version, b"{}", created, last, expires)
    assert record == encode_general(tail, session, version, b"{}", created, last, expires)
    fields = record_fields(record)
    assert fields[:4] == (created, last, expires, version)
    assert record[fields[7] :] == b"{}"


def stored(store: MemoryStore[Any], session_id: str) -> tuple[object, ...]:
    entry = store._entries.get(session_id)  # pyright: ignore[reportPrivateUsage]
    assert entry is not None
    return (entry.created_at, entry.last_active, entry.expires_at, entry.version, entry.data)


@settings(max_examples=200, deadline=None)
@given(
    shifts=st.tuples(*[st.sampled_from([None, 0, 1, -1, 10**9]) for _ in range(3)]),
    zone=st.sampled_from([UTC, IST]),
)
def test_a_save_stores_its_own_times_whichever_objects_hold_them(
    shifts: tuple[int | None, int | None, int | None], zone: timezone
) -> None:
    """Saving the datetimes a load made (reused by identity) stores what saving equal
    datetimes made anew does; other datetimes are stored as they are, not the loaded ones."""
    clock = FakeClock()
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    first = run(store.save(new_session({"n": 1}, EXPIRY, now=clock())))
    other = run(store.save(new_session({"n": 2}, EXPIRY, now=clock() + timedelta(seconds=7))))
    assert isinstance(first, Ok)
    assert isinstance(other, Ok)
    loaded = run(store.load(first.value.id))
    assert loaded is not None
    times = [loaded.created_at, loaded.last_active, loaded.expires_at]
    for i, shift in enumerate(shifts):  # None: the loaded object itself
        if shift is not None:
            times[i] = (times[i] + timedelta(microseconds=shift)).astimezone(zone)
    changed = dataclasses.replace(
        loaded, created_at=times[0], last_active=times[1], expires_at=times[2]
    )
    assert isinstance(run(store.save(changed)), Ok)
    assert stored(store, loaded.id)[:4] == (*times, 2)
    assert run(store.load(loaded.id)) == dataclasses.replace(changed, version=2)
    # The last load's times, saved for another session: the same instants again.
    _ = run(store.load(loaded.id))
    moved = dataclasses.replace(other.value, created_at=times[0])
    assert isinstance(run(store.save(moved)), Ok)
    assert stored(store, other.value.id)[0] == times[0]
    assert stored(store, other.value.id)[1:3] == (
        other.value.last_active,
        other.value.expires_at,
    )


def test_a_naive_time_is_refused_even_after_a_load() -> None:
    clock = FakeClock()
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    saved = run(store.save(new_session({"n": 1}, EXPIRY, now=clock())))
    assert isinstance(saved, Ok)
    loaded = run(store.load(saved.value.id))
    assert loaded is not None
    naive = dataclasses.replace(loaded, last_active=loaded.last_active.replace(tzinfo=None))
    with pytest.raises(TypeError):
        run(store.save(naive))
    assert run(store.load(loaded.id)) == loaded


def test_the_purge_runs_before_1970_too() -> None:
    """The purge check is one comparison against a time before any: a store whose clock
    reads times before the epoch (negative microseconds) still purges."""
    clock = FakeClock(datetime(1900, 1, 1, tzinfo=UTC))
    store: MemoryStore[dict[str, Any]] = MemoryStore(
        dict[str, Any], clock=clock, sweep_interval=timedelta(minutes=2)
    )
    for _ in range(600):
        assert isinstance(run(store.save(new_session({}, EXPIRY, now=clock()))), Ok)
    assert to_us(clock()) < 0
    clock.advance(timedelta(hours=2))
    for _ in range(5):  # each call looks at 256 records at most
        assert run(store.load(new_session_id())) is None
    assert len(store) == 0
