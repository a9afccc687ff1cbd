"""The middleware's settings: every option checked once, into one frozen record."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from time import time_ns
from typing import Any, Final, TypeAlias, TypedDict, cast, get_origin

from typing_extensions import is_typeddict

from typed_sessions.adapters.responses import ErrorMapping, default_error_mapping
from typed_sessions.core.clock import EPOCH, MICROSECOND, Clock, checked_clock, utc_now
from typed_sessions.core.codec import SessionCodec
from typed_sessions.core.cookies import (
    CookieSettings,
    is_http_token,
    parse_cookie,
    render_clear_cookie,
)
from typed_sessions.core.defaults import DEFAULT_ATTEMPTS, DEFAULT_COOKIE, DEFAULT_EXPIRY
from typed_sessions.core.ids import SessionId, id_digest
from typed_sessions.core.keyring import remember_header
from typed_sessions.core.session import Expiry
from typed_sessions.core.signing import Keyring, Keys, TokenError, as_keyring, verify_token_at
from typed_sessions.stores.lane import InstantLane, RecordLane
from typed_sessions.stores.protocol import SessionStore, check_store

__all__ = ["LOGGER", "Logger", "MiddlewareOptions", "SessionSettings", "SkipHeader"]

Logger: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]
"""A ``logging.Logger`` or ``LoggerAdapter`` for session events."""

LOGGER: Final = logging.getLogger("typed_sessions")
"""The library's logger, used by default everywhere: store failures at WARNING or ERROR,
refusals and sign-in events at INFO, the rest at DEBUG. It never receives a token, a
session ID, a secret or a connection string: only a 12-digit digest of the ID."""

SkipHeader: TypeAlias = str | tuple[str, str]
"""A header name, or a ``(name, value)`` pair: requests carrying it get no session."""


class MiddlewareOptions(TypedDict, total=False):
    """The optional settings of :func:`~typed_sessions.session_middleware`, by name."""

    cookie: CookieSettings
    state_attribute: str
    skip_header: SkipHeader | None
    logger: Logger | None
    expiry: Expiry
    autoload: bool
    save_attempts: int
    clock: Clock
    take_turns: bool
    turn_timeout: float
    on_error: ErrorMapping


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything the middleware and its session managers need, checked at construction.

    The fields are :func:`~typed_sessions.session_middleware`'s options (see there);
    ``keyring`` and ``skip`` are ``keys`` and ``skip_header`` in checked form.

    Raises:
        TypeError: ``store`` is not a session store (no ``load``, ``save`` or
            ``delete``), ``logger`` is not a ``logging.Logger`` or ``LoggerAdapter``, or
            ``cookie`` is not a ``CookieSettings``.
        ValueError: ``save_attempts`` below 1, ``turn_timeout`` not positive, an empty
            secret, a ``state_attribute`` that is not a public identifier, or an invalid
            ``skip_header``.
    """

    store: SessionStore[dict[str, Any]]
    keys: Keys = field(repr=False)
    cookie: CookieSettings = DEFAULT_COOKIE
    state_attribute: str = "session"
    skip_header: SkipHeader | None = None
    logger: Logger | None = LOGGER
    expiry: Expiry = DEFAULT_EXPIRY
    autoload: bool = True
    save_attempts: int = DEFAULT_ATTEMPTS
    clock: Clock = utc_now
    take_turns: bool = False
    turn_timeout: float = 10.0
    on_error: ErrorMapping = default_error_mapping
    keyring: Keyring = field(init=False, repr=False)
    skip: tuple[bytes, bytes | None] | None = field(init=False, repr=False)
    clear_cookie: str = field(init=False, repr=False)
    max_age: float = field(init=False, repr=False)  # the token's, in seconds
    lane: RecordLane | None = field(init=False, repr=False)  # the store's, for JSON data
    instant_lane: InstantLane | None = field(init=False, repr=False)  # the lane, if instant
    lane_expiry: tuple[int, int, int] = field(init=False, repr=False)  # idle, absolute, step
    _cookies_seen: dict[bytes, tuple[SessionId, int]] = field(
        default_factory=dict[bytes, tuple[SessionId, int]], init=False, repr=False, compare=False
    )
    """``Cookie`` headers whose session token verified, with its ID and issue time (Unix
    seconds): at most ``SEEN_HEADERS`` headers of at most ``SEEN_HEADER_BYTES`` (core.keyring)."""

    def __post_init__(self) -> None:
        check_store(self.store)
        check_mapping_store(self.store)
        match self.cookie:
            case CookieSettings():
                pass
            case _:  # from an untyped app, anything
                raise TypeError(
                    f"cookie must be a CookieSettings, not {type(self.cookie).__name__}"
                )
        if self.save_attempts < 1:
            raise ValueError("save_attempts must be at least 1")
        if not self.turn_timeout > 0:
            raise ValueError("turn_timeout must be a positive number of seconds")
        checked_clock(self.clock)
        match self.logger:
            case None | logging.Logger() | logging.LoggerAdapter():
                pass
            case _:  # from an untyped app, anything
                raise TypeError(
                    "logger must be a logging.Logger (or LoggerAdapter), e.g. "
                    f"logging.getLogger('app.sessions'), not {type(self.logger).__name__}"
                )
        attribute = self.state_attribute
        if not attribute.isidentifier() or attribute.startswith("_"):
            raise ValueError(
                f"state_attribute must be a public identifier, not {attribute!r} "
                "(request.state keeps its own data under names starting with '_')"
            )
        skip = None if self.skip_header is None else parse_skip_header(self.skip_header)
        object.__setattr__(self, "keyring", as_keyring(self.keys))
        object.__setattr__(self, "skip", skip)
        object.__setattr__(self, "clear_cookie", render_clear_cookie(self.cookie))
        object.__setattr__(self, "max_age", self.expiry.absolute.total_seconds())
        lane = lane_of(self.store)
        object.__setattr__(self, "lane", lane)
        object.__setattr__(self, "instant_lane", instant_lane_of(lane))
        expiry = self.expiry
        micro = (
            expiry.idle // MICROSECOND,
            expiry.absolute // MICROSECOND,
            expiry.step // MICROSECOND,
        )
        object.__setattr__(self, "lane_expiry", micro)

    def moment(self) -> tuple[datetime | None, int]:
        """The time now, read from the clock once, in microseconds since the Unix epoch;
        with the clock's own ``datetime``, or ``None`` for the default clock (whose
        reading is the microseconds alone: make the ``datetime`` from them if needed)."""
        clock = self.clock
        if clock is utc_now:
            return None, time_ns() // 1_000
        now = clock()
        return now, (now - EPOCH) // MICROSECOND

    def verify_cookie(self, header: bytes, now: float) -> tuple[SessionId | None, bool]:
        """The session ID in a ``Cookie`` header, if its token verifies at ``now`` (Unix
        seconds), and whether the cookie is ours but dead (expired or from the future:
        clear it).

        A header seen before, whose token verified, is not parsed or looked up again:
        only the token's age is checked (anything but an age from 0 to ``max_age`` takes
        the full path, which decides)."""
        seen = self._cookies_seen.get(header)
        if seen is not None and 0 <= now - seen[1] <= self.max_age:
            return seen[0], False
        token = parse_cookie(header.decode("latin-1"), self.cookie.name)
        if token is None:
            return None, False
        keyring = self.keyring
        checked = verify_token_at(token, keyring, now, self.max_age)
        if isinstance(checked, TokenError):
            self.log(logging.INFO, f"session cookie refused: {checked}")
            if seen is not None:
                self._cookies_seen.pop(header, None)
            return None, checked in _DEAD_TOKEN
        remember_header(self._cookies_seen, header, token, keyring)
        return checked, False

    def log(self, level: int, message: str, session_id: str | None = None) -> None:
        """Log ``message`` with a digest of ``session_id``, never the ID itself."""
        logger = self.logger
        if logger is not None and logger.isEnabledFor(level):
            if session_id is None:
                logger.log(level, "typed-sessions: %s", message)
            else:
                logger.log(level, "typed-sessions: %s [sid#%s]", message, id_digest(session_id))


def check_mapping_store(store: object) -> None:
    """Refuse a store whose records do not hold a ``dict`` (the middleware's session is one).

    Stores with a :class:`~typed_sessions.core.codec.SessionCodec` (every store of the
    library) say their data type; another store is trusted.

    Raises:
        TypeError: the store holds a model, dataclass or any other non-``dict`` type.
    """
    codec = getattr(store, "codec", None)
    if not isinstance(codec, SessionCodec):
        return
    data_type: object = codec.data_type
    if data_type is Any or data_type is dict or get_origin(data_type) is dict:
        return
    if isinstance(data_type, type) and is_typeddict(data_type):
        return
    raise TypeError(
        f"the session middleware keeps a dict in each session; this store holds "
        f"{getattr(data_type, '__name__', data_type)!s}: pass MemoryStore(dict[str, Any]) "
        "(or RedisStore(..., dict[str, Any])), or use make_cookie_dependency for typed data"
    )


# Tokens whose signature held but that cannot be used: the cookie is ours, so it is cleared.
_DEAD_TOKEN: Final = frozenset({TokenError.EXPIRED, TokenError.FUTURE})


def instant_lane_of(lane: RecordLane | None) -> InstantLane | None:
    """``lane``, if it is an :class:`InstantLane` whose plain methods stand for its own
    ``load_record`` and ``save_record``: each defined by the same class as its coroutine.
    A subclass overriding a coroutine only, or a proxy forwarding attributes, is read
    and saved through its coroutines, so that its own code runs."""
    if lane is None:
        return None
    for name in ("load_record", "save_record"):
        owner = next((kind for kind in type(lane).__mro__ if name in vars(kind)), None)
        if owner is None or not callable(vars(owner).get(name + "_now")):
            return None
    return cast("InstantLane", lane)


def lane_of(store: object) -> RecordLane | None:
    """The store's :class:`RecordLane`, if it offers one and holds any JSON object (the
    lane reads the data as JSON, with no model to validate it)."""
    codec = getattr(store, "codec", None)
    data_type = getattr(codec, "data_type", None)
    if (data_type is Any or data_type is dict or data_type == dict[str, Any]) and all(
        callable(getattr(store, name, None))
        for name in ("load_record", "save_record", "session_of")
    ):
        return cast("RecordLane", store)
    return None


def parse_skip_header(option: object) -> tuple[bytes, bytes | None]:
    """Check ``skip_header`` (a name, or ``(name, value)``) and return it as bytes.

    Raises:
        ValueError: not a valid header name, or a value no request could carry.
    """
    value: str | None
    match option:
        case str() as name:
            value = None
        case tuple((str() as name, str() as value)):
            pass
        case _:
            raise ValueError(
                f"skip_header must be a header name or a (name, value) pair of str, not {option!r}"
            )
    if not is_http_token(name) or name.lower() == "cookie":
        raise ValueError(f"invalid skip_header name {name!r}")
    if value is None:
        return name.lower().encode("ascii"), None
    # Servers strip a header value's outer whitespace, never pass CR, LF or NUL, and carry
    # values as Latin-1 bytes: any other value could never match a request.
    unmatchable = ValueError(f"invalid skip_header value {value!r}: no request can carry it")
    if value != value.strip(" \t") or any(c in value for c in "\r\n\0"):
        raise unmatchable
    try:
        return name.lower().encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise unmatchable from None
