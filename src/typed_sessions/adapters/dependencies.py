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

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Literal, TypeVar, overload

from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions.adapters.reauth import fresh_dependency
from typed_sessions.adapters.responses import ErrorMapping, SessionFailure, default_error_mapping
from typed_sessions.adapters.scheme import SessionScheme, Verifier
from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.cookies import CookieSettings, is_http_token
from typed_sessions.core.defaults import DEFAULT_COOKIE, DEFAULT_EXPIRY, DEFAULT_HEADER
from typed_sessions.core.session import Expiry, Session
from typed_sessions.core.signing import Keys
from typed_sessions.stores.protocol import SessionStore

__all__ = [
    "OptionalSessionDependency",
    "SessionDependency",
    "Verifier",
    "make_cookie_dependency",
    "make_header_dependency",
]

T = TypeVar("T")


class SessionDependency(SessionScheme[T]):
    """A dependency giving the request's verified ``Session[T]``; it raises otherwise.

    Make one with :func:`make_cookie_dependency` or :func:`make_header_dependency`.
    """

    async def __call__(self, request: HTTPConnection, response: Response) -> Session[T]:
        """Return the live session, or raise ``on_error``'s exception (401, 403, 503)."""
        self._cache_headers(response)
        result = await self._authenticate(self._token_header(request))
        if isinstance(result, SessionFailure):
            raise self._refuse(result)
        return result

    def fresh(self, within: timedelta) -> Callable[..., Awaitable[Session[T]]]:
        """This dependency for sensitive routes: it refuses a session whose user did
        not authenticate within ``within`` (401, ``Reauthentication required``; see
        :mod:`typed_sessions.adapters.reauth`). ``reauthenticate()`` admits it again (on
        a header dependency, ``reissue(session, signed_in=session.subject)``)."""
        return fresh_dependency(self, within, clock=self.clock, on_error=self._refuse)

    def optional(self, *, verify: bool = True) -> OptionalSessionDependency[T]:
        """The same dependency, with these settings, giving ``None`` instead of a 401
        (as ``auto_error=False``): for pages that serve visitors and users alike.

        ``verify=False`` admits every live session, even one ``verify_fn`` refuses (no
        403): for a logout route, which must end any session of the cookie."""
        verifier = self._verify if verify else _admit_every_session
        return OptionalSessionDependency(self.store, verifier, **self._options)


def _admit_every_session(session: Session[object]) -> bool:
    return True


class OptionalSessionDependency(SessionScheme[T]):
    """Like :class:`SessionDependency`, but ``None`` where that one answers 401.

    ``verify_fn`` refusing (403) and a store failure (503) still raise: a session the
    application refused is not an anonymous visitor, and a store outage must never look
    like "no session".
    """

    async def __call__(self, request: HTTPConnection, response: Response) -> Session[T] | None:
        """Return the live session, ``None`` when there is none, or raise (403, 503)."""
        self._cache_headers(response)
        result = await self._authenticate(self._token_header(request))
        return None if isinstance(result, SessionFailure) else result


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

    Raises:
        TypeError: ``store`` is not a session store (no ``load``, ``save`` or ``delete``).
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
        TypeError: ``store`` is not a session store (no ``load``, ``save`` or ``delete``).
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
