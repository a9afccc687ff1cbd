"""The errors a session user can meet, in one place: usage mistakes and given-up saves."""

from __future__ import annotations

from typed_sessions.stores.protocol import StoreError

__all__ = [
    "ConcurrentChangeError",
    "SessionBusyError",
    "SessionClosedError",
    "SessionConflictError",
    "SessionMiddlewareMissingError",
    "SessionNotLoadedError",
    "SessionSkippedError",
    "SessionUsageError",
    "WebSocketSessionError",
    "closed_error",
    "late_error",
    "not_loaded_error",
    "websocket_error",
]


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


class ConcurrentChangeError(Exception):
    """Another request changed what this request read of the session, or ended the
    session (``ended``: a sign-out or a new ID elsewhere, or expiry); nothing of this
    request's changes was saved.

    Saving them would overwrite a value they were computed from (a counter, a cart) with
    a stale result, or bring an ended session back. The middleware answers with its error
    mapping's ``conflict`` answer (409 by default); the client may retry (with the
    cookie the other request set). ``keys`` names the keys read and changed (``ended``:
    the keys of the data this request would have saved); the message only counts them,
    since keys are session data, which never reaches a log.
    """

    def __init__(self, keys: frozenset[str], *, ended: bool = False) -> None:
        count = f"{len(keys)} key{'' if len(keys) == 1 else 's'}"
        if ended and not keys:  # a sign-in that changed no data
            message = "the session ended (elsewhere, or expired) before this sign-in was saved"
        elif ended:  # keys: what this request changed
            message = f"the session ended (elsewhere, or expired) before {count} were saved"
        else:
            message = f"another request changed {count} since this one read them"
        super().__init__(message)
        self.keys = keys
        self.ended = ended


class SessionBusyError(Exception):
    """With ``take_turns=True``: the session's turn did not come within ``turn_timeout``.

    The middleware answers with its error mapping's ``conflict`` answer (409 by
    default); nothing of the request's session work was done.
    """


class SessionConflictError(StoreError):
    """The session kept changing under this request; saving was retried and gave up.

    A :class:`~typed_sessions.stores.protocol.StoreError`, so the middleware answers 503.
    """


def closed_error() -> SessionUsageError:
    return SessionClosedError(
        "the response has already started, so changes to the session can no longer be "
        "saved; change the session before returning the response"
    )


def not_loaded_error(what: str) -> SessionNotLoadedError:
    """The error for ``what`` (a method call) before a lazy session was loaded."""
    return SessionNotLoadedError(
        f"{what} before the session was loaded: with autoload=False, first "
        "`await request.state.session.load()` or depend on LoadedSessionDep"
    )


def late_error(what: str) -> SessionClosedError:
    """The error for ``what`` (a method call) after the response started."""
    return SessionClosedError(f"{what} after the response started: it can no longer be saved")


def websocket_error() -> SessionUsageError:
    return WebSocketSessionError(
        "this WebSocket has no session and cannot start one: its cookie cannot be sent "
        "on a WebSocket. Create the session in an HTTP request first."
    )
