"""adapters/session_data.py: the dict-like session, its write checks and read records."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable

import pytest

from typed_sessions.adapters.errors import SessionClosedError
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.core.changes import (
    NOTHING_READ,
    ReadSet,
)
from typed_sessions.core.jsondata import encode_json


def test_session_data_is_a_dict_of_str_keys() -> None:
    session = SessionData({"a": 1})
    session["b"] = [1]
    session.update({"c": 3}, d=4)
    session.update([("e", 5)])
    session |= {"f": 6}
    assert session.setdefault("g", 7) == 7
    assert session.setdefault("g", 8) == 7
    assert session.pop("a") == 1
    assert session.pop("missing", None) is None
    del session["b"]
    assert dict(session) == {"c": 3, "d": 4, "e": 5, "f": 6, "g": 7}
    assert session.popitem() == ("g", 7)
    assert json.loads(encode_json(session)) == {"c": 3, "d": 4, "e": 5, "f": 6}
    assert copy.deepcopy(session) == session
    session.clear()
    assert session == {}
    with pytest.raises(TypeError, match="keys must be str"):
        session[1] = "x"  # type: ignore[index]  # what the check is for


def _pickled(data: SessionData) -> object:
    return pickle.loads(pickle.dumps(data))  # noqa: S301 - our own bytes


@pytest.mark.parametrize(
    "dup", [copy.copy, copy.deepcopy, _pickled], ids=["copy", "deepcopy", "pickle"]
)
def test_a_copy_or_pickle_of_the_session_is_a_plain_dict_read_in_full(
    dup: Callable[[SessionData], object],
) -> None:
    """(A pickle round trip raised AttributeError: the items came back before the
    session's own fields.)"""
    session = SessionData({"a": [1]}, True)
    twin = dup(session)
    assert (type(twin), twin) == (dict, {"a": [1]})
    assert session.reads() == ReadSet(everything=True)


def test_blocked_session_data_refuses_every_write() -> None:
    def closed() -> SessionClosedError:
        return SessionClosedError("closed")

    session = SessionData({"a": 1})
    session.block(closed)
    writes: list[Callable[[], object]] = [
        lambda: session.__setitem__("b", 1),
        lambda: session.__delitem__("a"),
        session.clear,
        lambda: session.pop("a"),
        session.popitem,
        lambda: session.setdefault("b", 1),
        lambda: session.update(b=1),
    ]
    for write in writes:
        with pytest.raises(SessionClosedError):
            write()
    assert session == {"a": 1}
    assert session.setdefault("a", 2) == 1  # reading through setdefault is fine


def test_reads_are_recorded_only_while_tracking() -> None:
    data = SessionData({"a": 1, "b": 2})
    assert data["a"] == 1
    assert data.reads() == NOTHING_READ  # not tracking: a new session
    data.track()
    assert data["a"] == 1
    assert data.get("missing") is None
    assert "c" not in data
    data["d"] = 4  # a write is not a read
    assert data.reads() == ReadSet(frozenset({"a", "missing", "c"}))


def test_a_session_made_with_track_records_from_the_start() -> None:
    data = SessionData({"a": 1}, track=True)
    assert data == {"a": 1}
    assert data.get("b") is None
    assert not data.written
    assert data.reads() == ReadSet(frozenset({"b"}), everything=True)  # == reads it all


READS: list[tuple[Callable[[SessionData], object], ReadSet]] = [
    (lambda d: list(d), ReadSet(key_set=True)),
    (lambda d: len(d), ReadSet(key_set=True)),
    (lambda d: list(d.keys()), ReadSet(key_set=True)),
    (lambda d: list(reversed(d)), ReadSet(key_set=True)),
    (lambda d: list(d.values()), ReadSet(everything=True)),
    (lambda d: list(d.items()), ReadSet(everything=True)),
    (lambda d: d.copy(), ReadSet(everything=True)),
    (lambda d: d == {"a": 1}, ReadSet(everything=True)),
    (lambda d: repr(d), ReadSet(everything=True)),
    (lambda d: d.setdefault("a", 0), ReadSet(frozenset({"a"}))),
    (lambda d: d.pop("a"), ReadSet(frozenset({"a"}))),
    (lambda d: d.popitem(), ReadSet(frozenset({"a"}), key_set=True)),  # the key it returns
]


@pytest.mark.parametrize(("read", "expected"), READS)
def test_each_kind_of_read_is_recorded(
    read: Callable[[SessionData], object], expected: ReadSet
) -> None:
    data = SessionData({"a": 1})
    data.track()
    read(data)
    assert data.reads() == expected


def test_blocking_stops_recording_but_keeps_what_was_read() -> None:
    data = SessionData({"a": 1})
    data.track()
    assert data["a"] == 1
    data.block(lambda: SessionClosedError("closed"))
    assert json.loads(encode_json(data)) == {"a": 1}  # the middleware's own encoding...
    assert data.reads() == ReadSet(frozenset({"a"}))  # ...is not a read of everything
