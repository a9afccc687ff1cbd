"""FastAPI dependencies that turn a signed token into a live, verified ``Session[T]``.

Each request, in this order: read the token (cookie or header); check its signature and
age (no store access unless it verifies); load the session; refuse it once past its idle
or absolute deadline; ask ``verify_fn``; slide the idle deadline, saving only when it
moves by at least ``expiry.step``. A refused token or session gives one identical 401,
``verify_fn`` saying no gives 403, a :class:`StoreError` gives 503; ``on_error`` replaces
that mapping. The dependency is a FastAPI security scheme, so OpenAPI documents it as an
``apiKey`` scheme and lists it under ``security`` on every route that uses it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Generic, Literal, NamedTuple, TypeAlias, TypeVar, overload

from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions.adapters.actions import SessionActions
from typed_sessions.adapters.reauth import fresh_dependency
from typed_sessions.adapters.responses import ErrorMapping, SessionFailure, default_error_mapping
from typed_sessions.adapters.user_sessions import UserSessions
from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.cookies import CookieSettings, is_http_token, parse_cookie
from typed_sessions.core.defaults import DEFAULT_COOKIE, DEFAULT_EXPIRY, DEFAULT_HEADER
from typed_sessions.core.ids import id_digest
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Expiry, Session, is_expired, touch_session
from typed_sessions.core.signing import Keyring, Keys, TokenError, as_keyring, verify_token_at
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = [
    "OptionalSessionDependency",
    "SessionDependency",
    "Verifier",
    "make_cookie_dependency",
    "make_header_dependency",
]

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


class _SessionScheme(SecurityBase, SessionActions[T], UserSessions[T], Generic[T]):
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
        self._options = _Options(cookie, header, self.keys, expiry, clock, on_error,
                                 scheme_name, description)  # fmt: skip

    def _token(self, request: HTTPConnection) -> str | None:
        if self._cookie_name is None:
            return request.headers.get(self._header)
        # HTTP/2 clients may split cookies over several header fields: read them all.
        headers = request.headers.getlist("cookie")
        if not headers:
            return None
        return parse_cookie(
            "; ".join(headers) if len(headers) > 1 else headers[0], self._cookie_name
        )

    def _cache_headers(self, response: Response) -> None:
        """The answer depends on the cookie (or header): say so to caches, and keep
        shared caches from storing a user's page. A route may set its own
        ``Cache-Control`` on the same ``Response`` afterwards (or return its own
        response, whose headers are then all its own)."""
        headers = response.headers
        headers.append("vary", self._vary)
        if "cache-control" not in headers:
            headers["cache-control"] = "private, no-store"

    def _unavailable(self, exc: StoreError, step: str, session_id: str) -> Exception:
        """Log a store failure once (class and ID digest only) and map it (503)."""
        if _LOGGER.isEnabledFor(logging.WARNING):
            _LOGGER.warning(
                "typed-sessions: store failed on %s (%s); 503 [sid#%s]",
                step, type(exc).__name__, id_digest(session_id),
            )  # fmt: skip
        return self._on_error(SessionFailure("unavailable", "store_error", exc))

    async def _authenticate(self, token: str | None) -> Result[Session[T], SessionFailure]:
        """``Ok(session)``, ``Err`` for every 401 cause; raise for 403 and 503."""
        if not token:
            return Err(_MISSING)
        now = self.clock()
        checked = verify_token_at(token, self.keys, now.timestamp(), self._max_age)
        if isinstance(checked, TokenError):
            return Err(_TOKEN_FAILURES[checked])
        try:
            session = await self.store.load(checked)
        except StoreError as exc:
            raise self._unavailable(exc, "load", checked) from exc
        if session is None:
            return Err(_UNKNOWN)
        if is_expired(session, now=now):
            return Err(_EXPIRED)
        verdict = self._verify(session)
        if type(verdict) is not bool and inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is not True:
            raise self._on_error(_REFUSED)
        touched = touch_session(session, self.expiry, now=now)
        if touched is session:
            return Ok(session)
        try:
            saved = await self.store.save(touched)
        except StoreError as exc:
            raise self._unavailable(exc, "save", session.id) from exc
        if isinstance(saved, Ok):
            return Ok(saved.value)
        if saved.error.found is None:  # ended meanwhile (a logout, a rotation): not admitted
            return Err(_UNKNOWN)
        # Another request saved this session meanwhile: its write wins, and the handler
        # gets the record it loaded (a later save of it will conflict).
        return Ok(session)


class _Options(NamedTuple):
    cookie: CookieSettings | None
    header: str
    keys: Keys
    expiry: Expiry
    clock: Clock
    on_error: ErrorMapping
    scheme_name: str | None
    description: str | None


class SessionDependency(_SessionScheme[T]):
    """A dependency giving the request's verified ``Session[T]``; it raises otherwise.

    Make one with :func:`make_cookie_dependency` or :func:`make_header_dependency`.
    """

    async def __call__(self, request: HTTPConnection, response: Response) -> Session[T]:
        """Return the live session, or raise ``on_error``'s exception (401, 403, 503)."""
        self._cache_headers(response)
        result = await self._authenticate(self._token(request))
        if isinstance(result, Ok):
            return result.value
        raise self._on_error(result.error)

    def fresh(self, within: timedelta) -> Callable[..., Awaitable[Session[T]]]:
        """This dependency for sensitive routes: it refuses a session whose user did
        not authenticate within ``within`` (401, ``Reauthentication required``; see
        :mod:`typed_sessions.adapters.reauth`). ``reauthenticate()`` admits it again."""
        return fresh_dependency(self, within, clock=self.clock, on_error=self._on_error)

    def optional(self) -> OptionalSessionDependency[T]:
        """The same dependency, with these settings, giving ``None`` instead of a 401
        (as ``auto_error=False``): for pages that serve visitors and users alike."""
        return OptionalSessionDependency(self.store, self._verify, **self._options._asdict())


class OptionalSessionDependency(_SessionScheme[T]):
    """Like :class:`SessionDependency`, but ``None`` where that one answers 401.

    ``verify_fn`` refusing (403) and a store failure (503) still raise: a session the
    application refused is not an anonymous visitor, and a store outage must never look
    like "no session".
    """

    async def __call__(self, request: HTTPConnection, response: Response) -> Session[T] | None:
        """Return the live session, ``None`` when there is none, or raise (403, 503)."""
        self._cache_headers(response)
        result = await self._authenticate(self._token(request))
        return result.value if isinstance(result, Ok) else None


@overload
def make_cookie_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    cookie: CookieSettings = ...,
    expiry: Expiry = ...,
    auto_error: Literal[True] = ...,
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> SessionDependency[T]: ...


@overload
def make_cookie_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    cookie: CookieSettings = ...,
    expiry: Expiry = ...,
    auto_error: Literal[False],
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> OptionalSessionDependency[T]: ...


@overload
def make_cookie_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    cookie: CookieSettings = ...,
    expiry: Expiry = ...,
    auto_error: bool,
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> SessionDependency[T] | OptionalSessionDependency[T]: ...


def make_cookie_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    cookie: CookieSettings = DEFAULT_COOKIE,
    expiry: Expiry = DEFAULT_EXPIRY,
    auto_error: bool = True,
    clock: Clock = utc_now,
    on_error: ErrorMapping = default_error_mapping,
    scheme_name: str | None = None,
    description: str | None = None,
) -> SessionDependency[T] | OptionalSessionDependency[T]:
    """Return a dependency reading the session from the cookie ``cookie.name``.

    Args:
        store: where sessions live.
        verify_fn: ``(session) -> bool``, sync or async; anything but ``True`` gives 403.
            An exception it raises propagates like any bug in a dependency (a 500):
            return ``False`` for a session you refuse.
        keys: the keyring that signed the tokens (the one given to ``start_session``).
        cookie: the cookie's settings; only its name is read here.
        expiry: idle and absolute deadlines and the touch step. Tokens older than
            ``expiry.absolute`` are refused as well.
        auto_error: ``False`` yields ``None`` instead of answering 401.
        clock: the current time, for tests.
        on_error: maps a :class:`SessionFailure` to the exception to raise.
        scheme_name: the OpenAPI security scheme's name (default ``"SessionCookie"``). As
            with FastAPI's own ``APIKeyCookie``, two dependencies with one scheme name
            share one OpenAPI entry: give each cookie its own name.
        description: the OpenAPI security scheme's description.
    """
    cls: type[SessionDependency[T] | OptionalSessionDependency[T]] = SessionDependency
    if not auto_error:
        cls = OptionalSessionDependency
    return cls(
        store,
        verify_fn,
        cookie=cookie,
        header=DEFAULT_HEADER,
        keys=keys,
        expiry=expiry,
        clock=clock,
        on_error=on_error,
        scheme_name=scheme_name,
        description=description,
    )


@overload
def make_header_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    header: str = ...,
    expiry: Expiry = ...,
    auto_error: Literal[True] = ...,
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> SessionDependency[T]: ...


@overload
def make_header_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    header: str = ...,
    expiry: Expiry = ...,
    auto_error: Literal[False],
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> OptionalSessionDependency[T]: ...


@overload
def make_header_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    header: str = ...,
    expiry: Expiry = ...,
    auto_error: bool,
    clock: Clock = ...,
    on_error: ErrorMapping = ...,
    scheme_name: str | None = ...,
    description: str | None = ...,
) -> SessionDependency[T] | OptionalSessionDependency[T]: ...


def make_header_dependency(
    store: SessionStore[T],
    verify_fn: Verifier[T],
    *,
    keys: Keys,
    header: str = DEFAULT_HEADER,
    expiry: Expiry = DEFAULT_EXPIRY,
    auto_error: bool = True,
    clock: Clock = utc_now,
    on_error: ErrorMapping = default_error_mapping,
    scheme_name: str | None = None,
    description: str | None = None,
) -> SessionDependency[T] | OptionalSessionDependency[T]:
    """Return a dependency reading the session token from the request header ``header``.

    The same as :func:`make_cookie_dependency` otherwise (OpenAPI scheme name default
    ``"SessionHeader"``). Give clients their token with ``issue_session``.

    Raises:
        ValueError: ``header`` is not a valid header name.
    """
    if not is_http_token(header):
        raise ValueError(f"invalid header name {header!r}")
    cls: type[SessionDependency[T] | OptionalSessionDependency[T]] = SessionDependency
    if not auto_error:
        cls = OptionalSessionDependency
    return cls(
        store,
        verify_fn,
        cookie=None,
        header=header,
        keys=keys,
        expiry=expiry,
        clock=clock,
        on_error=on_error,
        scheme_name=scheme_name,
        description=description,
    )
