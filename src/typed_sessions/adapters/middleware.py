"""The session middleware: a session-ID cookie, a server-side store, a dict on request.state.

Usage, as on the authx-extra page but typed and strict::

    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),
        keys=Keyring.from_secrets(SECRET),
    )

    @app.get("/session_test")
    async def session_test(session_manager: SessionDep) -> dict[str, int]:
        session = session_manager.get_session()
        session["test_counter"] = session.get("test_counter", 0) + 1
        return {"test_counter": session["test_counter"]}

``request.state.session`` holds the same :class:`SessionManager` as ``SessionDep``. This
module is the ASGI driver only: the manager computes what a request's end must write
(:meth:`SessionManager.outcome`), and :func:`~typed_sessions.adapters.commit.carry_out`
writes it.

What happens to a request (HTTP or WebSocket; other scopes pass through untouched):

1. The cookie is verified (signature, format, age at most ``expiry.absolute``). A cookie
   that does not verify is ignored; it is never adopted as an ID.
2. With ``autoload=True`` and a cookie that verified, the record is loaded before the
   handler runs (one store read). No cookie that verifies: no store access at all. A store
   failure answers 503 and the handler does not run. A cookie naming no live record is
   not adopted either; a later write gets a new server-generated ID. It is not cleared:
   the browser may hold a newer cookie by now (a sign-in answered meanwhile, whose
   regenerate ended this record), which a clearing cookie would delete. With
   ``autoload=False``, steps 1 and 2 wait until a handler awaits ``load()`` (or depends
   on :data:`LoadedSessionDep`); a route that never asks costs a header scan and nothing
   else.
3. When the response starts (``http.response.start``), the session is saved if its data
   changed (nested changes included) or sliding expiry needs it, and never if the status
   is 5xx. Saving happens there, before the start is sent, so that a failed save can still
   become a 503 without a cookie. Changes made after the response started (in a streaming
   body or a background task) cannot be saved: top-level writes then raise
   :class:`SessionClosedError`. Data that is not JSON raises
   :class:`~typed_sessions.core.codec.SessionEncodeError` there, before anything is
   written (the client gets a 500).

   No lost updates: a save refused as stale (another request saved the session since
   this one loaded it) is merged. The newest record is loaded (or taken from this
   worker's own last save of it, made since this request loaded: then the stale save is
   not even sent), the top-level keys this request changed or removed are applied to
   it, and it is saved again, up to ``save_attempts`` times with short random waits; a
   key changed by both requests keeps the value of the one that saved last. A session
   ended meanwhile (invalidated, regenerated or expired) stays ended: this request's
   changes are refused (409; a bare ``regenerate()`` is no change) and no cookie is
   sent, so the old ID never comes back.
4. A ``Set-Cookie`` is appended (the app's own are kept) only for a new or regenerated
   session, or to clear an invalidated or dead one; it comes with
   ``Cache-Control: no-store``. Responses whose handler used the session get
   ``Vary: Cookie``, and ``Cache-Control: private`` unless the app set its own.

WebSockets: the session is loaded the same way and readable in the endpoint; changes to an
existing session are saved when the endpoint returns without an exception. Creating or
regenerating a session there raises :class:`WebSocketSessionError`: no cookie can be sent.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typing_extensions import Unpack

from typed_sessions.adapters.commits import Commits
from typed_sessions.adapters.errors import (
    ConcurrentChangeError,
    SessionBusyError,
    SessionConflictError,
    SessionSkippedError,
)
from typed_sessions.adapters.headers import (
    Receiving,
    refuse,
    refuse_mapped,
    session_headers,
    vary_cookie,
)
from typed_sessions.adapters.manager import SessionManager
from typed_sessions.adapters.responses import SessionFailure
from typed_sessions.adapters.session_deps import SCOPE_KEY
from typed_sessions.adapters.settings import MiddlewareOptions, SessionSettings
from typed_sessions.adapters.skipped import SkippedSession
from typed_sessions.adapters.turns import Turns
from typed_sessions.core.ids import SessionId
from typed_sessions.core.signing import Keys
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = ["SessionMiddleware", "session_middleware"]

_SKIPPED: Final = SkippedSession()
_CONFLICT: Final = SessionFailure("conflict", "concurrent_change")
_BUSY: Final = SessionFailure("conflict", "session_busy")
_UNAVAILABLE: Final = b"Service Unavailable"
_BAD_REQUEST: Final = b"Bad Request"


def session_middleware(
    app: ASGIApp,
    /,
    *,
    store: SessionStore[dict[str, Any]],
    keys: Keys,
    **options: Unpack[MiddlewareOptions],
) -> SessionMiddleware:
    """Wrap ``app`` with server-side sessions: ``app.add_middleware(session_middleware, ...)``.

    Args:
        app: the ASGI app to wrap (given by ``add_middleware``).
        store: where records live, for example ``MemoryStore(dict[str, Any])``.
        keys: the keyring that signs the cookie, or one secret to derive it from.
        **options: the optional settings (:class:`MiddlewareOptions`), each checked here:

            - ``cookie``: the cookie's :class:`CookieSettings` (name, secure, httponly,
              max_age, samesite, path, domain), as everywhere in the library;
            - ``state_attribute``: the ``request.state`` attribute for the manager
              (default ``"session"``);
            - ``skip_header``: a header name, or ``(name, value)``: requests carrying it
              get no session handling at all; a handler that asks for the session then
              gets :class:`SessionSkippedError` (answered with 400 if not caught);
            - ``logger``: a ``logging.Logger`` (or ``LoggerAdapter``) for session
              events. It never receives tokens, IDs or secrets, only a 12-digit digest;
            - ``expiry``: idle and absolute lifetime (default 30 min / 12 h);
            - ``autoload``: load the session before the handler when the cookie
              verifies (default). With ``False`` nothing is read until a handler awaits
              ``load()`` or depends on :data:`LoadedSessionDep`;
            - ``save_attempts``: how many times a save that lost a race with another
              request is merged into the newest record and tried (default 20, with short
              random waits between); then the request gets 503;
            - ``clock``: the current time (tests pass a fake).

    Raises:
        TypeError: ``logger`` is not a ``logging.Logger`` or ``LoggerAdapter``, ``cookie``
            is not a ``CookieSettings``, an option is unknown, ``store`` is not a session
            store (no ``load``, ``save`` or ``delete``), or holds data of another type
            than a ``dict`` (a model: use the dependencies).
        ValueError: ``save_attempts`` below 1, an empty secret, a ``state_attribute``
            that is not a public identifier, or an invalid ``skip_header``.
    """
    settings = SessionSettings(store=store, keys=keys, **options)
    return SessionMiddleware(app, settings)


class SessionMiddleware:
    """The pure ASGI middleware :func:`session_middleware` builds. See the module docs."""

    __slots__ = ("_commit", "_turns", "app", "settings")

    def __init__(self, app: ASGIApp, settings: SessionSettings) -> None:
        """Wrap ``app``; prefer :func:`session_middleware`, which checks the options."""
        self.app: ASGIApp = app
        self.settings: SessionSettings = settings
        self._commit = Commits(settings)  # one commit per session at a time
        self._turns: Turns[SessionId] | None = Turns() if settings.take_turns else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        cookies: bytes | None = None
        settings = self.settings
        skip = settings.skip
        for name, value in scope["headers"]:
            if name == b"cookie":  # HTTP/2 may split it: rejoin, as RFC 9113 says
                cookies = value if cookies is None else cookies + b"; " + value
            elif skip is not None and name == skip[0] and (skip[1] is None or value == skip[1]):
                await self._skipped(scope, receive, send)
                return
        manager = SessionManager(settings, cookies, kind == "websocket", self._turns, scope)
        _put(scope, settings.state_attribute, manager)
        try:
            # The session loaded before the handler (after its turn, with take_turns),
            # or the request answered instead: 409 for no turn, 503 for a store failure.
            if cookies is not None and settings.autoload:
                if self._turns is not None and not await manager.take_turn():
                    settings.log(logging.WARNING, "the session's turn did not come in time; 409")
                    await refuse_mapped(scope, receive, send, settings.on_error(_BUSY))
                    return
                try:
                    await manager.preload()
                except StoreError as exc:
                    _log_load_failure(settings, exc, "; 503", manager.cookie_session_id)
                    await refuse(scope, receive, send, 503, _UNAVAILABLE)
                    return
            if kind == "http":
                await self._http(scope, receive, send, manager)
            else:  # a socket may stay open for hours: it loads in turn, then lets others go
                manager.end_turn()
                await self._websocket(scope, receive, send, manager)
        finally:
            if self._turns is not None:
                manager.end_turn(last=True)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, manager: SessionManager
    ) -> None:
        started = False
        replaced = False
        settings = self.settings

        async def send_with_session(message: Message) -> None:
            nonlocal started, replaced
            if replaced:  # we answered 503 or 409 instead; the app's response goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
                cookie: str | bytes | Exception | None = None
                try:  # (a stored record read only now may not decode: a StoreError too)
                    plan = manager.outcome(message["status"])
                    # the usual save needs no coroutine (see saved_now)
                    if plan is not None and not self._commit.saved_now(plan):
                        cookie = await self._commit(plan, manager)
                except (StoreError, ConcurrentChangeError) as exc:
                    cookie = self._refusal(exc, manager)
                if self._turns is not None:
                    manager.end_turn()
                # (A message of its own: an app may send one dict to every client.)
                if cookie is None:
                    if manager.accessed:
                        message = {**message, "headers": vary_cookie(message.get("headers", ()))}
                elif isinstance(cookie, str):
                    headers = session_headers(
                        message.get("headers", ()), cookie, vary=manager.accessed
                    )
                    message = {**message, "headers": headers}
                else:  # refused: answer that instead
                    replaced = True
                    await _answer(scope, receive, send, cookie)
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreError as exc:
            if started or not manager.load_failed:
                raise
            _log_load_failure(settings, exc, "; 503", manager.cookie_session_id)
            await refuse(scope, receive, send, 503, _UNAVAILABLE)
        except SessionBusyError:
            if started:
                raise
            settings.log(logging.WARNING, "the session's turn did not come in time; 409")
            await refuse_mapped(scope, receive, send, settings.on_error(_BUSY))

    def _refusal(
        self, exc: StoreError | ConcurrentChangeError, manager: SessionManager
    ) -> bytes | Exception:
        """What to answer instead of a response whose commit failed with ``exc``:
        ``bytes`` for a 503 body, an exception from the error mapping for a refused
        concurrent change."""
        settings = self.settings
        manager.abandon()  # nothing new was announced: no new ID either
        if isinstance(exc, StoreError):
            _log_save_failure(settings, exc, "; 503", manager.cookie_session_id)
            return _UNAVAILABLE
        settings.log(logging.INFO, f"refused: {exc}; 409", manager.get_session_id())
        return settings.on_error(_CONFLICT)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, manager: SessionManager
    ) -> None:
        accepted = False
        receiving = Receiving(receive)

        async def send_watching(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
            await send(message)

        try:
            await self.app(scope, receiving, send_watching)
        except StoreError as exc:
            manager.abandon()
            if accepted or not manager.load_failed:
                raise
            _log_load_failure(self.settings, exc, "", manager.cookie_session_id)
            await refuse(scope, receiving, send, 503, _UNAVAILABLE)
            return
        except BaseException:
            manager.abandon()
            raise
        commit = self._commit
        try:  # no cookie can be sent here
            plan = manager.outcome(200)
            if plan is not None and not commit.saved_now(plan):
                await commit(plan, manager)
        except (StoreError, ConcurrentChangeError) as exc:
            manager.abandon()
            if isinstance(exc, StoreError):
                _log_save_failure(self.settings, exc, "", manager.cookie_session_id)
            raise

    async def _skipped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The skip header: no session work, but a clear answer if a handler asks anyway."""
        _put(scope, self.settings.state_attribute, _SKIPPED)
        started = False
        receiving = Receiving(receive) if scope["type"] == "websocket" else receive

        async def send_watching(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
            await send(message)

        try:
            await self.app(scope, receiving, send_watching)
        except SessionSkippedError:
            if started:
                raise
            self.settings.log(logging.INFO, "a handler asked for the session of a skipped request")
            await refuse(scope, receiving, send, 400, _BAD_REQUEST)


async def _answer(scope: Scope, receive: Receive, send: Send, refusal: bytes | Exception) -> None:
    if isinstance(refusal, bytes):
        await refuse(scope, receive, send, 503, refusal)
    else:
        await refuse_mapped(scope, receive, send, refusal)


def _put(scope: Scope, attribute: str, session: SessionManager | SkippedSession) -> None:
    """Put the request's session on ``request.state`` and in the scope."""
    state = scope.get("state")
    if state is None:
        state = scope["state"] = {}
    state[attribute] = session
    scope[SCOPE_KEY] = session


def _log_load_failure(
    settings: SessionSettings, exc: StoreError, outcome: str, session_id: SessionId | None
) -> None:
    """Log a failed load at ERROR (``outcome``: what the client gets)."""
    settings.log(logging.ERROR, f"store failed on load ({type(exc).__name__}){outcome}", session_id)


def _log_save_failure(
    settings: SessionSettings, exc: StoreError, outcome: str, session_id: SessionId | None
) -> None:
    """Log a failed save at ERROR, unless the store worked and the session kept
    changing (a ``SessionConflictError``, logged at WARNING where it arose)."""
    if not isinstance(exc, SessionConflictError):
        message = f"store failed on save ({type(exc).__name__}){outcome}"
        settings.log(logging.ERROR, message, session_id)
