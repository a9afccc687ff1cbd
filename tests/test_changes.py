"""core/changes.py: what a request changed and read, and whether it can be merged."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from typed_sessions.core.changes import (
    NOTHING_READ,
    KeyChanges,
    ReadSet,
    apply_changes,
    diff_data,
    lost_reads,
)
from typed_sessions.core.jsondata import encode_json

from .json_strategies import json_objects


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


def test_diff_is_by_json_not_python_equality() -> None:
    assert diff_data({"a": 1}, {"a": True}) == KeyChanges({"a": True}, frozenset())
    assert diff_data({"a": 1}, {"a": 1.0}).updated == {"a": 1.0}
    assert not diff_data({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]})
    assert diff_data({"a": 1, "b": 2}, {"b": 3}) == KeyChanges({"b": 3}, frozenset({"a"}))


def test_apply_changes_does_not_modify_its_input() -> None:
    data = {"a": 1, "b": 2}
    assert apply_changes(data, KeyChanges({"c": 3}, frozenset({"a"}))) == {"b": 2, "c": 3}
    assert data == {"a": 1, "b": 2}


@given(json_objects, json_objects)
def test_nothing_read_is_never_lost(before: dict[str, Any], newest: dict[str, Any]) -> None:
    assert lost_reads(before, newest, NOTHING_READ) == frozenset()


@given(json_objects, json_objects, st.frozensets(st.text(max_size=4), max_size=4))
def test_a_read_key_is_lost_exactly_when_its_json_changed(
    before: dict[str, Any], newest: dict[str, Any], keys: frozenset[str]
) -> None:
    lost = lost_reads(before, newest, ReadSet(keys))
    for key in keys:
        same = (key in before) == (key in newest) and (
            key not in before or encode_json(before[key]) == encode_json(newest[key])
        )
        assert (key in lost) == (not same)
    assert lost <= keys


@given(json_objects, json_objects)
def test_reading_everything_loses_any_change(
    before: dict[str, Any], newest: dict[str, Any]
) -> None:
    lost = lost_reads(before, newest, ReadSet(everything=True))
    assert bool(lost) == (
        encode_json(dict(sorted(before.items()))) != encode_json(dict(sorted(newest.items())))
    )


def test_reading_the_key_set_loses_an_added_or_removed_key_only() -> None:
    reads = ReadSet(key_set=True)
    assert lost_reads({"a": 1}, {"a": 2}, reads) == frozenset()
    assert lost_reads({"a": 1}, {"a": 1, "b": 2}, reads) == {"b"}
    assert lost_reads({"a": 1, "b": 2}, {"a": 1}, reads) == {"b"}


def test_lost_reads_compare_json_not_python_equality() -> None:
    assert lost_reads({"a": 1}, {"a": True}, ReadSet(frozenset({"a"}))) == {"a"}
    assert lost_reads({"a": 1}, {"a": 1.0}, ReadSet(frozenset({"a"}))) == {"a"}
    assert lost_reads({}, {"a": None}, ReadSet(frozenset({"a"}))) == {"a"}  # absent != null
