"""authx-extra's ``SessionMiddleware``, with its options under its names, on ours.

``app.add_middleware(SessionMiddleware, secret_key=..., store=MemoryIO(), ...)`` builds
typed-sessions' :func:`~typed_sessions.session_middleware` with the matching settings
and puts a :class:`SessionIntegration` on ``request.state.<session_object>``. The
differences from authx-extra are the safe ones the migration guide lists: sessions end
(``expiry``), ``SameSite=Lax`` is sent, IDs are never printed or logged, a session starts
only when a handler puts data in it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, TypeAlias

from starlette.types import ASGIApp, Receive, Scope, Send

from typed_sessions import (
    DEFAULT_MAX_DATA_BYTES,
    CookieSettings,
    ErrorMapping,
    Expiry,
    Keyring,
    MemoryStore,
    SameSite,
    SessionManager,
    SessionStore,
    default_error_mapping,
    session_middleware,
)
from typed_sessions.adapters.skipped import SkippedSession
from typed_sessions.compat.authx_extra.integration import SKIPPED, SessionIntegration

__all__ = ["MemoryIO", "SessionMiddleware", "SkipSessionHeader"]

SkipSessionHeader: TypeAlias = str | Mapping[str, str] | Sequence[Mapping[str, str]]
"""A header name (any value skips), or authx-extra's ``{"header_name": ..., "header_value":
...}`` (``"*"``: any value), or a list holding one such dict."""

_DEFAULT_EXPIRY: Final = Expiry()


class MemoryIO(MemoryStore[dict[str, Any]]):
    """authx-extra's default store: a bounded :class:`~typed_sessions.MemoryStore` of dicts.

    Sessions live in this process only; pass a ``RedisStore(..., dict[str, Any])`` as
    ``store`` to share them between workers. ``max_data_bytes`` bounds each session's
    data as JSON (default 64 KiB; ``None``: no limit): a request that makes it larger
    gets a 500 and saves nothing (authx-extra's ``MemoryIO`` has no limit).
    """

    def __init__(
        self, *, max_sessions: int = 10_000, max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES
    ) -> None:
        """An empty store of at most ``max_sessions`` sessions.

        Raises:
            ValueError: ``max_sessions`` is less than 1, or ``max_data_bytes`` is not a
                positive ``int`` or ``None``.
        """
        super().__init__(dict[str, Any], max_sessions=max_sessions, max_data_bytes=max_data_bytes)


_AUTHX_STORE_METHODS: Final = ("create_store", "get_store", "save_store")


def _checked_store(store: object) -> None:
    """Refuse a store written to authx-extra's interface, which ours does not speak."""
    if any(hasattr(store, name) for name in _AUTHX_STORE_METHODS) and not hasattr(store, "load"):
        raise TypeError(
            f"{type(store).__name__} is written to authx-extra's store interface "
            "(create_store, get_store, save_store), which typed-sessions does not use: "
            "pass MemoryIO() or RedisStore(..., dict[str, Any]), or write a "
            "typed_sessions.SessionStore (async load, save, delete)"
        )


def _skip_header(option: SkipSessionHeader | None) -> str | tuple[str, str] | None:
    """authx-extra's ``skip_session_header`` as ``session_middleware``'s ``skip_header``."""
    if option is None or isinstance(option, str):
        return option
    if isinstance(option, Mapping):
        match option.get("header_name"), option.get("header_value", "*"):
            case str() as name, str() as value:
                return name if value == "*" else (name, value)
            case _:  # a missing name, or (from an untyped app) a value that is not text
                raise ValueError(
                    "skip_session_header needs str 'header_name' and 'header_value', "
                    f"not {dict(option)!r}"
                )
    headers = list(option)
    if len(headers) > 1:
        raise ValueError("typed-sessions' middleware takes one skip_session_header, not a list")
    return _skip_header(headers[0]) if headers else None


def _expiry(max_age: int) -> Expiry:
    """Sessions end as typed-sessions' do, and never outlive a cookie given a ``max_age``."""
    if max_age <= 0:
        return _DEFAULT_EXPIRY
    lifetime = timedelta(seconds=max_age)
    return Expiry(idle=min(_DEFAULT_EXPIRY.idle, lifetime), absolute=lifetime)


class SessionMiddleware:
    """authx-extra's middleware options, mapped onto :func:`~typed_sessions.session_middleware`.

    Args:
        app: the ASGI app (given by ``add_middleware``).
        secret_key: signs the cookie (a keyring is derived from it, as typed-sessions'
            middleware derives one from a secret); or a ``Keyring``.
        store: where sessions live (default: a new :func:`MemoryIO`), any typed-sessions
            store of ``dict[str, Any]``.
        http_only: ``HttpOnly`` cookie (default ``True``).
        secure: ``Secure`` cookie, sent over HTTPS only (default ``True``).
        max_age: cookie lifetime in seconds; ``0`` (default): a browser-session cookie.
            Sessions end after ``expiry``; with a ``max_age``, after it at most.
        session_cookie: the cookie's name (default ``"sid"``).
        session_object: the ``request.state`` attribute (default ``"session"``).
        skip_session_header: requests with this header get no session (see
            :data:`SkipSessionHeader`); a handler asking for it then gets 400.
        logger: a ``logging.Logger`` (or ``LoggerAdapter``); it gets events and ID
            digests, never IDs.
        cookie_path: the cookie's ``Path`` (default ``"/"``), as in authx-extra 1.2.
        same_site: the cookie's ``SameSite`` (default ``"lax"``).
        expiry: when sessions end (default: 30 minutes idle, 12 hours at most, capped by
            ``max_age``).
        take_turns: run a session's requests one at a time (see typed-sessions'
            middleware): concurrent requests that change the same key then never get 409.
        on_error: how a refused request is answered (409, and 409 for a busy session).

    Raises:
        ValueError, TypeError: as ``session_middleware`` does for a bad option, and for a
            list of several skip headers; ``TypeError`` for a store written to
            authx-extra's store interface (``create_store``, ``get_store``...).
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | bytes | Keyring,
        store: SessionStore[dict[str, Any]] | None = None,
        http_only: bool = True,
        secure: bool = True,
        max_age: int = 0,
        session_cookie: str = "sid",
        session_object: str = "session",
        skip_session_header: SkipSessionHeader | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        cookie_path: str = "/",
        *,
        same_site: SameSite = "lax",
        expiry: Expiry | None = None,
        take_turns: bool = False,
        on_error: ErrorMapping = default_error_mapping,
    ) -> None:
        self.app = app
        self.session_object = session_object
        if store is not None:
            _checked_store(store)
        self.store: SessionStore[dict[str, Any]] = MemoryIO() if store is None else store
        cookie = CookieSettings(
            name=session_cookie,
            path=cookie_path,
            secure=secure,
            httponly=http_only,
            max_age=max_age or None,
            samesite=same_site,
        )
        self._middleware = session_middleware(
            self._with_integration,
            store=self.store,
            keys=secret_key,
            cookie=cookie,
            state_attribute=session_object,
            skip_header=_skip_header(skip_session_header),
            logger=logger,
            expiry=_expiry(max_age) if expiry is None else expiry,
            take_turns=take_turns,
            on_error=on_error,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._middleware(scope, receive, send)

    async def _with_integration(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Put authx-extra's manager API where the page's handlers look for it."""
        state = scope.get("state")
        if state is not None:
            manager = state.get(self.session_object)
            if isinstance(manager, SessionManager):
                state[self.session_object] = SessionIntegration(manager)
            elif isinstance(manager, SkippedSession):  # with authx-extra's methods too
                state[self.session_object] = SKIPPED
        await self.app(scope, receive, send)
