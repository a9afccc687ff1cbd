"""Settings given once: starting, rotating and ending sessions with a dependency's settings.

A dependency made by ``make_cookie_dependency`` (or ``make_header_dependency``) is also a
:class:`SessionActions`: it knows the store, keys, cookie or header, expiry and clock it
reads sessions with, and starts, rotates and ends them with exactly those::

    current = make_cookie_dependency(store, verify, keys=keys)

    @app.post("/login")
    async def login(response: Response) -> str:
        await current.start(response, User(name="ada"))
        return "hello"

So a session can never be started with a cookie name, key or expiry it is not read with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions.adapters.lifecycle import (
    IssuedSession,
    device_of,
    end_session,
    issue_session,
    reissue_session,
    rotate_session,
    start_session,
)
from typed_sessions.core.clock import Clock
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.defaults import DEFAULT_ATTEMPTS
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Expiry, Session
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.protocol import SessionStore

__all__ = ["SessionActions"]

T = TypeVar("T")


class SessionActions(Generic[T]):
    """Start, rotate and end sessions with one set of settings (a dependency's own).

    ``cookie`` is ``None`` for a header dependency: it hands out tokens with
    :meth:`issue` and :meth:`reissue` instead of setting cookies.
    """

    store: SessionStore[T]
    keys: Keyring
    cookie: CookieSettings | None
    expiry: Expiry
    clock: Clock

    def _cookie(self, what: str) -> CookieSettings:
        if self.cookie is None:
            raise TypeError(
                f"{what} sets a cookie, but this dependency reads a header: give the client "
                "its token with issue() or reissue() instead"
            )
        return self.cookie

    async def issue(
        self, data: T, *, subject: str | None = None, request: HTTPConnection | None = None
    ) -> IssuedSession[T]:
        """Save a new session holding ``data``; return it and its token (no cookie).

        ``subject``: the user who signed in (their ID as text): the session is theirs,
        listed and ended with their others, authenticated now. ``request``: the
        client's device is recorded from it (its user agent).

        Raises:
            StoreError: the store failed.
        """
        return await issue_session(
            self.store, data, keys=self.keys, expiry=self.expiry, clock=self.clock,
            subject=subject, device=None if request is None else device_of(request),
        )  # fmt: skip

    async def start(
        self,
        response: Response,
        data: T,
        *,
        subject: str | None = None,
        request: HTTPConnection | None = None,
    ) -> Session[T]:
        """Save a new session holding ``data`` and set its cookie on ``response``.

        ``subject`` and ``request``: as for :meth:`issue`.

        Raises:
            StoreError: the store failed; nothing was set on ``response``.
            TypeError: a header dependency (use :meth:`issue`).
        """
        cookie = self._cookie("start()")
        return await start_session(
            response, self.store, data, keys=self.keys, cookie=cookie,
            expiry=self.expiry, clock=self.clock, subject=subject,
            device=None if request is None else device_of(request),
        )  # fmt: skip

    async def rotate(
        self,
        response: Response,
        session: Session[T],
        *,
        update: Callable[[T], T] | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        signed_in: str | None = None,
        request: HTTPConnection | None = None,
    ) -> Session[T] | None:
        """Move ``session`` to a new ID, end the old one and set the new cookie.

        See :func:`~typed_sessions.rotate_session` (call it at sign-in, with
        ``signed_in=`` the user's ID: the new session is theirs, authenticated now;
        ``request``: the device it is on, as for :meth:`issue`).

        Raises:
            StoreError: the store failed or the session kept changing; nothing changed.
            TypeError: a header dependency (use :meth:`reissue`).
        """
        cookie = self._cookie("rotate()")
        return await rotate_session(
            response, self.store, session, keys=self.keys, cookie=cookie,
            expiry=self.expiry, clock=self.clock, attempts=attempts, update=update,
            signed_in=signed_in, device=None if request is None else device_of(request),
        )  # fmt: skip

    async def reauthenticate(
        self, response: Response, session: Session[T], *, request: HTTPConnection | None = None
    ) -> Session[T] | None:
        """Record that ``session``'s user has just authenticated again (say, re-entered
        their password) and rotate its ID, so a sensitive route admits it again.

        A header dependency sets no cookie: use :meth:`reissue` with
        ``signed_in=session.subject`` there, and send the client its new token.

        Raises:
            ValueError: ``session`` has no subject (nobody signed in).
            TypeError: this is a header dependency (as :meth:`rotate`).
            StoreError: as for :meth:`rotate`.
        """
        if session.subject is None:
            raise ValueError("reauthenticate() needs a session with a subject (a sign-in)")
        return await self.rotate(response, session, signed_in=session.subject, request=request)

    async def reissue(
        self,
        session: Session[T],
        *,
        update: Callable[[T], T] | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        signed_in: str | None = None,
        request: HTTPConnection | None = None,
    ) -> IssuedSession[T] | None:
        """Move ``session`` to a new ID and end the old one; return the new token.

        ``None`` when the session had ended meanwhile. See :meth:`rotate`.
        """
        return await reissue_session(
            self.store, session, keys=self.keys, expiry=self.expiry,
            clock=self.clock, attempts=attempts, update=update, signed_in=signed_in,
            device=None if request is None else device_of(request),
        )  # fmt: skip

    async def end(self, response: Response, session: Session[T] | SessionId | None) -> None:
        """Delete ``session`` and, for a cookie dependency, clear its cookie.

        Raises:
            StoreError: the store failed; nothing was cleared, so the client may retry.
        """
        if self.cookie is None:
            if session is not None:
                await self.store.delete(session.id if isinstance(session, Session) else session)
            return
        await end_session(response, self.store, session, cookie=self.cookie)
