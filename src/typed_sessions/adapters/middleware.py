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

``request.state.session`` holds the same :class:`SessionManager` as ``SessionDep``.

What happens to a request (HTTP or WebSocket; other scopes pass through untouched):

1. The cookie is verified (signature, format, age at most ``expiry.absolute``). A cookie
   that does not verify is ignored; it is never adopted as an ID.
2. With ``autoload=True`` and a cookie that verified, the record is loaded before the
   handler runs (one store read). No cookie that verifies: no store access at all. A store
   failure answers 503 and the handler does not run. A cookie naming no live record is
   not adopted either (and, being ours, is cleared); a later write gets a new
   server-generated ID. With ``autoload=False``, steps 1 and 2 wait until a handler
   awaits ``load()`` (or depends on :data:`LoadedSessionDep`); a route that never asks
   costs a header scan and nothing else.
3. When the response starts (``http.response.start``), the session is saved if its data
   changed (nested changes included) or sliding expiry needs it, and never if the status
   is 5xx. Saving happens there, before the start is sent, so that a failed save can still
   become a 503 without a cookie. Changes made after the response started (in a streaming
   body or a background task) cannot be saved: top-level writes then raise
   :class:`SessionClosedError`. Data that is not JSON raises
   :class:`~typed_sessions.core.codec.SessionEncodeError` there, before anything is
   written (the client gets a 500).

   No lost updates: a save refused as stale (another request saved the session since
   this one loaded it) is merged. The newest record is loaded, the top-level keys this
   request changed or removed are applied to it, and it is saved again, up to
   ``save_attempts`` times with short random waits; a key changed by both requests keeps
   the value of the one that saved last. A session ended meanwhile (invalidated,
   regenerated or expired) stays ended: this request's changes are dropped and no cookie
   is sent, so the old ID never comes back.
4. A ``Set-Cookie`` is appended (the app's own are kept) only for a new or regenerated
   session, or to clear an invalidated or dead one; it comes with
   ``Cache-Control: no-store``. Responses whose handler used the session get
   ``Vary: Cookie``.

WebSockets: the session is loaded the same way and readable in the endpoint; changes to an
existing session are saved when the endpoint returns without an exception. Creating or
regenerating a session there raises :class:`WebSocketSessionError`: no cookie can be sent.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Final, TypedDict

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typing_extensions import Unpack

from typed_sessions.adapters.session_state import (
    DEFAULT_SAVE_ATTEMPTS,
    SessionConflictError,
    SessionManager,
    SessionMiddlewareMissingError,
    SessionSettings,
    SessionSkippedError,
    SkippedSessionManager,
)
from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.cookies import CookieSettings, SameSite, is_http_token
from typed_sessions.core.session import Expiry
from typed_sessions.core.signing import Keyring
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = [
    "DEFAULT_EXPIRY",
    "SCOPE_KEY",
    "CookieOptions",
    "LoadedSessionDep",
    "SessionDep",
    "SessionMiddleware",
    "get_session_manager",
    "load_session_manager",
    "session_middleware",
]

SCOPE_KEY: Final = "typed_sessions.manager"
"""The ASGI scope key under which the middleware keeps the request's manager."""

DEFAULT_EXPIRY: Final = Expiry()
"""30 minutes idle, 12 hours at most."""

_DEFAULT_COOKIE: Final = CookieSettings()
_SKIPPED: Final = SkippedSessionManager()

_UNAVAILABLE: Final = b"Service Unavailable"
_BAD_REQUEST: Final = b"Bad Request"


class CookieOptions(TypedDict, total=False):
    """The flat cookie options of :func:`session_middleware` (as on the authx-extra page).

    Each is optional; unset ones take :class:`CookieSettings`' defaults.
    """

    cookie_name: str
    """The cookie's name (default ``"session"``, which names no stack)."""
    secure: bool
    """Send the cookie over HTTPS only (default ``True``)."""
    http_only: bool
    """Hide the cookie from JavaScript (default ``True``)."""
    max_age: int | None
    """Lifetime in whole seconds; ``None`` (default) or ``0``: a browser-session cookie."""
    same_site: SameSite
    """``"lax"`` (default), ``"strict"`` or ``"none"``."""
    path: str
    """The cookie's path (default ``"/"``)."""
    domain: str | None
    """The cookie's domain (default ``None``: the request host only)."""


def session_middleware(
    app: ASGIApp,
    /,
    *,
    store: SessionStore[dict[str, Any]],
    keys: Keyring | str | bytes,
    cookie: CookieSettings | None = None,
    state_attribute: str = "session",
    skip_header: str | tuple[str, str] | None = None,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    expiry: Expiry = DEFAULT_EXPIRY,
    autoload: bool = True,
    save_attempts: int = DEFAULT_SAVE_ATTEMPTS,
    clock: Clock = utc_now,
    **cookie_options: Unpack[CookieOptions],
) -> SessionMiddleware:
    """Wrap ``app`` with server-side sessions: ``app.add_middleware(session_middleware, ...)``.

    Args:
        app: the ASGI app to wrap (given by ``add_middleware``).
        store: where records live, for example ``MemoryStore(dict[str, Any])``.
        keys: the keyring that signs the cookie, or one secret to derive it from.
        cookie: all cookie settings at once; or use the flat options below, not both.
        state_attribute: the ``request.state`` attribute for the manager
            (default ``"session"``).
        skip_header: a header name, or ``(name, value)``: requests carrying it get no
            session handling at all; a handler that asks for the session then gets
            :class:`SessionSkippedError` (answered with 400 if not caught).
        logger: a ``logging.Logger`` (or ``LoggerAdapter``) for session events. It never
            receives tokens, IDs or secrets, only a 12-digit digest of the ID.
        expiry: idle and absolute lifetime of a session (default 30 min / 12 h).
        autoload: load the session before the handler when the cookie verifies (default).
            With ``False`` nothing is read until a handler awaits ``load()`` or depends
            on :data:`LoadedSessionDep`.
        save_attempts: how many times a save that lost a race with another request is
            merged into the newest record and tried (default 20, with short random
            waits between); then the request gets 503. See "No lost updates" below.
        clock: the current time (tests pass a fake).
        **cookie_options: the flat cookie options (:class:`CookieOptions`):

            - ``cookie_name``: the cookie's name (default ``"session"``, which names no
              stack);
            - ``secure``: send the cookie over HTTPS only (default ``True``);
            - ``http_only``: hide the cookie from JavaScript (default ``True``);
            - ``max_age``: cookie lifetime in whole seconds; ``None`` (the default) or
              ``0`` makes a browser-session cookie (the session still ends on the server
              by ``expiry``);
            - ``same_site``: ``"lax"`` (default), ``"strict"`` or ``"none"``;
            - ``path``: the cookie's path (default ``"/"``);
            - ``domain``: the cookie's domain (default: the request host only).

    Raises:
        TypeError: ``logger`` is not a ``logging.Logger`` or ``LoggerAdapter``, or an
            option is unknown.
        ValueError: ``save_attempts`` below 1, ``cookie`` given with any flat cookie option,
            an invalid cookie setting,
            an empty secret, a ``state_attribute`` that is not a public identifier, or an
            invalid ``skip_header``.
    """
    unknown = set(cookie_options) - set(CookieOptions.__annotations__)
    if unknown:
        raise TypeError(f"session_middleware() got unknown option(s): {sorted(unknown)}")
    if cookie is not None and cookie_options:
        raise ValueError(
            "pass either `cookie=CookieSettings(...)` or the flat cookie options, not both "
            f"(given: {', '.join(sorted(cookie_options))})"
        )
    if cookie is None:
        cookie = CookieSettings(
            name=cookie_options.get("cookie_name", _DEFAULT_COOKIE.name),
            path=cookie_options.get("path", _DEFAULT_COOKIE.path),
            domain=cookie_options.get("domain"),
            max_age=cookie_options.get("max_age") or None,
            secure=cookie_options.get("secure", _DEFAULT_COOKIE.secure),
            httponly=cookie_options.get("http_only", _DEFAULT_COOKIE.httponly),
            samesite=cookie_options.get("same_site", _DEFAULT_COOKIE.samesite),
        )
    keyring = keys if isinstance(keys, Keyring) else Keyring.from_secrets(keys)
    if not state_attribute.isidentifier() or state_attribute.startswith("_"):
        raise ValueError(
            f"state_attribute must be a public identifier, not {state_attribute!r} "
            "(request.state keeps its own data under names starting with '_')"
        )
    skip = None if skip_header is None else _skip_header(skip_header)
    settings = SessionSettings(
        store=store,
        keyring=keyring,
        cookie=cookie,
        expiry=expiry,
        clock=clock,
        autoload=autoload,
        logger=logger,
        save_attempts=save_attempts,
    )
    return SessionMiddleware(app, settings, state_attribute=state_attribute, skip_header=skip)


def _skip_header(option: object) -> tuple[bytes, bytes | None]:
    """Check ``skip_header`` (a name, or ``(name, value)``) and return it as bytes."""
    if isinstance(option, str):
        name, value = option, None
    elif (
        isinstance(option, tuple)
        and len(option) == 2
        and isinstance(option[0], str)
        and isinstance(option[1], str)
    ):
        name, value = option
    else:
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


class SessionMiddleware:
    """The pure ASGI middleware :func:`session_middleware` builds. See the module docs."""

    __slots__ = ("_attribute", "_skip", "app", "settings")

    def __init__(
        self,
        app: ASGIApp,
        settings: SessionSettings,
        *,
        state_attribute: str = "session",
        skip_header: tuple[bytes, bytes | None] | None = None,
    ) -> None:
        """Wrap ``app``; prefer :func:`session_middleware`, which checks the options."""
        self.app = app
        self.settings = settings
        self._attribute = state_attribute
        self._skip = skip_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        cookies: bytes | None = None
        skip = self._skip
        for name, value in scope["headers"]:
            if name == b"cookie":  # HTTP/2 may split it: rejoin, as RFC 9113 says
                cookies = value if cookies is None else cookies + b"; " + value
            elif skip is not None and name == skip[0] and (skip[1] is None or value == skip[1]):
                await self._skipped(scope, receive, send)
                return
        settings = self.settings
        manager = SessionManager(settings, cookies, websocket=kind == "websocket")
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[self._attribute] = manager
        scope[SCOPE_KEY] = manager
        if cookies is not None and settings.autoload:
            try:
                await manager._load_record()
            except StoreError as exc:
                settings.log(logging.ERROR, f"store failed on load ({type(exc).__name__}); 503")
                await _refuse(scope, receive, send, 503, _UNAVAILABLE)
                return
        if kind == "http":
            await self._http(scope, receive, send, manager)
        else:
            await self._websocket(scope, receive, send, manager)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, manager: SessionManager
    ) -> None:
        started = False
        replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal started, replaced
            if replaced:  # we answered 503 instead; the app's response goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
                cookie: str | None = None
                if not manager._pending():
                    manager._abandon()
                elif message["status"] >= 500:
                    manager._abandon()  # never save what a failed handler left behind
                else:
                    try:
                        cookie = await manager._commit()
                    except StoreError as exc:
                        manager._abandon()  # nothing new was announced: no new ID either
                        _log_save_failure(self.settings, exc, "; 503")
                        replaced = True
                        await _refuse(scope, receive, send, 503, _UNAVAILABLE)
                        return
                if cookie is not None or manager._accessed:
                    message["headers"] = _session_headers(
                        message.get("headers", ()), cookie, vary=manager._accessed
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreError as exc:
            if started or not manager._load_failed:
                raise
            self.settings.log(logging.ERROR, f"store failed on load ({type(exc).__name__}); 503")
            await _refuse(scope, receive, send, 503, _UNAVAILABLE)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, manager: SessionManager
    ) -> None:
        accepted = False
        receiving = _Receiving(receive)

        async def send_watching(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
            await send(message)

        try:
            await self.app(scope, receiving, send_watching)
        except StoreError as exc:
            manager._abandon()
            if accepted or not manager._load_failed:
                raise
            self.settings.log(logging.ERROR, f"store failed on load ({type(exc).__name__})")
            await _refuse(scope, receiving, send, 503, _UNAVAILABLE)
            return
        except BaseException:
            manager._abandon()
            raise
        if manager._pending():
            try:
                await manager._commit()  # any cookie it returns cannot be sent here
            except StoreError as exc:
                manager._abandon()
                _log_save_failure(self.settings, exc, "")
                raise
        else:
            manager._abandon()

    async def _skipped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The skip header: no session work, but a clear answer if a handler asks anyway."""
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[self._attribute] = _SKIPPED
        scope[SCOPE_KEY] = _SKIPPED
        started = False
        receiving = _Receiving(receive) if scope["type"] == "websocket" else receive

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
            await _refuse(scope, receiving, send, 400, _BAD_REQUEST)


def _log_save_failure(settings: SessionSettings, exc: StoreError, outcome: str) -> None:
    """Log a failed save at ERROR, unless the store worked and the session kept
    changing (a ``SessionConflictError``, logged at WARNING where it arose)."""
    if not isinstance(exc, SessionConflictError):
        settings.log(logging.ERROR, f"store failed on save ({type(exc).__name__}){outcome}")


def _session_headers(headers: Any, cookie: str | None, *, vary: bool) -> list[tuple[bytes, bytes]]:
    """The response headers plus ours: appended, never replacing the app's cookies."""
    out: list[tuple[bytes, bytes]] = list(headers)
    if vary:
        _add_token(out, b"vary", b"Cookie", satisfied_by=(b"cookie", b"*"))
    if cookie is not None:
        out.append((b"set-cookie", cookie.encode("latin-1")))
        # A response that sets a session cookie must never be stored by a shared cache.
        if not _has_token(out, b"cache-control", (b"no-store",)):
            out = [(n, v) for n, v in out if n.lower() != b"cache-control"]
            out.append((b"cache-control", b"no-store"))
    return out


def _has_token(headers: list[tuple[bytes, bytes]], field: bytes, tokens: tuple[bytes, ...]) -> bool:
    """Whether a ``field`` header lists one of ``tokens`` (comma-separated, any case)."""
    for name, value in headers:
        if name.lower() == field:
            for item in value.split(b","):
                if item.split(b"=", 1)[0].strip().lower() in tokens:
                    return True
    return False


def _add_token(
    headers: list[tuple[bytes, bytes]],
    field: bytes,
    token: bytes,
    *,
    satisfied_by: tuple[bytes, ...],
) -> None:
    """Add ``token`` to the first ``field`` header (or a new one) unless already listed."""
    if _has_token(headers, field, satisfied_by):
        return
    for index, (name, value) in enumerate(headers):
        if name.lower() == field:
            headers[index] = (name, value + b", " + token if value.strip() else token)
            return
    headers.append((field, token))


_CLOSE_CODES: Final = {503: 1013, 400: 1008}  # try again later; policy violation


class _Receiving:
    """``receive``, noting whether the app has taken the WebSocket's ``connect`` yet."""

    __slots__ = ("connected", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.connected = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "websocket.connect":
            self.connected = True
        return message


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, body: bytes) -> None:
    """Answer ``status`` with a bare body, before the app answered anything.

    A WebSocket gets the same status as a denial response where the server offers them
    (the ``websocket.http.response`` extension, as uvicorn and hypercorn do). Elsewhere it
    is accepted and closed at once with the matching close code (1013 for 503, 1008 for
    400): a close before accepting would reach the client as a bare 403.
    """
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if "websocket.http.response" in scope.get("extensions", ()):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    connected = isinstance(receive, _Receiving) and receive.connected
    if not connected and (await receive())["type"] != "websocket.connect":
        return  # the client left before the handshake
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": _CLOSE_CODES[status], "reason": ""})


# --- FastAPI dependencies ---------------------------------------------------------------


def get_session_manager(connection: HTTPConnection) -> SessionManager:
    """FastAPI dependency: the request's :class:`SessionManager` (HTTP and WebSocket).

    Raises:
        SessionSkippedError: the request carried the skip header (answered with 400).
        SessionMiddlewareMissingError: the app has no ``session_middleware``.
    """
    manager = connection.scope.get(SCOPE_KEY)
    if isinstance(manager, SkippedSessionManager):
        raise manager._skipped()
    if not isinstance(manager, SessionManager):
        raise SessionMiddlewareMissingError(
            "no session middleware: add it with app.add_middleware(session_middleware, ...)"
        )
    return manager


SessionDep = Annotated[SessionManager, Depends(get_session_manager)]
"""The request's session manager, typed: ``async def handler(session: SessionDep)``."""


async def load_session_manager(manager: SessionDep) -> SessionManager:
    """FastAPI dependency: the manager with its session loaded (for ``autoload=False``).

    Raises:
        StoreError: the store failed (the middleware answers 503).
    """
    await manager.load()
    return manager


LoadedSessionDep = Annotated[SessionManager, Depends(load_session_manager)]
"""Like :data:`SessionDep`, but loads the session first; the way to read it with
``autoload=False``."""
