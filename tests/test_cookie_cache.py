"""The middleware's cache of ``Cookie`` headers whose token verified: a shortcut that
gives every answer the full verification gives, bounded, and never kept for a header
that stops verifying."""

# pyright: reportPrivateUsage=false
# (the tests look inside the cache: which headers it holds, not only the answers)

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SECRET, START
from typed_sessions import Expiry, Keyring, MemoryStore, new_session_id, sign_session_id
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.core.keyring import SEEN_HEADER_BYTES, SEEN_HEADERS

NAME = "__Host-session"
EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
T0 = START.timestamp()


def middleware_settings(keyring: Keyring) -> SessionSettings:
    return SessionSettings(store=MemoryStore(dict[str, Any]), keys=keyring, expiry=EXPIRY)


def header(token: str, extra: str = "") -> bytes:
    return f"{extra}{NAME}={token}".encode("latin-1")


def test_a_header_that_verified_is_remembered_and_answers_the_same(keyring: Keyring) -> None:
    session_id = new_session_id()
    cookie = header(sign_session_id(session_id, keyring, now=START))
    checked = middleware_settings(keyring)
    assert checked.verify_cookie(cookie, T0 + 1) == (session_id, False)
    assert cookie in checked._cookies_seen
    keyring.clear_token_cache()  # the answer now comes from the header cache alone
    assert checked.verify_cookie(cookie, T0 + 2) == (session_id, False)


def test_a_remembered_header_still_expires_and_is_then_forgotten(keyring: Keyring) -> None:
    cookie = header(sign_session_id(new_session_id(), keyring, now=START))
    checked = middleware_settings(keyring)
    assert checked.verify_cookie(cookie, T0)[0] is not None
    late = T0 + EXPIRY.absolute.total_seconds() + 1
    assert checked.verify_cookie(cookie, late) == (None, True)  # dead: cleared
    assert cookie not in checked._cookies_seen


def test_a_header_from_the_future_is_not_taken_from_the_cache(keyring: Keyring) -> None:
    cookie = header(sign_session_id(new_session_id(), keyring, now=START))
    checked = middleware_settings(keyring)
    assert checked.verify_cookie(cookie, T0)[0] is not None
    assert checked.verify_cookie(cookie, T0 - 3600) == (None, True)  # issued an hour ahead


def test_refused_and_foreign_headers_are_never_remembered(keyring: Keyring) -> None:
    token = sign_session_id(new_session_id(), keyring, now=START)
    other = Keyring.from_secrets("another-secret-of-at-least-thirty-two-bytes!")
    checked = middleware_settings(other)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    for cookie in (header(token), header(tampered), b"theme=dark", header(f'"{token}"')):
        assert checked.verify_cookie(cookie, T0)[0] is None
    assert not checked._cookies_seen


def test_the_cache_is_bounded_in_headers_and_in_bytes(keyring: Keyring) -> None:
    checked = middleware_settings(keyring)
    cookies = [
        header(sign_session_id(new_session_id(), keyring, now=START))
        for _ in range(SEEN_HEADERS + 10)
    ]
    for cookie in cookies:
        assert checked.verify_cookie(cookie, T0)[0] is not None
    batch = SEEN_HEADERS // 16  # when full, the oldest sixteenth goes at once
    assert len(checked._cookies_seen) == SEEN_HEADERS - batch + 10
    assert not any(cookie in checked._cookies_seen for cookie in cookies[:batch])
    assert all(cookie in checked._cookies_seen for cookie in cookies[batch:])
    token = sign_session_id(new_session_id(), keyring, now=START)
    long = header(token, extra="a=" + "x" * SEEN_HEADER_BYTES + "; ")
    assert checked.verify_cookie(long, T0)[0] is not None  # verified, not remembered
    assert long not in checked._cookies_seen


KEYRING = Keyring.from_secrets(SECRET)
TOKENS = [
    sign_session_id(new_session_id(), KEYRING, now=START + timedelta(seconds=s)) for s in (0, 90)
]
HEADERS = [
    *(header(t) for t in TOKENS),
    *(header(t, extra="theme=dark; ") for t in TOKENS),
    header(TOKENS[0][:-1] + ("0" if TOKENS[0][-1] != "0" else "1")),
    b"theme=dark",
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(HEADERS), st.floats(-400.0, 8000.0, allow_nan=False)),
        max_size=30,
    )
)
def test_every_answer_is_the_answer_without_caches(calls: list[tuple[bytes, float]]) -> None:
    KEYRING.clear_token_cache()
    warm = middleware_settings(KEYRING)
    for cookie, offset in calls:
        cold = middleware_settings(Keyring.from_secrets(SECRET))
        answer = warm.verify_cookie(cookie, T0 + offset)
        assert answer == cold.verify_cookie(cookie, T0 + offset)
        if answer[0] is None:
            assert cookie not in warm._cookies_seen
