"""Session IDs and the signed tokens that carry them, as pure functions.

A token is 127 URL- and cookie-safe characters in four fixed-width parts::

    key (8)                         issued (12)      session id (43)   tag (64)
    base64url(version | key id)     hex Unix secs    as issued         hex HMAC-SHA256

The key part names the format version (1 byte) and the signing key (5-byte key id), so
verification finds its key with one look-up. The tag is HMAC-SHA256 over the ASCII text
of the first three parts, made with a key that HKDF derives from the application secret
and a *purpose*, so tokens for one purpose never verify for another. The expected tag is
compared, in constant time, as its one canonical spelling, and the tag covers every other
character, so exactly one token string is valid for a session, key and second. Nothing
here raises for untrusted input: ``verify_session_token`` returns ``Err(TokenError)``.

Each :class:`Keyring` remembers the last :data:`TOKEN_CACHE_SIZE` tokens that passed
verification, keyed by the exact token string, so a repeat verification skips the HMAC.
The age check still runs on every call; a token is remembered only after its signature
and age held, and forgotten when its age fails.
"""

from __future__ import annotations

import binascii
from binascii import hexlify
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from hmac import compare_digest
from typing import Final

from typed_sessions.core.defaults import DEFAULT_CLOCK_SKEW
from typed_sessions.core.ids import SessionId
from typed_sessions.core.keyring import (
    KEY_PART_LENGTH,
    TOKEN_CACHE_SIZE,
    TOKEN_VERSION,
    Keyring,
    Keys,
    Known,
    SigningKey,
    TokenCache,
    as_keyring,
)
from typed_sessions.core.keyring import (
    MIN_SECRET_BYTES as MIN_SECRET_BYTES,  # still importable from here
)
from typed_sessions.core.result import Err, Ok, Result

__all__ = [
    "TOKEN_CACHE_SIZE",
    "TOKEN_LENGTH",
    "Keyring",
    "Keys",
    "SigningKey",
    "TokenError",
    "as_keyring",
    "sign_session_id",
    "verify_session_token",
]

_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SIGNED_LENGTH = KEY_PART_LENGTH + 12 + 43
TOKEN_LENGTH = _SIGNED_LENGTH + 64
"""Length of every token ``sign_session_id`` returns."""
_MAX_ISSUED = 16**12 - 1

_DEFAULT_SKEW_SECONDS = DEFAULT_CLOCK_SKEW.total_seconds()


class TokenError(StrEnum):
    """Why a session token was refused."""

    MALFORMED = "malformed"
    """Not a token of this format: wrong length, alphabet, padding or version."""
    UNKNOWN_KEY = "unknown_key"
    """Signed by a key this keyring does not hold (another secret or purpose)."""
    BAD_SIGNATURE = "bad_signature"
    """The tag does not match the content: the token was altered or forged."""
    EXPIRED = "expired"
    """Issued longer ago than ``max_age``."""
    FUTURE = "future"
    """Issued later than ``now`` plus the allowed clock skew."""


_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")  # "!" is refused by strict decoding


def sign_session_id(session_id: SessionId, keyring: Keyring, *, now: datetime) -> str:
    """Return the token for ``session_id`` issued at ``now``, signed with the newest key.

    Signing is deterministic: one session ID, key and second give one token.

    Raises:
        ValueError: ``session_id`` is not 43 URL-safe characters (as
            :func:`new_session_id` makes), or ``now`` is naive or before 1970. These
            are programming errors, not untrusted input.
    """
    if now.tzinfo is None:
        raise ValueError(_NAIVE_NOW)
    key = keyring.keys[0]
    issued = int(now.timestamp())
    if not 0 <= issued <= _MAX_ISSUED:
        raise ValueError("`now` is outside the range a token can carry (1970 onwards)")
    try:
        signed = b"%b%012x%b" % (key.prefix, issued, session_id.encode("ascii"))
    except (AttributeError, UnicodeEncodeError):
        signed = b""
    # Every byte of the key and time parts is URL-safe too, so one check covers the ID.
    if len(signed) != _SIGNED_LENGTH or signed.translate(None, _URLSAFE):
        raise ValueError("not a session ID made by new_session_id()")
    return (signed + hexlify(key.mac(signed))).decode("ascii")


def verify_session_token(
    token: str,
    keyring: Keyring,
    *,
    now: datetime,
    max_age: timedelta | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> Result[SessionId, TokenError]:
    """Check ``token`` and return the session ID it carries, or why it was refused.

    Checks, in order: the exact format, the key, the HMAC tag (compared in constant
    time), then the issue time against ``now``, exactly (no rounding): at most
    ``clock_skew`` in the future and, when ``max_age`` is given, at most that old. A token
    that passed before skips the first three checks (see :data:`TOKEN_CACHE_SIZE`), never
    the time checks. Never raises for any ``token`` value.

    Raises:
        ValueError: ``now`` is not an aware datetime (a programming error).
    """
    known = keyring.tokens.get(token) if type(token) is str else None
    if (
        known is not None
        and (answer := known[2]) is not None
        and answer[1] is clock_skew
        and answer[2] is max_age
    ):  # remembered with these settings: only the time check is left
        try:
            if answer[3] <= now <= answer[4]:
                return answer[0]
        except TypeError:  # a naive `now` (or not a datetime at all)
            raise ValueError(_NAIVE_NOW) from None
    return _verify(token, keyring, known, now, max_age, clock_skew)


def _verify(
    token: str,
    keyring: Keyring,
    known: Known | None,
    now: datetime,
    max_age: timedelta | None,
    clock_skew: timedelta,
) -> Result[SessionId, TokenError]:
    """:func:`verify_session_token` for a token it has not remembered with these
    settings, or whose time check failed."""
    if known is None:
        checked = _check_signature(token, keyring)
        if isinstance(checked, TokenError):
            if now.utcoffset() is None:  # the naive test `now - issued` makes below
                raise ValueError(_NAIVE_NOW)
            return _REFUSALS[checked]
        known = checked
        fresh = True
    else:
        fresh = False
    session_id, issued, answer = known
    try:
        issued_at = _from_unix(issued, UTC)
    except (OverflowError, ValueError, OSError):  # a tag-valid token dated after 9999
        if now.utcoffset() is None:
            raise ValueError(_NAIVE_NOW) from None
        return _forget(keyring.tokens, token, TokenError.FUTURE, fresh)
    try:
        age = now - issued_at
    except TypeError:
        raise ValueError(_NAIVE_NOW) from None
    if -age > clock_skew:
        return _forget(keyring.tokens, token, TokenError.FUTURE, fresh)
    if max_age is not None and age > max_age:
        return _forget(keyring.tokens, token, TokenError.EXPIRED, fresh)
    ok = Ok(session_id) if answer is None else answer[0]
    if type(token) is str:  # the exact string (no subclass) is the key
        window = _window(issued_at, clock_skew, max_age)
        keyring.tokens.remember(token, (session_id, issued, (ok, clock_skew, max_age, *window)))
    return ok


def _window(
    issued_at: datetime, clock_skew: timedelta, max_age: timedelta | None
) -> tuple[datetime, datetime]:
    """The window of ``now`` these settings allow, exactly: ``now - issued_at >= -skew``
    is ``now >= issued_at - skew``. An end past the datetime range is the range's end
    (the other way, the time checks have failed already)."""
    try:
        earliest = issued_at - clock_skew
    except OverflowError:
        earliest = _FIRST
    try:
        latest = _LAST if max_age is None else issued_at + max_age
    except OverflowError:
        latest = _LAST
    return earliest, latest


def _forget(verified: TokenCache, token: str, refusal: TokenError, fresh: bool) -> Err[TokenError]:
    if not fresh:
        verified.pop(token, None)  # never remembered once it fails
    return _REFUSALS[refusal]


def verify_token_at(
    token: str,
    keyring: Keyring,
    now: float,
    max_age: float | None,
    skew: float = _DEFAULT_SKEW_SECONDS,
) -> SessionId | TokenError:
    """:func:`verify_session_token` with times as Unix seconds, for the hot paths: the
    session ID, or why the token was refused (no ``Result`` built). Never raises."""
    verified = keyring.tokens
    known = verified.get(token) if type(token) is str else None
    fresh = known is None
    if known is None:
        checked = _check_signature(token, keyring)
        if isinstance(checked, TokenError):
            return checked
        known = checked
    session_id, issued, _ = known
    age = now - issued
    if -age > skew:
        refusal = TokenError.FUTURE
    elif max_age is not None and age > max_age:
        refusal = TokenError.EXPIRED
    else:
        if fresh and type(token) is str:  # the exact string (no subclass) is the key
            verified.remember(token, known)
        return session_id
    if not fresh:
        verified.pop(token, None)  # never remembered once it fails
    return refusal


def _check_signature(token: object, keyring: Keyring) -> Known | TokenError:
    """The token's session ID and issue time if its format, key and tag hold."""
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return TokenError.MALFORMED
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        return TokenError.MALFORMED
    key = keyring.key_for(token)
    if key is None:
        return _unknown_prefix(token[:KEY_PART_LENGTH])
    if not compare_digest(hexlify(key.mac(raw[:_SIGNED_LENGTH])), raw[_SIGNED_LENGTH:]):
        return TokenError.BAD_SIGNATURE
    # The tag covers this text, so it is the exact 12 lowercase hex digits we wrote.
    session_id: SessionId = token[KEY_PART_LENGTH + 12 : _SIGNED_LENGTH]  # type: ignore[assignment]  # a NewType without the call: this is the hot path
    return session_id, int(raw[KEY_PART_LENGTH : KEY_PART_LENGTH + 12], 16), None


# Results are immutable, so each refusal can be one shared value.
_REFUSALS: Final[dict[TokenError, Err[TokenError]]] = {error: Err(error) for error in TokenError}
_NAIVE_NOW = "`now` must be an aware datetime (use datetime.now(UTC))"
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_from_unix = datetime.fromtimestamp


def _unknown_prefix(prefix: str) -> TokenError:
    """A key part no key matches: a key we lack, or not a key part of this format at all."""
    try:
        raw = binascii.a2b_base64(prefix.encode("ascii").translate(_FROM_URLSAFE), strict_mode=True)
    except binascii.Error:
        return TokenError.MALFORMED
    # Six bytes, as sign_session_id writes them (padding would decode to fewer).
    if len(raw) == 6 and raw[0] == TOKEN_VERSION:
        return TokenError.UNKNOWN_KEY
    return TokenError.MALFORMED
