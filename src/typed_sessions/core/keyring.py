"""Keyrings: the keys HKDF derives from application secrets, one purpose each, and the
tokens each keyring remembers as verified (see :mod:`typed_sessions.core.signing`)."""

from __future__ import annotations

import binascii
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Final, TypeAlias, TypeVar, cast

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Ok

__all__ = ["TOKEN_CACHE_SIZE", "Keyring", "Keys", "SigningKey", "as_keyring"]

TOKEN_VERSION = 1
KEY_PART_LENGTH = 8
"""Characters of a token's key part: base64 of 6 bytes, the version and the key id."""
TOKEN_CACHE_SIZE: Final = 10_000
"""How many verified tokens each :class:`Keyring` remembers (the oldest goes first)."""

MIN_SECRET_BYTES = 32
K = TypeVar("K")
V = TypeVar("V")
_HKDF_SALT = b"typed-sessions/v1"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One derived signing key and its 5-byte key id. Its bytes never appear in a repr."""

    key_id: int
    key: bytes = field(repr=False)
    prefix: bytes = field(repr=False, compare=False)
    _mac: hmac.HMAC = field(repr=False, compare=False)  # keyed once, copied per use

    def mac(self, message: bytes) -> bytes:
        """Return the HMAC-SHA256 of ``message`` under this key."""
        mac = self._mac.copy()
        mac.update(message)
        return mac.finalize()


def _derive(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_HKDF_SALT, info=info).derive(secret)


def _signing_key(secret: bytes, purpose: bytes) -> SigningKey:
    key = _derive(secret, b"typed-sessions/sign/" + purpose, 32)
    key_id = _derive(secret, b"typed-sessions/key-id/" + purpose, 5)
    prefix = _b64(TOKEN_VERSION.to_bytes(1, "big") + key_id)
    return SigningKey(int.from_bytes(key_id, "big"), key, prefix, hmac.HMAC(key, hashes.SHA256()))


Answer: TypeAlias = tuple[Ok[SessionId], timedelta, timedelta | None, datetime, datetime]
"""What :func:`verify_session_token` keeps of a token it verified: its shared ``Ok``
answer; the ``clock_skew`` and ``max_age`` of that call; and the window of ``now`` they
allow (``issued - clock_skew`` to ``issued + max_age``), so a repeat call with the same
two objects compares ``now`` with two datetimes instead of doing arithmetic."""

Known: TypeAlias = tuple[SessionId, int, Answer | None]
"""A remembered token's session ID, issue time (Unix seconds) and, once
:func:`verify_session_token` has verified it, that function's :data:`Answer`."""


class TokenCache(dict[str, Known]):
    """The tokens a keyring remembers as verified: token -> :data:`Known`, oldest first,
    at most :data:`TOKEN_CACHE_SIZE` of them. Only the signing functions fill it."""

    __slots__ = ()

    def remember(self, token: str, known: Known) -> None:
        """Remember ``token``, which has just passed verification; the oldest goes first."""
        remember(self, token, known, TOKEN_CACHE_SIZE)


SEEN_HEADERS: Final = 1024
"""How many request headers an adapter remembers as carrying a verified token."""

SEEN_HEADER_BYTES: Final = 512
"""The longest header remembered so (longer ones are verified by their token, which the
keyring remembers)."""


def remember_header(
    seen: dict[bytes, tuple[SessionId, int]], header: bytes, token: str, keyring: Keyring
) -> None:
    """Remember that ``header`` carries ``token``, which has just passed verification
    with ``keyring``: its session ID and issue time, so that the same header is not
    parsed again (only the token's age is checked at each use, against the issue time)."""
    known = keyring.tokens.get(token)
    if known is not None and len(header) <= SEEN_HEADER_BYTES:
        remember(seen, header, known[:2], SEEN_HEADERS)


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Put ``key`` in ``cache``, a dict kept to at most ``limit`` entries: when full, its
    oldest sixteenth goes first (nothing when ``key`` is there already: its value is
    replaced).

    A sixteenth at once, not one entry: a dict finds its oldest entry by scanning past
    the slots of those removed before it (until it next resizes), so removing one at a
    time costs up to ``limit`` steps each; a batch pays that scan once."""
    if len(cache) >= limit and key not in cache:
        try:
            for oldest in list(islice(cache, limit // 16 or 1)):
                cache.pop(oldest, None)  # (another thread may have removed it)
        except RuntimeError:  # pragma: no cover - another thread changed it meanwhile
            cache.clear()
    cache[key] = value


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys for one purpose: the first signs, every one verifies.

    Build it with :meth:`from_secrets`. Rotating a secret means putting the new one first
    and keeping the old one behind it until every token it signed has expired.
    """

    purpose: str
    keys: tuple[SigningKey, ...]
    _by_prefix: dict[str, SigningKey] = field(init=False, repr=False, compare=False)
    tokens: TokenCache = field(init=False, repr=False, compare=False)
    """The tokens that verified (see :mod:`typed_sessions.core.signing`)."""

    def __post_init__(self) -> None:
        # Made from ``keys`` here, never given: a copy by ``dataclasses.replace`` with
        # fewer keys verifies none of the dropped ones, and remembers no token of them.
        if not self.keys:
            raise ValueError("a Keyring needs at least one key")
        by_prefix = {key.prefix.decode(): key for key in self.keys}
        if len(by_prefix) != len(self.keys):
            raise ValueError("two keys of the keyring have the same key id")
        object.__setattr__(self, "_by_prefix", by_prefix)
        object.__setattr__(self, "tokens", TokenCache())

    @classmethod
    def from_secrets(
        cls, newest: str | bytes, *older: str | bytes, purpose: str = "session"
    ) -> Keyring:
        """Derive a keyring from application secrets, newest first.

        Each secret yields a per-purpose key through HKDF-SHA256, so one secret can serve
        several cookies whose signatures are not interchangeable.

        Raises:
            TypeError: a secret is neither ``str`` nor ``bytes``, or ``purpose`` is not a
                ``str``.
            ValueError: a secret is empty or not valid text (a lone surrogate), two
                secrets are equal, or ``purpose`` is empty or not valid text.

        Warns:
            UserWarning: a secret is shorter than 32 bytes.
        """
        given = cast("object", purpose)  # typed as str: an untyped app may pass anything
        if not isinstance(given, str):
            raise TypeError(f"Keyring purpose must be a str, not {type(given).__name__}")
        try:
            info = purpose.encode()
        except UnicodeEncodeError:  # a lone surrogate
            info = b""
        if not info:
            raise ValueError("Keyring purpose must be a non-empty string of valid text")
        raw = [_secret_bytes(s, n) for n, s in enumerate((newest, *older), start=1)]
        for position, secret in enumerate(raw):
            if not secret:
                raise ValueError(f"secret #{position + 1} is empty; use `keygen` to make one")
            if len(secret) < MIN_SECRET_BYTES:
                warnings.warn(
                    f"secret #{position + 1} is {len(secret)} bytes; use at least "
                    f"{MIN_SECRET_BYTES} random bytes (`python -m typed_sessions keygen`)",
                    UserWarning,
                    stacklevel=2,
                )
        if len(set(raw)) != len(raw):
            raise ValueError("the same secret appears twice in the keyring")
        return cls(purpose, tuple(_signing_key(secret, info) for secret in raw))

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with (from the newest secret)."""
        return self.keys[0]

    def clear_token_cache(self) -> None:
        """Forget every remembered token: the next verification of each checks its HMAC."""
        self.tokens.clear()

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens this keyring remembers (at most ``TOKEN_CACHE_SIZE``)."""
        return len(self.tokens)

    def key_for(self, token: str) -> SigningKey | None:
        """Return the key that ``token`` names, or ``None`` when this keyring lacks it."""
        return self._by_prefix.get(token[:KEY_PART_LENGTH])


Keys: TypeAlias = Keyring | str | bytes
"""What every ``keys=`` option accepts: a :class:`Keyring`, or one secret to derive it from."""


def as_keyring(keys: Keys) -> Keyring:
    """Return ``keys`` as a :class:`Keyring` (a secret gets the default purpose).

    Raises:
        ValueError: an empty secret (see :meth:`Keyring.from_secrets`).
        TypeError: ``keys`` is neither a ``Keyring`` nor a secret.
    """
    match keys:
        case Keyring():
            return keys
        case str() | bytes():
            return Keyring.from_secrets(keys)
        case _:  # a caller without type checks
            raise TypeError(
                f"keys must be a Keyring or a secret (str or bytes), not {type(keys).__name__}"
            )


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> bytes:
    """Unpadded URL-safe base64 of ``raw``."""
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _secret_bytes(secret: str | bytes, position: int) -> bytes:
    """``secret`` as bytes: text as UTF-8 (the error quotes no part of it).

    Raises:
        TypeError: ``secret`` is neither text nor bytes (``bytes(4096)`` would make an
            int 4,096 zero bytes: a key anyone can rebuild).
    """
    given: object = secret  # typed as str | bytes: an untyped app may pass anything
    if isinstance(given, bytes | bytearray | memoryview):
        return bytes(given)
    if not isinstance(secret, str):
        raise TypeError(f"secret #{position} must be str or bytes, not {type(secret).__name__}")
    try:
        return secret.encode()
    except UnicodeEncodeError:
        raise ValueError(f"secret #{position} is not valid text; pass bytes") from None
