"""The memory store's lane (the middleware's fast path): records read and rewritten as
stored give exactly what the typed protocol gives, and its compare-and-set refuses every
record that changed, ended or expired since it was loaded."""

from __future__ import annotations

import dataclasses
import gc
import sys
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import (
    Device,
    Expiry,
    Keyring,
    MemoryStore,
    Ok,
    Session,
    SessionId,
    SessionTooLargeError,
    new_session,
    new_session_id,
    session_middleware,
)
from typed_sessions.adapters.commit import carry_out
from typed_sessions.adapters.outcome import (
    NOTHING,
    Outcome,
    Resave,
    Touch,
    Update,
    plan_resave,
    plan_write,
    snapshot_of,
)
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.core.clock import EPOCH
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory_records import (
    encode_record,
    id_key,
    plain_record,
    record_fields,
    rewrite_record,
    to_us,
)
from typed_sessions.stores.protocol import Conflict

from .conftest import SECRET, START, FakeClock, run

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def stored_of(store: MemoryStore[dict[str, Any]], session_id: SessionId) -> StoredRecord:
    stored = run(store.load_record(session_id))
    assert stored is not None
    return stored


# A record's times (microseconds from START), version and data, as the tests draw them.
RECORDS: dict[str, st.SearchStrategy[Any]] = {
    "created": st.integers(-(10**8), 0),
    "last": st.integers(0, 10**13),
    "expires": st.integers(0, 10**13),
    "version": st.integers(1, 70_000),
    "data": st.binary(max_size=30),
}


@given(
    subject=st.none() | st.text(st.characters(codec="utf-8", categories=["L"]), min_size=1),
    auth=st.booleans(),
    device=st.none() | st.tuples(st.text(max_size=20), st.none() | st.just("10.0.0.1")),
    old_version=st.integers(0, 70_000),
    **RECORDS,
)
def test_a_rewritten_record_is_the_record_encoded_anew(
    subject: str | None,
    auth: bool,
    device: tuple[str, str | None] | None,
    old_version: int,
    created: int,
    last: int,
    expires: int,
    version: int,
    data: bytes,
) -> None:
    session: Session[dict[str, Any]] = new_session(
        {}, EXPIRY, now=START, subject=subject, auth_time=START if auth else None,
        device=None if device is None else Device(*device),
    )  # fmt: skip
    found = id_key(session.id)
    tail = None if found is None else found[1]
    old = encode_record(tail, session, old_version, b'{"a":1}')
    data_at = record_fields(old)[7]
    start = to_us(START)
    moved = dataclasses.replace(
        session,
        created_at=START + timedelta(microseconds=created),
        last_active=START + timedelta(microseconds=last),
        expires_at=START + timedelta(microseconds=expires),
    )
    expected = encode_record(tail, moved, version, data)
    times = (start + created, start + last, start + expires)
    assert rewrite_record(old, data_at, version, *times, data) == expected


@given(canonical=st.booleans(), **RECORDS)
def test_a_plain_record_is_packed_as_the_table_packs_it(
    canonical: bool, created: int, last: int, expires: int, version: int, data: bytes
) -> None:
    """What a record of the front goes back to the table as: the very bytes a save of
    the same session would have stored (a save compares them by value)."""
    session_id = new_session_id() if canonical else SessionId("not-canonical")
    found = id_key(session_id)
    tail = None if found is None else found[1]
    session: Session[dict[str, Any]] = dataclasses.replace(
        new_session({}, EXPIRY, now=START),
        id=session_id,
        created_at=START + timedelta(microseconds=created),
        last_active=START + timedelta(microseconds=last),
        expires_at=START + timedelta(microseconds=expires),
    )
    start = to_us(START)
    times = (start + created, start + last, start + expires)
    assert plain_record(tail, version, *times, data) == encode_record(tail, session, version, data)


def saved(store: MemoryStore[dict[str, Any]], data: dict[str, Any]) -> SessionId:
    result = run(store.save(new_session(data, EXPIRY, now=START)))
    assert isinstance(result, Ok)
    return result.value.id


def test_a_lane_save_is_what_load_then_reads(clock: FakeClock) -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    session_id = saved(store, {"n": 1})
    stored = stored_of(store, session_id)
    assert store.session_of(session_id, stored) == run(store.load(session_id))
    last, expires = stored.last + 5, stored.expires + 10
    assert run(store.save_record(session_id, stored, b'{"n":2}', last, expires)) is None
    loaded = run(store.load(session_id))
    assert loaded is not None
    assert (loaded.data, loaded.version) == ({"n": 2}, 2)
    assert (to_us(loaded.last_active), to_us(loaded.expires_at)) == (last, expires)
    # A stale copy is refused, naming the version found, and changes nothing.
    conflict = run(store.save_record(session_id, stored, b'{"n":3}', last, expires))
    assert conflict == Conflict(expected=1, found=2)
    assert run(store.load(session_id)) == loaded


def test_loads_in_any_order_give_each_record_its_own_times(clock: FakeClock) -> None:
    """``load`` reuses the datetimes of the load before it where the microseconds
    match: records sharing some times and not others, loaded in turn, each come back
    whole (this is what a store with several users' sessions does all day)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    base = new_session({"n": 1}, EXPIRY, now=START)
    second = timedelta(seconds=1)
    sessions = [
        base,  # last_active == created_at
        dataclasses.replace(base, id=new_session_id(), last_active=START + second),
        dataclasses.replace(
            base,
            id=new_session_id(),
            last_active=START + second,
            expires_at=base.expires_at - second,
        ),
        dataclasses.replace(base, id=new_session_id(), created_at=START - second),
    ]
    expected = {}
    for session in sessions:
        result = run(store.save(session))
        assert isinstance(result, Ok)
        expected[session.id] = result.value
    for session_id in [s.id for s in sessions] * 2 + [s.id for s in reversed(sessions)]:
        assert run(store.load(session_id)) == expected[session_id]


class _CountingLoads(MemoryStore[dict[str, Any]]):
    """A subclass with its own ``load_record`` (a replica read, a count)."""

    loads = 0

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        self.loads += 1
        return await super().load_record(session_id)


def test_load_reads_through_a_subclass_own_load_record(clock: FakeClock) -> None:
    """``load`` reads without a coroutine, except where a subclass has its own
    ``load_record``: that one is still used."""
    plain: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    counting = _CountingLoads(dict[str, Any], clock=clock)
    for store in (plain, counting):
        session_id = saved(store, {"n": 1})
        loaded = run(store.load(session_id))
        assert loaded is not None
        assert loaded.data == {"n": 1}
        assert run(store.load(SessionId("no-such-session"))) is None
    assert counting.loads == 2


def test_a_lane_save_finds_the_record_with_or_without_the_loads_place(clock: FakeClock) -> None:
    """``place`` is only a hint: a record used since (moved in its shard), or a stored
    record given without one, is saved all the same; a stale one is still refused."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    session_id = saved(store, {"n": 1})
    stored = stored_of(store, session_id)
    assert stored.place is not None
    stored_of(store, saved(store, {"other": 1}))  # other records used since
    stored_of(store, session_id)  # and this one moved to its shard's end
    assert (
        run(store.save_record(session_id, stored, b'{"n":2}', stored.last, stored.expires)) is None
    )
    again = stored_of(store, session_id)._replace(place=None)
    assert run(store.save_record(session_id, again, b'{"n":3}', again.last, again.expires)) is None
    conflict = run(store.save_record(session_id, stored, b'{"n":4}', stored.last, stored.expires))
    assert conflict == Conflict(expected=1, found=3)
    loaded = run(store.load(session_id))
    assert loaded is not None
    assert (loaded.data, loaded.version) == ({"n": 3}, 3)


def test_a_lane_save_of_an_ended_or_expired_record_is_refused(clock: FakeClock) -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    ended = saved(store, {"n": 1})
    stored = stored_of(store, ended)
    run(store.delete(ended))
    far = stored.expires + 10**9
    assert run(store.save_record(ended, stored, None, 0, far)) == Conflict(1, None)
    assert run(store.load(ended)) is None
    # Expired since it was loaded: refused, and gone.
    expiring = saved(store, {"n": 1})
    stored = stored_of(store, expiring)
    clock.advance(EXPIRY.idle)
    assert run(store.save_record(expiring, stored, None, 0, far)) == Conflict(1, None)
    assert len(store) == 0
    # Saved meanwhile, then expired: refused too, and purged.
    clock.now = START
    other = saved(store, {"n": 1})
    stale = stored_of(store, other)
    fresh = stored_of(store, other)
    assert run(store.save_record(other, fresh, None, fresh.last, fresh.expires)) is None
    clock.advance(EXPIRY.idle)
    assert run(store.save_record(other, stale, None, 0, far)) == Conflict(1, None)
    assert len(store) == 0


@pytest.mark.parametrize("in_use", [True, False])  # read from the front, or the table
def test_a_lane_save_with_a_deadline_already_past_removes_the_record(
    clock: FakeClock, in_use: bool
) -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    session_id = saved(store, {"n": 1})
    if not in_use:
        clock.advance(timedelta(seconds=2))
    stored = stored_of(store, session_id)
    assert (stored.data_at == 0) is in_use
    now = to_us(clock())
    assert run(store.save_record(session_id, stored, b'{"n":2}', now, now)) is None
    assert len(store) == 0
    assert run(store.load(session_id)) is None


def test_the_lane_measures_the_size_limit_as_stored(clock: FakeClock) -> None:
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock, max_data_bytes=40)
    session_id = saved(store, {"n": 1})
    stored = stored_of(store, session_id)
    escaped = b'{"s":"' + b"\\u00e9" * 6 + b'"}'  # 44 bytes; 20 as UTF-8
    assert run(store.save_record(session_id, stored, escaped, stored.last, stored.expires)) is None
    loaded = run(store.load(session_id))
    assert loaded is not None
    assert loaded.data == {"s": "\u00e9" * 6}
    stored = stored_of(store, session_id)
    too_large = b'{"s":"' + b"x" * 40 + b'"}'
    with pytest.raises(SessionTooLargeError):
        run(store.save_record(session_id, stored, too_large, stored.last, stored.expires))
    assert run(store.load(session_id)) == loaded


@given(
    idle=st.integers(1, 10_000),
    absolute=st.integers(1, 100_000),
    step=st.none() | st.integers(0, 10_000),
    created=st.integers(-50_000, 0),
    expires=st.integers(1, 100_000),
    now=st.integers(0, 100_000),
    change=st.booleans(),
)
def test_plan_resave_is_plan_write_in_microseconds(
    idle: int, absolute: int, step: int | None, created: int, expires: int, now: int,
    change: bool,
) -> None:  # fmt: skip
    expiry = Expiry(
        idle=timedelta(seconds=idle),
        absolute=timedelta(seconds=absolute),
        touch_step=None if step is None else timedelta(seconds=min(step, idle - 1)),
    )
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    record = dataclasses.replace(
        new_session({"n": 1}, expiry, now=START),
        created_at=START + timedelta(seconds=created),
        expires_at=START + timedelta(seconds=expires + now),
        version=1,
    )
    found = id_key(record.id)
    raw = encode_record(None if found is None else found[1], record, 1, b'{"n":1}')
    stored = StoredRecord(
        1, to_us(record.created_at), to_us(record.last_active), to_us(record.expires_at),
        raw, record_fields(raw)[7],
    )  # fmt: skip
    assert store.session_of(record.id, stored) == record
    moment = START + timedelta(seconds=now)
    snapshot = snapshot_of(record.data)
    data = SessionData(record.data)
    if change:
        data["n"] = 2
    micros = (
        expiry.idle // timedelta(microseconds=1),
        expiry.absolute // timedelta(microseconds=1),
        expiry.step // timedelta(microseconds=1),
    )
    lane = plan_resave(
        record.id, stored, data, snapshot, NOTHING, expiry=micros, now=to_us(moment),
        written=change,
    )  # fmt: skip
    typed = plan_write(
        record, data, snapshot, None, NOTHING, expiry=expiry, now=moment, written=change
    )
    if typed is None:
        assert lane is None
        return
    assert isinstance(lane, Resave)
    assert isinstance(typed, Update | Touch)
    want = typed.record
    if isinstance(typed, Update):  # the save uses used_with_data: now, and the slid deadline
        assert lane.text == '{"n":2}'
        assert lane.last == to_us(moment)
        assert lane.expires >= stored.expires
    else:
        assert lane.text is None
        assert (lane.last, lane.expires) == (to_us(want.last_active), to_us(want.expires_at))


@pytest.mark.anyio
async def test_data_the_json_scanner_cannot_read_is_decoded_by_the_store() -> None:
    """A record the stdlib scanner refuses (an int of more than 4,300 digits, which an
    older version let pydantic write) goes to the store's codec, as without the lane: it
    cannot read it either, so the answer is 503 (StoreCorruptError), never a 500 or a
    fresh session."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    keys = Keyring.from_secrets(SECRET)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keys)

    @app.get("/digits")
    async def digits(request: Request) -> dict[str, str | bool | None]:
        manager = request.state.session
        session = manager.get_session()
        if not session:
            session["n"] = 1
        return {"big": session.get("big") == 10**5000, "id": manager.get_session_id()}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        first = await client.get("/digits")
        assert first.json()["big"] is False
        session_id = SessionId(first.json()["id"])
        stored = await store.load_record(session_id)
        assert stored is not None  # a record no codec would write now, planted as stored:
        big = b'{"n":1,"big":1' + b"0" * 5000 + b"}"
        assert await store.save_record(session_id, stored, big, stored.last, stored.expires) is None
        second = await client.get("/digits")
    assert second.status_code == 503
    assert "set-cookie" not in second.headers


@pytest.mark.anyio
async def test_a_loaded_record_that_decodes_only_at_its_outcome_fails_there_with_503() -> None:
    """Where the app lifted Python's int-to-text limit, the stdlib scanner reads an int
    that the store's codec does not: a regenerate, which needs the record decoded, fails
    when the response starts. That is the store failing (503, no cookie, nothing ended),
    not a 500."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(SECRET))

    @app.get("/regenerate")
    async def regenerate(request: Request) -> str | None:
        manager = request.state.session
        session = manager.get_session()
        if session:
            manager.regenerate()
        else:
            session["n"] = 1
        return manager.get_session_id()  # type: ignore[no-any-return]

    limit = sys.get_int_max_str_digits()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        session_id = SessionId((await client.get("/regenerate")).json())
        stored = await store.load_record(session_id)
        assert stored is not None  # a record no codec would write, planted as stored:
        big = b'{"n":1,"big":1' + b"0" * 5000 + b"}"
        assert await store.save_record(session_id, stored, big, stored.last, stored.expires) is None
        sys.set_int_max_str_digits(0)
        try:
            second = await client.get("/regenerate")
        finally:
            sys.set_int_max_str_digits(limit)
    assert second.status_code == 503
    assert "set-cookie" not in second.headers
    assert await store.load_record(session_id) is not None


@pytest.mark.anyio
async def test_a_lane_save_that_lost_a_race_is_merged_or_dropped(clock: FakeClock) -> None:
    """A changed record is merged into the one saved meanwhile (its other keys kept); a
    touch that lost is dropped (the other save slid the deadline too)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any], clock=clock)
    settings = SessionSettings(store=store, keys=Keyring.from_secrets(SECRET), clock=clock)
    session_id = saved(store, {"a": 1, "b": 1})
    stale = stored_of(store, session_id)
    fresh = stored_of(store, session_id)
    other = b'{"a":1,"b":2}'
    assert await store.save_record(session_id, fresh, other, fresh.last, fresh.expires) is None
    now = to_us(START)
    touch = Resave(session_id, stale, None, None, None, NOTHING, now, stale.expires + 1)
    settled = await carry_out(Outcome(touch, None, False, EPOCH), settings)
    assert settled.session_id == session_id
    record = await store.load(session_id)
    assert record is not None
    assert (record.data, record.version) == ({"a": 1, "b": 2}, 2)
    before = snapshot_of({"a": 1, "b": 1})
    change = Resave(
        session_id, stale, {"a": 5, "b": 1}, '{"a":5,"b":1}', before, NOTHING, now,
        stale.expires,
    )  # fmt: skip
    settled = await carry_out(Outcome(change, None, False, EPOCH), settings)
    assert settled.session_id == session_id
    record = await store.load(session_id)
    assert record is not None
    assert (record.data, record.version) == ({"a": 5, "b": 2}, 3)


@pytest.mark.anyio
async def test_a_request_leaves_nothing_for_the_garbage_collector() -> None:
    """The manager, its data and the scope are freed when the request ends (no reference
    cycle: the session manager once held the scope that holds it)."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=Keyring.from_secrets(SECRET))

    @app.get("/counter")
    async def counter(request: Request) -> int:
        session = request.state.session.get_session()
        session["n"] = session.get("n", 0) + 1
        return int(session["n"])

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for _ in range(3):
            await client.get("/counter")
        gc.collect()
        gc.disable()
        try:
            manager_cycles = 0
            for _ in range(5):
                assert (await client.get("/counter")).status_code == 200
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            manager_cycles = sum(type(o).__name__ == "SessionManager" for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert manager_cycles == 0
