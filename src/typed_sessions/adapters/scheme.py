"""What the cookie and header dependencies share: the OpenAPI security scheme, the token
read from the request, the checks that turn it into a live ``Session[T]`` (see
:mod:`typed_sessions.adapters.dependencies`), and the cache headers of its responses."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeAlias, TypedDict, TypeVar

from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security.base import SecurityBase
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions.adapters.actions import SessionActions
from typed_sessions.adapters.headers import lists
from typed_sessions.adapters.responses import ErrorMapping, SessionFailure
from typed_sessions.adapters.user_sessions import UserSessions
from typed_sessions.core.clock import Clock, checked_clock
from typed_sessions.core.cookies import CookieSettings, parse_cookie
from typed_sessions.core.ids import SessionId, id_digest
from typed_sessions.core.keyring import remember_header
from typed_sessions.core.result import Ok
from typed_sessions.core.session import Expiry, Session, is_expired, touch_session
from typed_sessions.core.signing import Keyring, Keys, TokenError, as_keyring, verify_token_at
from typed_sessions.stores.protocol import SessionStore, StoreError, check_store

__all__ = ["SessionScheme", "Verifier"]

T = TypeVar("T")
_LOGGER = logging.getLogger("typed_sessions")

Verifier: TypeAlias = Callable[[Session[T]], bool | Awaitable[bool]]
"""Decides whether a live session may use the route: ``True`` admits it, anything else
gives 403. Sync verifiers run on the event loop, so keep them quick; do I/O in an async one."""

_MISSING = SessionFailure("unauthenticated", "missing")
_UNKNOWN = SessionFailure("unauthenticated", "unknown_session")
_EXPIRED = SessionFailure("unauthenticated", "session_expired")
_REFUSED = SessionFailure("forbidden", "refused")
_TOKEN_FAILURES = {error: SessionFailure.from_token_error(error) for error in TokenError}


class SessionScheme(SecurityBase, SessionActions[T], UserSessions[T], Generic[T]):
    """What the two dependency kinds share: the OpenAPI scheme, the checks, the
    settings-once actions (``start``, ``rotate``, ``end``, ``issue``, ``reissue``) and a
    user's sessions (``sessions_of``, ``end_one``, ``end_others``, ``end_all_of``)."""

    def __init__(
        self,
        store: SessionStore[T],
        verify_fn: Verifier[T],
        *,
        cookie: CookieSettings | None,
        header: str,
        keys: Keys,
        expiry: Expiry,
        clock: Clock,
        on_error: ErrorMapping,
        scheme_name: str | None,
        description: str | None,
    ) -> None:
        location = "header" if cookie is None else "cookie"
        name = header if cookie is None else cookie.name
        self.model: SecurityBaseModel = APIKey.model_validate(
            {"in": APIKeyIn(location), "name": name, "description": description}
        )
        self.scheme_name: str = scheme_name or (
            "SessionCookie" if cookie is not None else "SessionHeader"
        )
        check_store(store)
        self.store: SessionStore[T] = store
        self.keys: Keyring = as_keyring(keys)
        self.cookie = cookie
        self.expiry = expiry
        self.clock: Clock = checked_clock(clock)
        self._verify = verify_fn
        self._on_error = on_error
        self._max_age: float = expiry.absolute.total_seconds()
        self._cookie_name = None if cookie is None else cookie.name
        self._header = header.lower()
        self._vary = "Cookie" if cookie is not None else header
        self._vary_bytes = self._vary.encode("latin-1")
        # The raw header the token comes in (ASGI gives header names in lower case).
        self._header_bytes = b"cookie" if cookie is not None else self._header.encode("latin-1")
        self._seen: dict[bytes, tuple[SessionId, int]] = {}  # see _authenticate
        self._options: _Options = {
            "cookie": cookie, "header": header, "keys": self.keys, "expiry": expiry,
            "clock": clock, "on_error": on_error, "scheme_name": scheme_name,
            "description": description,
        }  # fmt: skip

    def _token_header(self, request: HTTPConnection) -> bytes | None:
        """The raw header the token comes in: the first, or every ``Cookie`` rejoined."""
        name = self._header_bytes
        found: bytes | None = None
        headers: list[tuple[bytes, bytes]] = request.scope["headers"]
        for key, value in headers:
            if key == name:
                if self._cookie_name is None:
                    return value  # the first, as Headers.get gives
                # HTTP/2 clients may split cookies over several header fields: rejoin.
                found = value if found is None else found + b"; " + value
        return found

    def _token(self, header: bytes) -> str | None:
        """The token in the raw header (the header itself, or the cookie's value)."""
        text = header.decode("latin-1")
        return text if self._cookie_name is None else parse_cookie(text, self._cookie_name)

    def _cache_headers(self, response: Response) -> None:
        """The answer depends on the cookie (or header): say so to caches, and keep
        shared caches from storing a user's page. A route may set its own
        ``Cache-Control`` on the same ``Response`` afterwards (or return its own
        response, whose headers are then all its own). Written to ``raw_headers``, which
        ``response.headers`` wraps, without building that wrapper."""
        raw = response.raw_headers
        raw.append((b"vary", self._vary_bytes))
        for key, _ in raw:
            if key == b"cache-control":
                return
        raw.append((b"cache-control", b"private, no-store"))

    def _refuse(self, failure: SessionFailure) -> Exception:
        """``on_error``'s exception for ``failure``; an ``HTTPException`` gets the same
        ``Vary`` and cache policy as an answered request (unless it sets its own)."""
        exc = self._on_error(failure)
        if isinstance(exc, HTTPException):
            headers = dict(exc.headers or {})
            names = {name.lower(): name for name in headers}
            vary = names.get("vary")
            if vary is None:
                headers["Vary"] = self._vary
            elif not lists(headers[vary].encode("latin-1", "replace"), (self._header_bytes,)):
                headers[vary] = f"{headers[vary]}, {self._vary}"
            if "cache-control" not in names:
                headers["Cache-Control"] = "private, no-store"
            exc.headers = headers
        return exc

    def _unavailable(self, exc: StoreError, step: str, session_id: str) -> Exception:
        """Log a store failure once (class and ID digest only) and map it (503)."""
        if _LOGGER.isEnabledFor(logging.ERROR):  # a user got a 503: ERROR, as everywhere
            _LOGGER.error(
                "typed-sessions: store failed on %s (%s); 503 [sid#%s]",
                step, type(exc).__name__, id_digest(session_id),
            )  # fmt: skip
        return self._refuse(SessionFailure("unavailable", "store_error", exc))

    def _session_id(self, header: bytes, at: float) -> SessionId | SessionFailure:
        """The session ID of the token in ``header`` if it verifies at ``at`` (Unix
        seconds), else why not. A header seen before, whose token verified, is not parsed
        or looked up again: only the token's age is checked (anything else takes the full
        path, which decides)."""
        seen = self._seen.get(header)
        if seen is not None and 0 <= at - seen[1] <= self._max_age:
            return seen[0]
        token = self._token(header)
        if not token:
            return _MISSING
        verified = verify_token_at(token, self.keys, at, self._max_age)
        if isinstance(verified, TokenError):
            if seen is not None:
                self._seen.pop(header, None)
            return _TOKEN_FAILURES[verified]
        remember_header(self._seen, header, token, self.keys)
        return verified

    async def _authenticate(self, header: bytes | None) -> Session[T] | SessionFailure:
        """The session, or the :class:`SessionFailure` of every 401 cause (no ``Result``
        built: this runs on every request); raise for 403 and 503. The store is read
        every time."""
        if header is None:
            return _MISSING
        now = self.clock()
        checked = self._session_id(header, now.timestamp())
        if isinstance(checked, SessionFailure):
            return checked
        try:
            session = await self.store.load(checked)
        except StoreError as exc:
            raise self._unavailable(exc, "load", checked) from exc
        if session is None:
            return _UNKNOWN
        if is_expired(session, now=now):
            return _EXPIRED
        verdict = self._verify(session)
        if type(verdict) is not bool and inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is not True:
            raise self._refuse(_REFUSED)
        touched = touch_session(session, self.expiry, now=now)
        if touched is session:
            return session
        try:
            saved = await self.store.save(touched)
        except StoreError as exc:
            raise self._unavailable(exc, "save", session.id) from exc
        if isinstance(saved, Ok):
            return saved.value
        if saved.error.found is None:  # ended meanwhile (a logout, a rotation): not admitted
            return _UNKNOWN
        # Another request saved this session meanwhile: its write wins, and the handler
        # gets the record it loaded (a later save of it will conflict).
        return session


class _Options(TypedDict):
    """The keyword settings a dependency was made with (for :meth:`optional`)."""

    cookie: CookieSettings | None
    header: str
    keys: Keys
    expiry: Expiry
    clock: Clock
    on_error: ErrorMapping
    scheme_name: str | None
    description: str | None
