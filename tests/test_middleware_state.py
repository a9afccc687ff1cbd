"""The session mapping and the per-key change helpers behind the middleware (no ASGI)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions.adapters.errors import SessionClosedError
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.core.changes import KeyChanges, apply_changes, diff_data
from typed_sessions.core.ids import id_digest
from typed_sessions.core.jsondata import encode_json

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)


@given(json_objects, json_objects)
def test_applying_the_diff_gives_the_after_state(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    merged = apply_changes(before, diff_data(before, after))
    assert encode_json(dict(sorted(merged.items()))) == encode_json(dict(sorted(after.items())))


@given(json_objects, json_objects, json_objects)
def test_changes_apply_onto_a_newer_record_per_key(
    before: dict[str, Any], after: dict[str, Any], newer: dict[str, Any]
) -> None:
    changes = diff_data(before, after)
    merged = apply_changes(newer, changes)
    for key in changes.updated:
        assert encode_json(merged[key]) == encode_json(after[key])
    for key in changes.removed:
        assert key not in merged
    for key, value in newer.items():  # keys this request did not touch keep the newer value
        if key not in changes.updated and key not in changes.removed:
            assert merged[key] is value


@given(json_objects)
def test_encode_json_is_compact_standard_json(data: dict[str, Any]) -> None:
    assert encode_json(data) == json.dumps(data, separators=(",", ":"))
    assert json.loads(encode_json(data)) == data


def test_encode_json_refuses_what_json_cannot_hold() -> None:
    for bad in [{"a": float("nan")}, {"a": {1, 2}}, {"a": b"bytes"}, {"a": object()}]:
        with pytest.raises((TypeError, ValueError)):
            encode_json(bad)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(RecursionError):
        encode_json(loop)
    assert encode_json("é") == '"\\u00e9"'


def test_diff_is_by_json_not_python_equality() -> None:
    assert diff_data({"a": 1}, {"a": True}) == KeyChanges({"a": True}, frozenset())
    assert diff_data({"a": 1}, {"a": 1.0}).updated == {"a": 1.0}
    assert not diff_data({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]})
    assert diff_data({"a": 1, "b": 2}, {"b": 3}) == KeyChanges({"b": 3}, frozenset({"a"}))


def test_apply_changes_does_not_modify_its_input() -> None:
    data = {"a": 1, "b": 2}
    assert apply_changes(data, KeyChanges({"c": 3}, frozenset({"a"}))) == {"b": 2, "c": 3}
    assert data == {"a": 1, "b": 2}


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


def test_blocked_session_data_refuses_every_write() -> None:
    def closed() -> SessionClosedError:
        return SessionClosedError("closed")

    session = SessionData({"a": 1})
    session._blocked = closed
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


def test_id_digest_is_short_and_not_the_id() -> None:
    digest = id_digest("some-session-id")
    assert len(digest) == 12
    assert "some" not in digest
    assert digest == id_digest("some-session-id")
