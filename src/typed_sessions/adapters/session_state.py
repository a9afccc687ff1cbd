"""One request's session, as the middleware hands it to handlers.

:class:`SessionManager` is the object the middleware puts on ``request.state.session``
(the attribute name is configurable). It offers the synchronous ``get_session()`` and
``get_session_id()`` of the authx-extra page, plus ``regenerate()``, ``invalidate()`` and
an awaitable ``load()``. The session itself is a :class:`SessionData`: a ``dict`` of JSON
values whose changes the middleware saves when the response starts.

How changes are found: when a handler first asks for a stored session, the manager keeps
the JSON text of its data; when the response starts, it encodes the data again and saves
only if the text differs. Nested changes (``session["cart"].append(...)``) are therefore
saved like top-level ones, and encoding doubles as the check that the data is JSON. When
the store refuses a save as stale (another request saved first), the manager works out
which top-level keys this request changed (:func:`diff_data`), applies only those to the
newest record (:func:`apply_changes`) and saves again, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, NoReturn

from pydantic_core import PydanticSerializationError, from_json, to_json

from typed_sessions.core.clock import Clock, checked_clock
from typed_sessions.core.codec import SessionEncodeError
from typed_sessions.core.cookies import (
    CookieSettings,
    parse_cookie,
    render_clear_cookie,
    render_set_cookie,
)
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Err, Ok
from typed_sessions.core.retry import retry_delay
from typed_sessions.core.session import (
    Expiry,
    Session,
    expire_session,
    is_expired,
    new_session,
    replace_data,
    touch_session,
)
from typed_sessions.core.signing import Keyring, TokenError, sign_session_id, verify_session_token
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = [
    "KeyChanges",
    "SessionClosedError",
    "SessionConflictError",
    "SessionData",
    "SessionManager",
    "SessionMiddlewareMissingError",
    "SessionNotLoadedError",
    "SessionSettings",
    "SessionSkippedError",
    "SessionUsageError",
    "SkippedSessionManager",
    "WebSocketSessionError",
    "apply_changes",
    "diff_data",
    "encode_json",
    "id_digest",
]

DEFAULT_SAVE_ATTEMPTS: Final = 20
"""How many times a save refused as stale is merged into the newest record and tried."""

# Tokens whose signature held but that cannot be used: the cookie is ours, so it is cleared.
_DEAD_TOKEN: Final = frozenset({TokenError.EXPIRED, TokenError.FUTURE})


def _unencodable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_unencodable)


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """The stdlib's C encoder, to call directly: JSONEncoder.encode's wrapper costs more
    than encoding a small session. Same output; circular data raises RecursionError."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - Pythons without the C accelerator
        return None
    try:
        encode: Callable[[Any, int], list[str]] = make(
            None, _unencodable, json.encoder.encode_basestring_ascii, None, ":", ",",
            False, False, False,
        )  # fmt: skip
        sample: Any = {"a": [1, 2.5, None, True, "\u00e9"], "b": {}}
        if "".join(encode(sample, 0)) != _ENCODER.encode(sample):  # pragma: no cover
            return None
    except TypeError:  # pragma: no cover - a different C signature
        return None
    return encode


_c_encode: Final = _c_encoder()


def encode_json(value: Any) -> str:
    """Return compact, strict JSON text of ``value`` (NaN and infinities refused).

    Raises:
        TypeError: a value is not str, int, float, bool, None, list, tuple or dict.
        ValueError: a float is NaN or infinite.
        RecursionError: the data contains itself.
    """
    if _c_encode is None:  # pragma: no cover - Pythons without the C accelerator
        return _ENCODER.encode(value)
    if isinstance(value, str):
        return json.encoder.encode_basestring_ascii(value)
    return "".join(_c_encode(value, 0))


# --- errors -----------------------------------------------------------------------------


class SessionUsageError(RuntimeError):
    """The session was used in a way this request cannot honour. Base of the errors below."""


class SessionNotLoadedError(SessionUsageError):
    """``get_session()`` (or ``get_session_id()``, ``regenerate()``) before the session loaded.

    Only with ``autoload=False``: await ``load()``, or depend on ``LoadedSessionDep``,
    before using the session synchronously.
    """


class SessionSkippedError(SessionUsageError):
    """The request carried the skip header, so it has no session.

    When a handler lets this escape, the middleware answers 400 Bad Request.
    """


class SessionClosedError(SessionUsageError):
    """The session was changed after the response started, when it can no longer be saved.

    The middleware saves when the response starts (so that a failed save can still become
    a 503); later writes, for example in a background task, raise this error instead of
    being silently lost.
    """


class WebSocketSessionError(SessionUsageError):
    """A WebSocket tried to do what needs a new cookie: create or regenerate a session.

    A cookie cannot be sent once a WebSocket is open, so a WebSocket can read its session
    and change an existing one, but cannot start one.
    """


class SessionMiddlewareMissingError(SessionUsageError):
    """A session dependency was used in an app without ``session_middleware``."""


class SessionConflictError(StoreError):
    """The session kept changing under this request; saving was retried and gave up.

    A :class:`~typed_sessions.stores.protocol.StoreError`, so the middleware answers 503.
    """


# --- the dict-like session --------------------------------------------------------------


def _closed_error() -> SessionUsageError:
    return SessionClosedError(
        "the response has already started, so changes to the session can no longer be "
        "saved; change the session before returning the response"
    )


def _websocket_error() -> SessionUsageError:
    return WebSocketSessionError(
        "this WebSocket has no session and cannot start one: its cookie cannot be sent "
        "on a WebSocket. Create the session in an HTTP request first."
    )


class SessionData(dict[str, Any]):
    """The session: a ``dict`` of JSON values (str keys; str, int, float, bool, None,
    lists and dicts of them). Tuples are stored as lists.

    Reads are plain ``dict`` reads. Writes check that the key is a ``str`` and that the
    session can still be written (see :class:`SessionClosedError` and
    :class:`WebSocketSessionError`). Nested changes need no special call: they are found
    by comparing JSON when the response starts.
    """

    __slots__ = ("_blocked",)

    _blocked: Callable[[], SessionUsageError] | None

    def __init__(self, data: Mapping[str, Any] | None = None, /) -> None:
        """Make a session holding a shallow copy of ``data``."""
        super().__init__(() if data is None else data)
        self._blocked = None

    def _check(self) -> None:
        if self._blocked is not None:
            raise self._blocked()

    def __setitem__(self, key: str, value: Any) -> None:
        if self._blocked is not None:
            raise self._blocked()
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)

    def clear(self) -> None:
        """Remove every key."""
        self._check()
        super().clear()

    def pop(self, key: str, /, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        self._check()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item."""
        self._check()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """Return ``self[key]``, first setting it to ``default`` when missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every key of ``other`` and ``kwargs`` (checked like ``self[key] = value``)."""
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(other, Mapping):
            pairs = other.items()
        elif hasattr(other, "keys"):
            pairs = ((key, other[key]) for key in other.keys())  # noqa: SIM118 - the dict.update protocol
        else:
            pairs = other
        for key, value in pairs:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __ior__(self, other: Any) -> SessionData:  # type: ignore[override,misc]  # dict.__ior__ returns Self; ours is the same object
        self.update(other)
        return self


# --- per-key changes (pure) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """What one request did to the top-level keys of a session: new values and removals."""

    updated: Mapping[str, Any] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.updated) or bool(self.removed)


def _same(left: Any, right: Any) -> bool:
    # JSON text, not ==: 1, 1.0 and True are equal in Python but not as stored JSON.
    return left is right or encode_json(left) == encode_json(right)


def diff_data(before: Mapping[str, Any], after: Mapping[str, Any]) -> KeyChanges:
    """Return the top-level keys that differ between ``before`` and ``after``, as JSON.

    A key whose value was changed in place (a nested change) counts as updated.
    """
    updated = {k: v for k, v in after.items() if k not in before or not _same(before[k], v)}
    removed = frozenset(k for k in before if k not in after)
    return KeyChanges(updated, removed)


def apply_changes(data: Mapping[str, Any], changes: KeyChanges) -> dict[str, Any]:
    """Return a new dict: ``data`` with ``changes`` applied. ``data`` is not modified."""
    merged = {k: v for k, v in data.items() if k not in changes.removed}
    merged.update(changes.updated)
    return merged


def id_digest(session_id: str) -> str:
    """A short, non-reversible label for a session ID, safe to log (12 hex digits)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


def _validate_json(data: Mapping[str, Any]) -> str:
    """Return the JSON text of ``data``; raise :class:`SessionEncodeError` naming the key.

    Also refused, as the store's codec would refuse them: strings holding a lone
    surrogate (not valid Unicode, so not storable as UTF-8) and nesting deeper than
    pydantic serializes or reads back. Nested keys are checked by :func:`_check_keys`,
    only for data about to be saved.
    """
    try:
        text = encode_json(data)
    except (TypeError, ValueError, RecursionError) as exc:
        _refuse_json(data, exc, encode_json)
    if "\\ud" in text or text.count("[") + text.count("{") > _NESTING_CHECK:
        try:
            to_json(data)
        except PydanticSerializationError as exc:
            _refuse_json(data, exc, to_json)
        try:
            from_json(f"[{text}]")  # as a store reads it: inside a record, one level down
        except ValueError as exc:
            _refuse_json(data, exc, _read_back)
    return text


def _check_keys(data: Mapping[str, Any], text: str) -> None:
    """Refuse a dict below the top level with a key that is not a ``str``: JSON would
    turn it into one, or make it collide with one. (``text``: the JSON of ``data``.)"""
    if text.count("{", 1) and (bad_key := _nested_non_str_key(data)) is not None:
        key, inner = bad_key
        raise SessionEncodeError(
            f"session data is not JSON: key {key!r} holds a dict with the key {inner!r}; "
            "JSON object keys are str (another key would come back as a str, or collide)"
        )


def _nested_non_str_key(data: Mapping[str, Any]) -> tuple[str, object] | None:
    """The first dict key below the top level that is not a ``str``, with the top-level
    key holding it (top-level keys are checked as they are set)."""
    for key, value in data.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for inner, nested in item.items():
                    if not isinstance(inner, str):  # a str subclass encodes as its value
                        return key, inner
                    stack.append(nested)
            elif isinstance(item, list | tuple):
                stack.extend(item)
    return None


def _read_back(value: Any) -> None:
    from_json(f"[[{encode_json(value)}]]")  # a value: in the data, in the record


_NESTING_CHECK: Final = 64  # below this many brackets, nesting cannot be too deep


def _refuse_json(
    data: Mapping[str, Any], exc: Exception, encode: Callable[[Any], object]
) -> NoReturn:
    bad = "?"
    for key, value in data.items():
        try:
            encode(value)
        except (TypeError, ValueError, RecursionError, PydanticSerializationError):
            bad = key
            break
    raise SessionEncodeError(
        f"session data is not JSON: key {bad!r}: {exc}. Store only str (valid Unicode), "
        "int, float, bool, None, and lists and dicts of them."
    ) from exc


# --- settings and the manager -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything a :class:`SessionManager` needs, fixed when the middleware is built."""

    store: SessionStore[dict[str, Any]]
    keyring: Keyring
    cookie: CookieSettings
    expiry: Expiry
    clock: Clock
    autoload: bool = True
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    save_attempts: int = DEFAULT_SAVE_ATTEMPTS
    clear_cookie: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.save_attempts < 1:
            raise ValueError("save_attempts must be at least 1")
        checked_clock(self.clock)
        if self.logger is not None and not isinstance(
            self.logger, logging.Logger | logging.LoggerAdapter
        ):
            raise TypeError(
                "logger must be a logging.Logger (or LoggerAdapter), e.g. "
                f"logging.getLogger('app.sessions'), not {type(self.logger).__name__}"
            )
        object.__setattr__(self, "clear_cookie", render_clear_cookie(self.cookie))

    def log(self, level: int, message: str, session_id: str | None = None) -> None:
        """Log ``message`` with a digest of ``session_id``, never the ID itself."""
        logger = self.logger
        if logger is not None and logger.isEnabledFor(level):
            if session_id is None:
                logger.log(level, "typed-sessions: %s", message)
            else:
                logger.log(level, "typed-sessions: %s [sid#%s]", message, id_digest(session_id))


class SessionManager:
    """The session of one request: on ``request.state.session`` and from ``SessionDep``.

    Built by the middleware for every HTTP and WebSocket request; not constructed by
    applications. All methods but :meth:`load` are synchronous, as on the authx-extra
    page. With ``autoload=True`` (the default) a request whose cookie verifies has its
    record loaded before the handler runs; with ``autoload=False`` await :meth:`load`
    first, or :class:`SessionNotLoadedError` is raised.

    Changes are saved when the response starts, and only when the data changed or
    sliding expiry needs it; never when the response is a 5xx.
    """

    __slots__ = (
        "_accessed",
        "_clear_cookie",
        "_closed",
        "_cookie_header",
        "_data",
        "_delete_id",
        "_load_failed",
        "_loaded",
        "_moment",
        "_new_id",
        "_record",
        "_session_id",
        "_settings",
        "_snapshot",
        "_websocket",
    )

    def __init__(
        self,
        settings: SessionSettings,
        cookie_header: bytes | None = None,
        *,
        websocket: bool = False,
    ) -> None:
        """Start the state for a request with this ``Cookie`` header (or none).

        The header is parsed and the token verified only when the session is needed:
        before the handler with ``autoload=True``, at :meth:`load` or :meth:`invalidate`
        otherwise.
        """
        self._settings = settings
        self._cookie_header = cookie_header
        self._session_id: SessionId | None = None
        self._websocket = websocket
        self._loaded = cookie_header is None and settings.autoload
        self._record: Session[dict[str, Any]] | None = None
        self._data: SessionData | None = None
        self._snapshot: str | None = None
        self._accessed = False
        self._new_id: SessionId | None = None
        self._delete_id: SessionId | None = None
        self._clear_cookie = False
        self._closed = False
        self._load_failed = False
        self._moment: datetime | None = None

    # --- the page's API -----------------------------------------------------------------

    def get_session(self) -> SessionData:
        """Return the session: a ``dict`` of JSON values, empty for a new session.

        A new session is stored, and its cookie set, only if it holds data when the
        response starts.

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
        """
        data = self._data
        if data is not None:
            self._accessed = True
            return data
        if not self._loaded:
            raise self._not_loaded("get_session()")
        self._accessed = True
        record = self._record
        if record is None:
            data = SessionData()
            if self._closed:
                data._blocked = _closed_error
            elif self._websocket:
                data._blocked = _websocket_error
        else:
            data = SessionData(record.data)
            self._snapshot = encode_json(record.data)
            if self._closed:
                data._blocked = _closed_error
        self._data = data
        return data

    def get_session_id(self) -> SessionId | None:
        """Return the session's ID, or ``None`` while there is no session.

        A new session gets its ID as soon as it holds data, so the ID returned here is the
        one its record and cookie will carry. After the response started (a background
        task, a streaming body) it names the stored record this request leaves the client
        with: the one it loaded, the new ID after :meth:`regenerate`, or ``None`` when
        there is none (a new session that could not be saved) or the request ended it
        with :meth:`invalidate`. Never log
        it: it is a bearer secret of the user's session (its signed cookie is what
        authenticates, but treat both alike).

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
        """
        if not self._loaded:
            raise self._not_loaded("get_session_id()")
        self._accessed = True
        new_id = self._new_id
        # A new session's ID stays the same while it holds data; emptied, it is no session.
        if new_id is not None and (self._record is not None or self._data or self._closed):
            return new_id
        if self._record is not None:
            return self._record.id
        if self._data and not self._closed:
            self._new_id = new_session_id()
            return self._new_id
        return None  # no session, or (after the response started) none was saved

    def regenerate(self) -> None:
        """Give the session a new ID, keeping its data; the old record is deleted.

        Call it when the user's privileges change (after login) to defeat session
        fixation. The new cookie is set when the response starts. A session without a
        stored record gets a fresh ID anyway, so this changes nothing for it.

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
            WebSocketSessionError: on a WebSocket, which cannot receive the new cookie.
        """
        self._check_open("regenerate()")
        if not self._loaded:
            raise self._not_loaded("regenerate()")
        if self._websocket:
            raise WebSocketSessionError(
                "regenerate() needs a new cookie, which cannot be sent on a WebSocket"
            )
        self._accessed = True
        if self._record is not None:
            self._new_id = new_session_id()

    def invalidate(self) -> None:
        """End the session: its record is deleted and its cookie cleared.

        Needs no :meth:`load`. The mapping from :meth:`get_session` is emptied; data put
        in it afterwards starts a new session with a new ID (for example a flash message
        after logout).
        """
        self._check_open("invalidate()")
        self._accessed = True
        old = self._record.id if self._record is not None else self._verify(self._now())
        if old is not None:
            self._delete_id = old
            self._clear_cookie = True
        self._record = None
        self._session_id = None
        self._new_id = None
        self._snapshot = None
        self._loaded = True
        data = self._data
        if data is not None:
            dict.clear(data)
            if self._websocket:
                data._blocked = _websocket_error

    async def load(self) -> SessionData:
        """Load the session from the store if not done yet, and return it.

        The only store read a request makes; a request without a cookie that verifies
        reads nothing.

        Raises:
            StoreError: the store failed (the middleware answers 503).
        """
        if not self._loaded:
            self._check_open("load()")
            await self._load_record()
        return self.get_session()

    @property
    def loaded(self) -> bool:
        """Whether the session is ready for the synchronous methods."""
        return self._loaded

    # --- internals used by the middleware -----------------------------------------------

    def _not_loaded(self, what: str) -> SessionNotLoadedError:
        return SessionNotLoadedError(
            f"{what} before the session was loaded: with autoload=False, first "
            "`await request.state.session.load()` or depend on LoadedSessionDep"
        )

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise SessionClosedError(
                f"{what} after the response started: it can no longer be saved"
            )

    def _now(self) -> datetime:
        """The request's time: read from the clock once, then the same for every step."""
        moment = self._moment
        if moment is None:
            moment = self._moment = self._settings.clock()
        return moment

    def _verify(self, now: datetime) -> SessionId | None:
        """Verify the request's token once; a token that fails is never used again."""
        header = self._cookie_header
        if header is None:
            return self._session_id
        self._cookie_header = None
        settings = self._settings
        token = parse_cookie(header.decode("latin-1"), settings.cookie.name)
        if token is None:
            return None
        match verify_session_token(
            token, settings.keyring, now=now, max_age=settings.expiry.absolute
        ):
            case Ok(session_id):
                self._session_id = session_id
                return session_id
            case Err(reason):
                settings.log(logging.INFO, f"session cookie refused: {reason}")
                # Ours (the signature held) but unusable: clear it unless a new one is set.
                self._clear_cookie = reason in _DEAD_TOKEN
                return None

    async def _load_record(self) -> None:
        now = self._now()
        session_id = self._verify(now)
        if session_id is not None:
            settings = self._settings
            try:
                record = await settings.store.load(session_id)
            except StoreError:
                self._load_failed = True
                raise
            if record is not None and (record.id != session_id or is_expired(record, now=now)):
                record = None
            if record is None:
                settings.log(logging.INFO, "cookie names no live session; not adopted")
                self._session_id = None
                self._clear_cookie = True
            else:
                settings.log(logging.DEBUG, "session loaded", session_id)
            self._record = record
        self._loaded = True

    def _pending(self) -> bool:
        """Whether the response start needs :meth:`_commit` (cheap, no I/O)."""
        return (
            self._record is not None
            or bool(self._data)
            or self._delete_id is not None
            or self._clear_cookie
        )

    def _close(self) -> None:
        self._closed = True
        if self._data is not None:
            self._data._blocked = _closed_error

    def _abandon(self) -> None:
        """Close without saving (nothing changed, or the handler failed). No new ID was
        saved, so :meth:`get_session_id` names the record this request loaded, or
        ``None`` (also after ``invalidate()``, whose deletion did not happen either)."""
        self._close()
        self._new_id = None

    async def _commit(self) -> str | None:
        """Save what changed; return the ``Set-Cookie`` value to send, if any.

        Everything is checked (JSON included) before the first write. Invalidate deletes
        the old record, then saves any new data under a new ID; regenerate saves the new
        record first, then ends the old one (see :meth:`_regenerate`). A WebSocket caller
        ignores the returned cookie; the session cannot ask for a new one there.

        Raises:
            SessionEncodeError: the data is not JSON; nothing was written.
            StoreError: the store failed or the session kept changing (answer 503).
        """
        self._close()
        settings = self._settings
        record = self._record
        data = self._data
        if record is None:
            if data:
                _check_keys(data, _validate_json(data))
                if self._delete_id is not None:
                    await settings.store.delete(self._delete_id)
                    settings.log(logging.INFO, "session invalidated", self._delete_id)
                return await self._create(dict(data), None)
            if self._delete_id is not None:
                await settings.store.delete(self._delete_id)
                settings.log(logging.INFO, "session invalidated", self._delete_id)
            self._new_id = None  # an emptied new session: nothing was saved under it
            return settings.clear_cookie if self._clear_cookie else None
        if self._new_id is not None:  # regenerate
            if data is not None:
                _check_keys(data, _validate_json(data))
            return await self._regenerate(record, data)
        if data is not None:
            text = _validate_json(data)
            if text != self._snapshot:
                _check_keys(data, text)
                await self._save_changes(record, data)
                return None
        now = self._now()
        touched = touch_session(record, settings.expiry, now=now)
        if touched is not record:
            result = await settings.store.save(touched)
            if isinstance(result, Ok):
                settings.log(logging.DEBUG, "session expiry extended", record.id)
            else:  # saved meanwhile (which slid the expiry too) or ended: leave it be
                settings.log(logging.DEBUG, "expiry not extended: record changed", record.id)
        return None

    async def _create(
        self, data: dict[str, Any], previous: Session[dict[str, Any]] | None
    ) -> str | None:
        created = await self._save_new(data, previous)
        self._settings.log(logging.INFO, "session saved under a new ID", created.id)
        return self._cookie_for(created)

    async def _save_new(
        self, data: dict[str, Any], previous: Session[dict[str, Any]] | None
    ) -> Session[dict[str, Any]]:
        """Save ``data`` under a new ID (keeping ``previous``'s lifetime when given)."""
        settings = self._settings
        now = self._now()
        # From here on, get_session_id() reports the ID being saved; it is reset when
        # the save fails, so it never names a record that does not exist.
        session_id = self._new_id = self._new_id or new_session_id()
        if previous is None:
            session = new_session(data, settings.expiry, now=now, session_id=session_id)
        else:  # regenerated: the same lifetime under a new ID
            session = replace(replace_data(previous, data, now=now), id=session_id, version=0)
            session = touch_session(session, settings.expiry, now=now)
        try:
            result = await settings.store.save(session)
        except BaseException:
            self._new_id = None
            raise
        if not isinstance(result, Ok):  # a fresh 256-bit ID already taken: never expected
            self._new_id = None
            settings.log(logging.WARNING, "a new session ID collided with a stored one")
            raise SessionConflictError("a new session ID collided with a stored one")
        settings.log(logging.DEBUG, "record saved under a new ID", session_id)
        return result.value

    def _cookie_for(self, session: Session[dict[str, Any]]) -> str | None:
        if self._websocket:  # unreachable through the public API; never set a cookie there
            return None
        settings = self._settings
        token = sign_session_id(session.id, settings.keyring, now=self._now())
        return render_set_cookie(settings.cookie, token)

    async def _regenerate(
        self, record: Session[dict[str, Any]], data: SessionData | None
    ) -> str | None:
        """Move the session to a new ID: save the new record, then end the old one.

        In that order, a store failure at any step leaves the old session working (the
        new record is removed again, best effort) and the client gets 503 without a
        cookie. Ending the old record is a compare-and-set: when other requests saved to
        it meanwhile, the merged data is first written to the new record, then the ending
        is tried again, so nothing is lost once the old record is gone. If the old
        session ended meanwhile (a logout elsewhere), it is not brought back: the new
        record is removed and no cookie is sent.
        """
        settings = self._settings
        first = record.data if data is None else dict(data)
        created = moved = await self._save_new(first, record)
        expired = False

        async def carry(merged: dict[str, Any]) -> None:
            nonlocal moved, expired
            if expired or encode_json(merged) == encode_json(moved.data):  # JSON: 1 != True
                return
            result = await settings.store.save(replace_data(moved, merged, now=self._now()))
            if isinstance(result, Ok):
                moved = result.value
            elif result.error.found is None:  # expired, with the old one (same deadline)
                expired = True
            else:  # nobody else has the new ID: not expected
                settings.log(logging.WARNING, "the new record changed while regenerating")
                raise SessionConflictError("the new session record changed while regenerating")

        try:
            ended = await self._merge_and_save(record, data, end=True, before_ending=carry)
        except BaseException:
            self._new_id = None  # the old session stays, under its old ID
            await self._discard(created.id)
            raise
        if ended is None or expired:
            self._new_id = None
            self._record = None  # ended elsewhere: there is no session now
            await self._discard(created.id)
            settings.log(logging.INFO, "session ended meanwhile; not regenerated", record.id)
            return None
        settings.log(logging.INFO, "session regenerated; old record ended", record.id)
        return self._cookie_for(created)

    async def _discard(self, session_id: SessionId) -> None:
        """Delete a record nobody has a cookie for yet; a failure here only leaves an
        orphan that expires by itself."""
        try:
            await self._settings.store.delete(session_id)
        except StoreError:
            self._settings.log(
                logging.WARNING, "could not remove an unannounced record", session_id
            )

    async def _save_changes(self, record: Session[dict[str, Any]], data: SessionData) -> None:
        if await self._merge_and_save(record, data, end=False) is None:
            # Ended meanwhile (invalidated, regenerated or expired by another request):
            # never bring the old ID back; this request's changes are dropped. No cookie
            # either: the other response set the right one (cleared, or the regenerated
            # ID), and clearing here could undo it.
            self._settings.log(logging.INFO, "session ended meanwhile; changes dropped", record.id)

    async def _merge_and_save(
        self,
        record: Session[dict[str, Any]],
        data: SessionData | None,
        *,
        end: bool,
        before_ending: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> Session[dict[str, Any]] | None:
        """Save this request's version of ``record`` (or end it), merging on conflict.

        The candidate is ``record`` with ``data`` (touched, or marked ended). When the
        store refuses it as stale, wait a little, load the newest record, apply the
        top-level keys this request changed, and try again, up to ``save_attempts``.
        ``before_ending`` gets each merged data before the ending is tried again.
        Returns the candidate that was written, or ``None`` when the record had ended.

        Raises:
            SessionConflictError: still stale after ``save_attempts`` attempts.
        """
        settings = self._settings
        store = settings.store
        now = self._now()
        changes: KeyChanges | None = None
        base = record
        for attempt in range(settings.save_attempts):
            merged = base.data if data is None else dict(data) if changes is None else (
                apply_changes(base.data, changes)
            )  # fmt: skip
            # Touch first: it returns the record itself when the deadline barely moves,
            # so the common case builds one new record (replace_data), not two.
            candidate = replace_data(touch_session(base, settings.expiry, now=now), merged, now=now)
            if before_ending is not None and attempt > 0:
                await before_ending(merged)
            result = await store.save(expire_session(candidate) if end else candidate)
            if isinstance(result, Ok):
                settings.log(logging.DEBUG, "session ended" if end else "session saved", record.id)
                return candidate
            if result.error.found is None:
                return None
            if attempt + 1 == settings.save_attempts:
                break
            # Lost a race: wait a little (so colliding writers spread out), then merge
            # this request's changes into the newest record and try again.
            await asyncio.sleep(retry_delay(attempt))
            latest = await store.load(record.id)
            if latest is None or is_expired(latest, now=now):
                return None
            if changes is None and data is not None:
                assert self._snapshot is not None  # set with the data, from the record
                changes = diff_data(json.loads(self._snapshot), data)
            settings.log(logging.DEBUG, "session changed meanwhile; merging", record.id)
            base = latest
        settings.log(logging.WARNING, "session kept changing; not saved", record.id)
        raise SessionConflictError(f"session still stale after {settings.save_attempts} attempts")


class SkippedSessionManager(SessionManager):
    """What ``request.state.session`` holds when the request carried the skip header.

    Every method raises :class:`SessionSkippedError`; the middleware answers 400 when a
    handler lets it escape.
    """

    __slots__ = ()

    def __init__(self) -> None:  # no settings: it never touches a store
        pass

    def _skipped(self) -> SessionSkippedError:
        return SessionSkippedError(
            "this request carried the skip header, so it has no session; do not send the "
            "skip header to routes that use the session"
        )

    def get_session(self) -> SessionData:
        """Raise :class:`SessionSkippedError`."""
        raise self._skipped()

    def get_session_id(self) -> SessionId | None:
        """Raise :class:`SessionSkippedError`."""
        raise self._skipped()

    def regenerate(self) -> None:
        """Raise :class:`SessionSkippedError`."""
        raise self._skipped()

    def invalidate(self) -> None:
        """Raise :class:`SessionSkippedError`."""
        raise self._skipped()

    async def load(self) -> SessionData:
        """Raise :class:`SessionSkippedError`."""
        raise self._skipped()

    @property
    def loaded(self) -> bool:
        """Always ``False``."""
        return False
