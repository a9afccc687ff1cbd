"""The hot path's shortcuts give exactly what the functions they stand for give."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import Expiry, SessionEncodeError, new_session, replace_data, touch_session
from typed_sessions.adapters.outcome import Update, changed, plan_write, snapshot_of, unchanged
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.core.jsondata import encode_json
from typed_sessions.core.session import Session, used_with_data

from .conftest import START
from .json_strategies import json_objects


@given(
    idle=st.integers(1, 10_000),
    absolute=st.integers(1, 100_000),
    step=st.none() | st.integers(0, 10_000),
    first=st.integers(0, 100_000),
    second=st.integers(0, 100_000),
    version=st.integers(0, 5),
)
def test_used_with_data_is_touch_then_replace(
    idle: int, absolute: int, step: int | None, first: int, second: int, version: int
) -> None:
    expiry = Expiry(
        idle=timedelta(seconds=idle),
        absolute=timedelta(seconds=absolute),
        touch_step=None if step is None else timedelta(seconds=min(step, idle - 1)),
    )
    record = dataclasses.replace(
        touch_session(new_session({"n": 1}, expiry, now=START), expiry, now=START),
        version=version,
    )
    used = START + timedelta(seconds=first)
    record = touch_session(record, expiry, now=used)
    now = used + timedelta(seconds=second)
    expected = replace_data(touch_session(record, expiry, now=now), {"n": 2}, now=now)
    assert used_with_data(record, {"n": 2}, expiry, now=now) == expected


@given(
    idle=st.integers(1, 10_000),
    absolute=st.integers(1, 100_000),
    step=st.none() | st.integers(0, 10_000),
    created=st.integers(-50_000, 0),
    expires=st.integers(-20_000, 100_000),
    now=st.integers(-10, 100_000),
)
def test_touch_session_is_its_definition(
    idle: int, absolute: int, step: int | None, created: int, expires: int, now: int
) -> None:
    """The deadline slides to ``min(now + idle, created + absolute)`` when that moves it
    forward by at least the step; else the record itself comes back (the shortcut that
    leaves the cap out when the uncapped move is already too small changes nothing)."""
    expiry = Expiry(
        idle=timedelta(seconds=idle),
        absolute=timedelta(seconds=absolute),
        touch_step=None if step is None else timedelta(seconds=min(step, idle - 1)),
    )
    seconds = timedelta(seconds=1)
    record = dataclasses.replace(
        new_session({"n": 1}, expiry, now=START + created * seconds),
        expires_at=START + expires * seconds,
    )
    at = START + now * seconds
    deadline = min(at + expiry.idle, record.created_at + expiry.absolute)
    moved = deadline - record.expires_at
    touched = touch_session(record, expiry, now=at)
    if moved <= timedelta(0) or moved < expiry.step:
        assert touched is record
    else:
        assert touched == dataclasses.replace(record, last_active=at, expires_at=deadline)


def test_session_records_stay_frozen_and_replaceable() -> None:
    record = new_session({"a": 1}, Expiry(), now=START)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.version = 3  # type: ignore[misc]  # frozen on purpose
    moved = dataclasses.replace(record, version=2)
    assert (moved.version, moved.id, moved.data) == (2, record.id, {"a": 1})
    keywords: Session[dict[str, int]] = Session(
        id=record.id, data={"a": 1}, created_at=START, last_active=START,
        expires_at=record.expires_at,
    )  # fmt: skip
    assert keywords == record


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0, 2.5])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "a", "1"])
)
FLAT = st.dictionaries(st.sampled_from(["a", "b", "c"]), SCALARS, max_size=3)


@given(before=FLAT, after=FLAT, reorder=st.booleans())
def test_unchanged_is_the_same_json(
    before: dict[str, Any], after: dict[str, Any], reorder: bool
) -> None:
    if reorder:  # the same items in another order: other JSON, so a change
        after = dict(reversed(before.items()))
    assert snapshot_of(before) is before  # scalars only: kept, not encoded
    assert unchanged(after, before) == (encode_json(after) == encode_json(before))


@given(before=FLAT, after=FLAT, reorder=st.booleans())
def test_a_written_flat_session_changed_exactly_when_its_json_did(
    before: dict[str, Any], after: dict[str, Any], reorder: bool
) -> None:
    """``changed`` looks at ``==`` first (``1 == True == 1.0``, ``0.0 == -0.0``: equal
    dicts are not always the same JSON), then closer: it agrees with the encodings."""
    if reorder:
        after = dict(reversed(before.items()))
    found = changed(SessionData(after), before, written=True)
    assert (found is not None) == (encode_json(after) != encode_json(before))
    if found is not None:
        assert found == (after, encode_json(after))


class Touchy:
    """No JSON value, and ``==`` with it raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("compared")

    __hash__ = object.__hash__


def test_a_value_whose_equality_raises_is_refused_as_no_json() -> None:
    with pytest.raises(SessionEncodeError):
        changed(SessionData({"a": Touchy()}), {"a": 1}, written=True)


@given(before=FLAT, key=st.sampled_from(["a", "b", "c"]))
def test_a_nested_value_is_snapshotted_as_json(before: dict[str, Any], key: str) -> None:
    data = {**before, key: {"items": [1]}}
    assert snapshot_of(data) == encode_json(data)


@given(
    idle=st.integers(1, 10_000),
    step=st.none() | st.integers(0, 10_000),
    new_idle=st.integers(1, 10_000),
)
def test_the_touch_step_found_once_is_the_rule(idle: int, step: int | None, new_idle: int) -> None:
    touch_step = None if step is None else timedelta(seconds=min(step, idle - 1, new_idle - 1))
    expiry = Expiry(idle=timedelta(seconds=idle), touch_step=touch_step)
    assert expiry.step == (expiry.idle / 10 if touch_step is None else touch_step)
    moved = dataclasses.replace(expiry, idle=timedelta(seconds=new_idle))  # found again
    assert moved.step == (moved.idle / 10 if touch_step is None else touch_step)
    assert moved == Expiry(idle=timedelta(seconds=new_idle), touch_step=touch_step)


@given(before=json_objects, after=json_objects, nested=st.booleans())
def test_plan_write_saves_exactly_when_the_json_changed(
    before: dict[str, Any], after: dict[str, Any], nested: bool
) -> None:
    """The change detector (a scalars-only snapshot compared without encoding, one
    encoding of a plain copy otherwise) saves exactly when the data's JSON changed, and
    saves a plain ``dict`` equal to the handler's data."""
    if nested:  # a snapshot of JSON text
        before = {**before, "nested": [1]}
    expiry = Expiry()
    record = new_session(before, expiry, now=START)
    snapshot = snapshot_of(record.data)
    data = SessionData(after)
    data.track()
    write = plan_write(record, data, snapshot, None, data, expiry=expiry, now=START)
    changed = encode_json(after) != encode_json(before)
    assert (type(write) is Update) == changed
    if type(write) is Update:
        assert type(write.data) is dict
        assert write.data == after
        assert write.data is not data
    else:
        assert write is None  # nothing changed, the deadline did not move


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from([
            "get", "getitem", "in", "len", "iter", "items", "copy", "eq",
            "set", "del", "pop", "pop_default", "popitem", "clear", "setdefault", "update",
            "ior",
        ]),
        st.sampled_from(["a", "b", "c"]),
        SCALARS,
    ),
    max_size=6,
)  # fmt: skip


def _apply(data: SessionData, operation: str, key: str, value: Any) -> None:
    """One call of the dict API on ``data``; a write that cannot apply is skipped."""
    reads: dict[str, Any] = {
        "get": lambda: data.get(key), "in": lambda: key in data, "len": lambda: len(data),
        "iter": lambda: list(data), "items": lambda: list(data.items()),
        "copy": data.copy, "eq": lambda: data == {},
        "getitem": lambda: data[key] if key in data else None,  # noqa: SIM401 - __getitem__
    }  # fmt: skip
    if operation in reads:
        reads[operation]()
    elif operation == "set":
        data[key] = value
    elif operation == "del" and key in data:
        del data[key]
    elif operation == "pop" and key in data:
        data.pop(key)
    elif operation == "pop_default":
        data.pop(key, None)
    elif operation == "popitem" and data:
        data.popitem()
    elif operation == "clear":
        data.clear()
    elif operation == "setdefault":
        data.setdefault(key, value)
    elif operation == "update":
        data.update({key: value})
    elif operation == "ior":
        data |= {key: value}


@given(before=FLAT, operations=OPERATIONS)
def test_a_session_never_written_is_unchanged(
    before: dict[str, Any], operations: list[tuple[str, str, Any]]
) -> None:
    """The shortcut for a scalars-only snapshot: data no write method touched is taken
    as unchanged without comparing, and that is always what comparing would say."""
    expiry = Expiry()
    record = new_session(before, expiry, now=START)
    snapshot = snapshot_of(record.data)
    data = SessionData(record.data)
    data.track()
    for operation, key, value in operations:
        _apply(data, operation, key, value)
    if not data.written:
        assert unchanged(data, before)
    kwargs: dict[str, Any] = {"expiry": expiry, "now": START}
    compared = plan_write(record, data, snapshot, None, data, **kwargs)
    assert plan_write(record, data, snapshot, None, data, written=data.written, **kwargs) == (
        compared
    )


def test_every_write_method_marks_the_session_written() -> None:
    writes: list[Callable[[SessionData], object]] = [
        lambda d: d.__setitem__("a", 1), lambda d: d.__delitem__("a"), lambda d: d.pop("a"),
        lambda d: d.pop("z", None), lambda d: d.popitem(), lambda d: d.clear(),
        lambda d: d.setdefault("z", 1), lambda d: d.update(z=1), lambda d: d.__ior__({"z": 1}),
    ]  # fmt: skip
    for write in writes:
        data = SessionData({"a": 0})
        assert not data.written
        write(data)
        assert data.written
    data = SessionData({"a": 0})
    _ = (data.get("a"), data["a"], "a" in data, len(data), list(data), data.copy(), data == {})
    assert not data.written
