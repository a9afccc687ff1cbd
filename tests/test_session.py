"""The pure session record functions: create, touch, replace data, expire."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import Expiry, SessionId, is_expired, new_session, replace_data, touch_session

from .conftest import START

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
MINUTE = timedelta(minutes=1)


def test_new_session() -> None:
    session = new_session({"user": "ada"}, EXPIRY, now=START)
    assert session.data == {"user": "ada"}
    assert session.created_at == session.last_active == START
    assert session.expires_at == START + EXPIRY.idle
    assert session.version == 0
    assert len(session.id) == 43
    assert new_session(1, EXPIRY, now=START, session_id=SessionId("x" * 43)).id == "x" * 43


def test_new_session_when_absolute_is_shorter_than_idle() -> None:
    short = Expiry(idle=timedelta(hours=1), absolute=timedelta(minutes=5))
    assert new_session(1, short, now=START).expires_at == START + timedelta(minutes=5)


def test_records_are_frozen() -> None:
    session = new_session(1, EXPIRY, now=START)
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.data = 2  # type: ignore[misc]  # the point of the test


def test_is_expired_at_the_deadline() -> None:
    session = new_session(1, EXPIRY, now=START)
    assert not is_expired(session, now=START + EXPIRY.idle - timedelta(microseconds=1))
    assert is_expired(session, now=START + EXPIRY.idle)


def test_touch_slides_idle_deadline() -> None:
    session = new_session(1, EXPIRY, now=START)
    touched = touch_session(session, EXPIRY, now=START + 10 * MINUTE)
    assert touched is not session
    assert touched.expires_at == START + 40 * MINUTE
    assert touched.last_active == START + 10 * MINUTE
    assert touched.created_at == START


def test_touch_is_throttled_below_the_step() -> None:
    session = new_session(1, EXPIRY, now=START)
    assert EXPIRY.step == 3 * MINUTE
    assert touch_session(session, EXPIRY, now=START + 2 * MINUTE) is session
    assert touch_session(session, EXPIRY, now=START + 3 * MINUTE) is not session


def test_touch_never_passes_the_absolute_deadline() -> None:
    session = new_session(1, EXPIRY, now=START)
    for minutes in range(0, 200, 7):
        session = touch_session(session, EXPIRY, now=START + minutes * MINUTE)
        assert session.expires_at <= START + EXPIRY.absolute
    assert session.expires_at == START + EXPIRY.absolute
    assert touch_session(session, EXPIRY, now=START + 119 * MINUTE) is session


def test_replace_data_keeps_identity_and_deadlines() -> None:
    session = dataclasses.replace(new_session({"a": 1}, EXPIRY, now=START), version=4)
    later = START + MINUTE
    changed = replace_data(session, ["other", "type"], now=later)
    assert changed.data == ["other", "type"]
    assert (changed.id, changed.created_at, changed.expires_at, changed.version) == (
        session.id,
        session.created_at,
        session.expires_at,
        4,
    )
    assert changed.last_active == later


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle": timedelta(0)},
        {"absolute": timedelta(seconds=-1)},
        {"touch_step": timedelta(hours=1)},
        {"touch_step": timedelta(minutes=30)},  # = idle: no live session would ever slide
        {"touch_step": timedelta(seconds=-1)},
        {"absolute": timedelta.max},  # "no limit" would overflow every deadline: a 500
        {"idle": timedelta(days=36_526), "absolute": timedelta(days=36_526)},
    ],
)
def test_expiry_rejects_impossible_policies(kwargs: dict[str, timedelta]) -> None:
    with pytest.raises(ValueError, match="Expiry"):
        Expiry(**kwargs)


@given(
    idle=st.integers(1, 10_000),
    absolute=st.integers(1, 100_000),
    steps=st.lists(st.integers(0, 5_000), max_size=30),
)
def test_property_deadline_bounds(idle: int, absolute: int, steps: list[int]) -> None:
    expiry = Expiry(idle=timedelta(seconds=idle), absolute=timedelta(seconds=absolute))
    session = new_session(None, expiry, now=START)
    now = START
    for step in steps:
        now += timedelta(seconds=step)
        touched = touch_session(session, expiry, now=now)
        assert touched.expires_at <= START + expiry.absolute
        assert touched.expires_at >= session.expires_at
        if touched is not session:
            assert touched.expires_at - session.expires_at >= expiry.step
        session = touched


def test_the_longest_policy_still_makes_valid_deadlines() -> None:
    from datetime import UTC, datetime

    from typed_sessions import MAX_LIFETIME

    longest = Expiry(idle=MAX_LIFETIME, absolute=MAX_LIFETIME)
    late = datetime(2999, 12, 31, tzinfo=UTC)
    session = new_session({"n": 1}, longest, now=late)
    assert session.expires_at == late + MAX_LIFETIME
    assert touch_session(session, longest, now=late + MAX_LIFETIME / 2).expires_at == (
        late + MAX_LIFETIME
    )
