"""The pure core of subjects: devices, handles, session info and subject checks."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from typed_sessions import (
    Device,
    Expiry,
    Ok,
    Session,
    SessionCodec,
    SessionId,
    SessionInfo,
    device_from,
    new_session,
    new_session_id,
    replace_data,
    session_handle,
    session_info,
    touch_session,
)
from typed_sessions.core.subjects import (
    HANDLE_LENGTH,
    MAX_SUBJECT_LENGTH,
    MAX_USER_AGENT_LENGTH,
    check_subject,
)
from typed_sessions.stores.redis import RedisStore

from .conftest import START

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
anything = st.one_of(st.none(), st.text(), st.text(alphabet=st.characters(codec="utf-8")))


def is_control(char: str) -> bool:
    return unicodedata.category(char)[0] == "C" or char in "\u2028\u2029"


# -- device_from -------------------------------------------------------------------------


@given(anything, anything, st.booleans())
def test_device_from_never_raises_and_is_small_and_clean(
    agent: str | None, address: str | None, keep: bool
) -> None:
    device = device_from(agent, address, keep_address=keep)
    assert len(device.user_agent) <= MAX_USER_AGENT_LENGTH
    assert not any(is_control(char) for char in device.user_agent)
    if not keep:
        assert device.address is None
    if device.address is not None:
        network = ipaddress.ip_network(device.address)  # a network, never a host
        assert network.prefixlen == (24 if network.version == 4 else 48)


@given(st.text(max_size=300).filter(lambda t: not any(is_control(c) for c in t)))
def test_a_clean_user_agent_is_kept_up_to_the_limit(agent: str) -> None:
    assert device_from(agent, None).user_agent == agent[:MAX_USER_AGENT_LENGTH]


def test_control_characters_are_removed_before_the_cut() -> None:
    forged = "Mozilla\r\nX-Injected: 1\x1b[31m\u202egnp.exe\u200b" + "\x00" * 3000 + "end"
    assert device_from(forged, None).user_agent == "MozillaX-Injected: 1[31mgnp.exeend"
    assert device_from(None, None) == Device("")
    assert device_from("x" * 10_000, None).user_agent == "x" * MAX_USER_AGENT_LENGTH


@given(st.ip_addresses(v=4))
def test_ipv4_addresses_are_coarsened_to_their_24(address: ipaddress.IPv4Address) -> None:
    device = device_from("ua", str(address), keep_address=True)
    assert device.address == str(ipaddress.ip_network(f"{address}/24", strict=False))
    assert device.address is not None
    assert address in ipaddress.ip_network(device.address)


@given(st.ip_addresses(v=6))
def test_ipv6_addresses_are_coarsened_to_their_48(address: ipaddress.IPv6Address) -> None:
    device = device_from("ua", str(address), keep_address=True)
    assert device.address is not None
    if address.ipv4_mapped is None:
        assert device.address == str(ipaddress.ip_network(f"{address}/48", strict=False))
    else:  # ::ffff:a.b.c.d is the IPv4 address it maps
        assert device.address == str(ipaddress.ip_network(f"{address.ipv4_mapped}/24", False))


@pytest.mark.parametrize(
    "address",
    [
        "",
        "localhost",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4/8",
        "fe80::1%eth0x" * 9,
        "::1:::",
        "1.2.3.4 x",
        "\u0661.2.3.4",
        "unix:/tmp/sock",
        "x" * 5000,
    ],
)
def test_anything_but_an_address_gives_none(address: str) -> None:
    assert device_from("ua", address, keep_address=True).address is None


def test_the_documented_examples() -> None:
    assert device_from("ua", "203.0.113.77", keep_address=True).address == "203.0.113.0/24"
    assert device_from("ua", "2001:db8:1:2::3", keep_address=True).address == "2001:db8:1::/48"
    assert device_from("ua", "203.0.113.77").address is None  # off unless turned on


# -- session_handle ----------------------------------------------------------------------

HANDLE = re.compile(rf"[A-Za-z0-9_-]{{{HANDLE_LENGTH}}}")


@given(st.text())
def test_a_handle_is_22_url_safe_characters(session_id: str) -> None:
    handle = session_handle(SessionId(session_id))
    assert HANDLE.fullmatch(handle)
    assert handle == session_handle(SessionId(session_id))  # stable


@given(st.text(), st.text())
def test_different_ids_have_different_handles(one: str, two: str) -> None:
    if one != two:
        assert session_handle(SessionId(one)) != session_handle(SessionId(two))


def test_a_handle_reveals_neither_the_id_nor_its_store_key() -> None:
    session_id = new_session_id()
    handle = session_handle(session_id)
    assert handle not in session_id
    assert session_id[:8] not in handle
    key = RedisStore(Redis(), dict[str, Any], prefix="").key_for(session_id)  # never connects
    assert handle not in key  # the store key hashes without the handle's prefix


# -- session_info and subjects -----------------------------------------------------------

subjects = st.text(min_size=1, max_size=MAX_SUBJECT_LENGTH).filter(
    lambda t: not any(is_control(c) for c in t)
)


@given(subjects, st.booleans())
def test_session_info_shows_the_session_but_not_its_id(subject: str, current: bool) -> None:
    device = Device("ua", None)
    session: Session[dict[str, Any]] = new_session(
        {}, EXPIRY, now=START, subject=subject, auth_time=START, device=device
    )
    other = new_session_id()
    info = session_info(session, current_id=session.id if current else other)
    assert info == SessionInfo(
        session_handle(session.id),
        subject,
        START,
        START,
        session.expires_at,
        START,
        device,
        current=current,
    )
    assert session.id not in repr(info)


def test_session_info_needs_a_subject() -> None:
    with pytest.raises(ValueError, match="subject"):
        session_info(new_session({}, EXPIRY, now=START))
    session: Session[dict[str, Any]] = new_session({}, EXPIRY, now=START, subject="ada")
    assert session_info(session).current is False  # no current ID given


@given(subjects)
def test_valid_subjects_pass(subject: str) -> None:
    assert check_subject(subject) == subject


@pytest.mark.parametrize(
    "bad", ["", "a\x00b", "tab\t", "new\nline", "\u202eevil", "zero\u200bwidth", "x" * 257, 7, None]
)
def test_invalid_subjects_are_programming_errors(bad: Any) -> None:
    with pytest.raises(ValueError, match="subject"):
        check_subject(bad)
    with pytest.raises(ValueError, match="subject"):
        new_session(
            dict[str, Any](), EXPIRY, now=START, subject=bad
        ) if bad is not None else check_subject(bad)


@given(subjects)
def test_the_pure_functions_keep_subject_auth_time_and_device(subject: str) -> None:
    device = device_from("ua", "10.1.2.3", keep_address=True)
    session: Session[dict[str, Any]] = new_session(
        {}, EXPIRY, now=START, subject=subject, auth_time=START, device=device
    )
    later = START + timedelta(minutes=10)
    for changed in (
        replace_data(session, {"n": 1}, now=later),
        touch_session(session, EXPIRY, now=later),
    ):
        assert (changed.subject, changed.auth_time, changed.device) == (subject, START, device)


@given(subjects)
def test_the_codec_keeps_subject_auth_time_and_device(subject: str) -> None:
    codec: SessionCodec[dict[str, Any]] = SessionCodec(dict[str, Any])
    device = Device('Mozilla/5.0 "quoted" \\', "2001:db8::/48")
    session: Session[dict[str, Any]] = new_session(
        {}, EXPIRY, now=START, subject=subject, auth_time=START, device=device
    )
    assert codec.decode(codec.encode(session)) == Ok(session)


def test_the_cap_ends_the_oldest_starts_and_counts_a_moved_session_once() -> None:
    from typed_sessions.core.subjects import beyond_cap

    others = [("a", 1, 1), ("b", 2, 2), ("c", 3, 3), ("c-moved", 3, 3)]
    assert beyond_cap(others, 4, 4, 3) == ["a"]  # b, c (two records, one session), the new
    assert beyond_cap(others, 4, 4, 4) == []
    assert beyond_cap(others, 4, 4, 1) == ["a", "b", "c", "c-moved"]
    old = [("a", 1, 1), ("b", 2, 2), ("old", 0, 0)]
    assert beyond_cap(old, 0, 9, 2) == ["a"]  # the old record of the one saved is never
    assert beyond_cap([], 0, 0, 1) == []  # ended, nor counted


def test_sign_ins_at_once_never_end_each_other() -> None:
    """Found by an audit: with a cap of 1, two sign-ins whose saves each saw the other
    ended each other. A save never ends a session signed in later than its own (when
    both have an auth_time)."""
    from typed_sessions.core.subjects import beyond_cap

    assert beyond_cap([("later", 2, 20)], 1, 10, 1) == []  # the earlier sign-in's save
    assert beyond_cap([("earlier", 1, 10)], 2, 20, 1) == ["earlier"]  # the later one's
    assert beyond_cap([("same", 2, 10)], 1, 10, 1) == ["same"]  # a tie: the older start
    assert beyond_cap([("signed", 1, 10)], 2, None, 1) == ["signed"]  # no auth_time saved:
    # found by a review: such a save enforced no cap at all; it goes by the starts alone
    assert beyond_cap([("never", 1, None)], 2, None, 1) == ["never"]


@given(
    st.lists(
        st.tuples(st.integers(0, 999), st.integers(0, 9), st.none() | st.integers(0, 9)),
        unique_by=lambda o: o[0],
    ),
    st.integers(0, 9),
    st.none() | st.integers(0, 9),
    st.integers(1, 5),
)
def test_the_cap_keeps_the_newest_starts_and_never_the_saved_one(
    others: list[tuple[int, int, int | None]], started: int, signed_in: int | None, cap: int
) -> None:
    from typed_sessions.core.subjects import beyond_cap

    doomed = set(beyond_cap(others, started, signed_in, cap))
    newest = sorted({s for _, s, _ in others if s != started}, reverse=True)[: cap - 1]
    for key, start, auth in others:
        later = auth is not None and signed_in is not None and auth > signed_in
        expected = start != started and start not in newest and not later
        assert (key in doomed) == expected
