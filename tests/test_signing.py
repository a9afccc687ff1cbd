"""Signing and verifying session tokens: the happy path and every hostile input."""

from __future__ import annotations

import base64
import dataclasses
import string
import warnings
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typed_sessions import (
    DEFAULT_CLOCK_SKEW,
    TOKEN_LENGTH,
    Err,
    Keyring,
    Ok,
    SessionId,
    TokenError,
    new_session_id,
    sign_session_id,
    verify_session_token,
)
from typed_sessions.core.signing import as_keyring

from .conftest import SECRET, START

OTHER_SECRET = "another-secret-of-at-least-thirty-two-bytes!"
URLSAFE = string.ascii_letters + string.digits + "-_"
KEY_PART = 8  # characters naming version and key


@pytest.fixture
def session_id() -> SessionId:
    return new_session_id()


@pytest.fixture
def token(session_id: SessionId, keyring: Keyring) -> str:
    return sign_session_id(session_id, keyring, now=START)


def verify(token: object, keyring: Keyring, **kwargs: object) -> object:
    return verify_session_token(token, keyring, now=START, **kwargs)  # type: ignore[arg-type]  # hostile values on purpose


# --- the happy path ---------------------------------------------------------------


def test_new_session_ids_are_256_bit_url_safe_and_unique() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    for sid in ids:
        assert len(sid) == 43
        assert set(sid) <= set(URLSAFE)
        assert len(base64.urlsafe_b64decode(sid + "=")) == 32


def test_round_trip(session_id: SessionId, token: str, keyring: Keyring) -> None:
    assert len(token) == TOKEN_LENGTH
    assert set(token) <= set(URLSAFE)
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)


def test_signing_is_deterministic(session_id: SessionId, keyring: Keyring) -> None:
    assert sign_session_id(session_id, keyring, now=START) == sign_session_id(
        session_id, keyring, now=START + timedelta(microseconds=999)
    )
    assert sign_session_id(session_id, keyring, now=START) != sign_session_id(
        session_id, keyring, now=START + timedelta(seconds=1)
    )


def test_secrets_never_in_repr(keyring: Keyring) -> None:
    text = repr(keyring)
    assert SECRET not in text
    assert keyring.signing_key.key.hex() not in text
    assert repr(keyring.signing_key.key) not in text


# --- every bad input is an Err, never an exception ---------------------------------


@pytest.mark.parametrize(
    "value",
    ["", " ", "x" * TOKEN_LENGTH, "é" * TOKEN_LENGTH, "\x00" * TOKEN_LENGTH, None, 42, b"bytes"],
)
def test_garbage_is_malformed(value: object, keyring: Keyring) -> None:
    assert verify(value, keyring) == Err(TokenError.MALFORMED)


def test_one_mebibyte_string(keyring: Keyring) -> None:
    assert verify("A" * 1024 * 1024, keyring) == Err(TokenError.MALFORMED)


def test_every_truncation_and_extension(token: str, keyring: Keyring) -> None:
    for end in range(len(token)):
        assert verify(token[:end], keyring) == Err(TokenError.MALFORMED)
        assert verify(token[len(token) - end :], keyring) == Err(TokenError.MALFORMED)
    for extra in ("=", "==", "A", " ", "\n"):
        assert verify(token + extra, keyring) == Err(TokenError.MALFORMED)
        assert verify(extra + token, keyring) == Err(TokenError.MALFORMED)


def test_every_single_character_change(token: str, keyring: Keyring) -> None:
    replacements = URLSAFE + '+/=.;," é\x00\x7f'
    for position, original in enumerate(token):
        for char in replacements:
            if char == original:
                continue
            changed = token[:position] + char + token[position + 1 :]
            result = verify(changed, keyring)
            assert isinstance(result, Err), (position, char)
            result = cast(Err[TokenError], result)
            if not char.isascii():
                assert result.error is TokenError.MALFORMED
            elif position < KEY_PART:
                assert result.error in (TokenError.UNKNOWN_KEY, TokenError.MALFORMED)
            else:
                assert result.error is TokenError.BAD_SIGNATURE, (position, char)


def test_case_change_of_the_hex_tag_is_refused(token: str, keyring: Keyring) -> None:
    assert verify(token[:-64] + token[-64:].upper(), keyring) == Err(TokenError.BAD_SIGNATURE)


def test_non_canonical_base64(token: str, keyring: Keyring) -> None:
    # Padding added, standard alphabet, and changed spare bits of the ID's last character.
    assert verify(token + "=", keyring) == Err(TokenError.MALFORMED)
    swapped = token.replace("-", "+").replace("_", "/")
    if swapped != token:
        assert isinstance(verify(swapped, keyring), Err)
    standard_key = token[:KEY_PART].replace("-", "+").replace("_", "/")
    assert isinstance(verify(standard_key + "+" + token[KEY_PART + 1 :], keyring), Err)
    id_end = KEY_PART + 12 + 42  # the ID's last character carries two spare bits
    last = token[id_end]
    index = URLSAFE.index(last)
    for spare in (1, 2, 3):
        sibling = URLSAFE[index ^ spare] if (index ^ spare) < len(URLSAFE) else "A"
        if sibling != last:
            changed = token[:id_end] + sibling + token[id_end + 1 :]
            assert verify(changed, keyring) == Err(TokenError.BAD_SIGNATURE)


def test_other_secret_or_purpose_is_unknown_key(session_id: SessionId, keyring: Keyring) -> None:
    other_secret = Keyring.from_secrets(OTHER_SECRET)
    other_purpose = Keyring.from_secrets(SECRET, purpose="csrf")
    for other in (other_secret, other_purpose):
        foreign = sign_session_id(session_id, other, now=START)
        assert verify(foreign, keyring) == Err(TokenError.UNKNOWN_KEY)
        # Same session ID and time, other key: the tags differ too.
        assert (
            foreign[KEY_PART:-64] == sign_session_id(session_id, keyring, now=START)[KEY_PART:-64]
        )


def test_key_id_not_in_keyring(token: str, keyring: Keyring) -> None:
    raw = base64.urlsafe_b64decode(token[:KEY_PART])
    for key_id in (b"\x00" * 5, b"\xff" * 5, bytes([raw[1] ^ 1]) + raw[2:]):
        forged = base64.urlsafe_b64encode(b"\x01" + key_id).decode() + token[KEY_PART:]
        assert verify(forged, keyring) == Err(TokenError.UNKNOWN_KEY)
    other_version = base64.urlsafe_b64encode(b"\x02" + raw[1:]).decode() + token[KEY_PART:]
    assert verify(other_version, keyring) == Err(TokenError.MALFORMED)
    padded = base64.urlsafe_b64encode(b"\x01" + raw[1:4]).decode()  # 4 bytes: "...=="
    assert len(padded) == KEY_PART
    assert verify(padded + token[KEY_PART:], keyring) == Err(TokenError.MALFORMED)


def test_max_age(session_id: SessionId, keyring: Keyring) -> None:
    token = sign_session_id(session_id, keyring, now=START)
    hour = timedelta(hours=1)
    at = START + hour
    assert verify_session_token(token, keyring, now=at, max_age=hour) == Ok(session_id)
    late = at + timedelta(seconds=1)
    assert verify_session_token(token, keyring, now=late, max_age=hour) == Err(TokenError.EXPIRED)
    assert verify_session_token(token, keyring, now=late + 1000 * hour) == Ok(session_id)


def test_future_beyond_skew(session_id: SessionId, keyring: Keyring) -> None:
    token = sign_session_id(session_id, keyring, now=START + DEFAULT_CLOCK_SKEW)
    assert verify_session_token(token, keyring, now=START) == Ok(session_id)
    ahead = sign_session_id(
        session_id, keyring, now=START + DEFAULT_CLOCK_SKEW + timedelta(seconds=1)
    )
    assert verify_session_token(ahead, keyring, now=START) == Err(TokenError.FUTURE)
    strict = verify_session_token(token, keyring, now=START, clock_skew=timedelta(0))
    assert strict == Err(TokenError.FUTURE)


def test_checks_signature_before_time(session_id: SessionId, keyring: Keyring) -> None:
    old = sign_session_id(session_id, keyring, now=START - timedelta(days=9))
    forged = old[:-1] + ("0" if old[-1] != "0" else "1")
    result = verify_session_token(forged, keyring, now=START, max_age=timedelta(seconds=1))
    assert result == Err(TokenError.BAD_SIGNATURE)


# --- rotation ----------------------------------------------------------------------


def test_rotation(session_id: SessionId) -> None:
    old = Keyring.from_secrets(OTHER_SECRET)
    rotated = Keyring.from_secrets(SECRET, OTHER_SECRET)
    retired = Keyring.from_secrets(SECRET)
    old_token = sign_session_id(session_id, old, now=START)
    assert verify_session_token(old_token, rotated, now=START) == Ok(session_id)
    assert verify_session_token(old_token, retired, now=START) == Err(TokenError.UNKNOWN_KEY)
    new_token = sign_session_id(session_id, rotated, now=START)
    assert new_token == sign_session_id(session_id, retired, now=START)
    assert new_token[:KEY_PART] == retired.signing_key.prefix.decode()
    assert verify_session_token(new_token, old, now=START) == Err(TokenError.UNKNOWN_KEY)


def test_a_key_dropped_by_dataclasses_replace_verifies_nothing(session_id: SessionId) -> None:
    """``dataclasses.replace(keyring, keys=...)`` is an obvious way to drop a leaked
    secret: the copy's lookup of keys and its remembered tokens are its own."""
    rotated = Keyring.from_secrets(SECRET, OTHER_SECRET)
    leaked = sign_session_id(session_id, Keyring.from_secrets(OTHER_SECRET), now=START)
    assert verify_session_token(leaked, rotated, now=START) == Ok(session_id)  # now remembered
    dropped = dataclasses.replace(rotated, keys=rotated.keys[:1])
    assert verify_session_token(leaked, dropped, now=START) == Err(TokenError.UNKNOWN_KEY)
    assert dropped.tokens is not rotated.tokens
    assert dropped.cached_tokens == 0
    added = dataclasses.replace(dropped, keys=rotated.keys)
    assert verify_session_token(leaked, added, now=START) == Ok(session_id)
    with pytest.raises(ValueError, match="at least one key"):
        dataclasses.replace(rotated, keys=())
    with pytest.raises(ValueError, match="same key id"):
        dataclasses.replace(rotated, keys=rotated.keys[:1] * 2)


# --- configuration mistakes raise at construction ----------------------------------


@pytest.mark.parametrize("secrets", [("",), (b"",), (SECRET, "")])
def test_empty_secret(secrets: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="empty"):
        Keyring.from_secrets(*secrets)


def test_duplicate_secrets() -> None:
    with pytest.raises(ValueError, match="twice"):
        Keyring.from_secrets(SECRET, OTHER_SECRET, SECRET)
    with pytest.raises(ValueError, match="twice"):
        Keyring.from_secrets(SECRET, SECRET.encode())


def test_empty_purpose() -> None:
    with pytest.raises(ValueError, match="purpose"):
        Keyring.from_secrets(SECRET, purpose="")


@pytest.mark.parametrize(
    ("purpose", "error"), [(b"session", TypeError), (1, TypeError), ("\ud800", ValueError)]
)
def test_a_purpose_that_is_not_text_is_a_clear_error(
    purpose: object, error: type[Exception]
) -> None:
    """(It raised AttributeError or a bare UnicodeEncodeError; found by an audit.)"""
    with pytest.raises(error, match="purpose"):
        Keyring.from_secrets(SECRET, purpose=purpose)  # type: ignore[arg-type]  # what the check is for


def test_short_secret_warns() -> None:
    with pytest.warns(UserWarning, match="at least 32"):
        Keyring.from_secrets("short")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Keyring.from_secrets("x" * 32)


@pytest.mark.parametrize(
    "bad", ["", "short", "x" * 42 + ";", "x" * 41 + "\r\n", "x" * 42 + "=", "é" * 43, "x" * 44]
)
def test_sign_refuses_foreign_ids(bad: str, keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="session ID"):
        sign_session_id(SessionId(bad), keyring, now=START)


def test_naive_now_is_a_programming_error(session_id: SessionId, keyring: Keyring) -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="aware"):
        sign_session_id(session_id, keyring, now=naive)
    token = sign_session_id(session_id, keyring, now=START)
    with pytest.raises(ValueError, match="aware"):
        verify_session_token(token, keyring, now=naive)


# --- properties ----------------------------------------------------------------------

ids = st.text(alphabet=URLSAFE, min_size=43, max_size=43).map(SessionId)
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
PROPERTY_KEYRING = Keyring.from_secrets(SECRET)


@given(session_id=ids, now=moments)
def test_property_round_trip(session_id: SessionId, now: datetime) -> None:
    token = sign_session_id(session_id, PROPERTY_KEYRING, now=now)
    assert verify_session_token(token, PROPERTY_KEYRING, now=now) == Ok(session_id)


@given(session_id=ids, data=st.data())
def test_property_any_mutation_is_rejected(session_id: SessionId, data: st.DataObject) -> None:
    token = sign_session_id(session_id, PROPERTY_KEYRING, now=START)
    position = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.characters().filter(lambda c: c != token[position]))
    changed = token[:position] + char + token[position + 1 :]
    assert isinstance(verify_session_token(changed, PROPERTY_KEYRING, now=START), Err)


@given(session_id=ids, cut=st.integers(0, TOKEN_LENGTH - 1), extra=st.text(max_size=4))
def test_property_truncations_are_rejected(session_id: SessionId, cut: int, extra: str) -> None:
    token = sign_session_id(session_id, PROPERTY_KEYRING, now=START)
    changed = token[:cut] + extra
    if changed != token:
        assert isinstance(verify_session_token(changed, PROPERTY_KEYRING, now=START), Err)


@given(value=st.one_of(st.text(), st.text(alphabet=URLSAFE, min_size=127, max_size=127)))
def test_property_arbitrary_text_never_raises(value: str) -> None:
    assert isinstance(verify_session_token(value, PROPERTY_KEYRING, now=START), Err)


def test_now_before_1970_is_a_programming_error(session_id: SessionId, keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="1970"):
        sign_session_id(session_id, keyring, now=datetime(1969, 12, 31, tzinfo=UTC))


def test_as_keyring_takes_a_keyring_or_a_secret_and_refuses_anything_else(
    keyring: Keyring,
) -> None:
    assert as_keyring(keyring) is keyring
    assert as_keyring(SECRET).signing_key == keyring.signing_key
    assert as_keyring(SECRET.encode()).signing_key == keyring.signing_key
    for value in (None, 42, [SECRET]):
        with pytest.raises(TypeError, match="keys must be a Keyring or a secret"):
            as_keyring(value)  # type: ignore[arg-type]  # an untyped caller's mistake
