"""Why a request was refused a session, and the default HTTP answer for each case.

Every cause that means "this request carries no valid session" (no token, a malformed,
forged, foreign or expired token, an unknown or expired session) gets one and the same
401 response, so a client cannot learn which check failed. The cause is still given to
the error mapping, for logging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from typed_sessions.core.signing import TokenError
from typed_sessions.stores.protocol import StoreError

__all__ = [
    "ErrorMapping",
    "FailureKind",
    "FailureReason",
    "SessionFailure",
    "default_error_mapping",
    "store_error_handler",
]

FailureKind: TypeAlias = Literal[
    "unauthenticated", "forbidden", "unavailable", "conflict", "reauthenticate"
]
"""What the failure means: 401, 403, 503, 409, or 401 asking to sign in again, with the
default mapping."""

FailureReason: TypeAlias = Literal[
    "missing",  # no token in the request
    "malformed",  # not a token of our format
    "unknown_key",  # signed with a key this keyring does not hold
    "bad_signature",  # altered or forged
    "token_expired",  # issued longer ago than the session's absolute lifetime
    "token_future",  # issued in the future beyond the clock skew
    "unknown_session",  # a valid token whose session the store does not have
    "session_expired",  # the session passed its idle or absolute deadline
    "refused",  # verify_fn did not return True
    "store_error",  # the store raised StoreError
    "concurrent_change",  # another request changed what this one read (middleware)
    "session_busy",  # take_turns: the session's turn did not come in time (middleware)
    "stale_authentication",  # a fresh() route: the user did not authenticate recently
]
"""The precise cause, for logs and metrics; never tell it to the client."""

_TOKEN_REASONS: dict[TokenError, FailureReason] = {
    TokenError.MALFORMED: "malformed",
    TokenError.UNKNOWN_KEY: "unknown_key",
    TokenError.BAD_SIGNATURE: "bad_signature",
    TokenError.EXPIRED: "token_expired",
    TokenError.FUTURE: "token_future",
}


@dataclass(frozen=True, slots=True)
class SessionFailure:
    """A request the session dependency refused: what it means and exactly why.

    ``error`` holds the store's exception when ``reason`` is ``"store_error"``.
    """

    kind: FailureKind
    reason: FailureReason
    error: StoreError | None = None

    @classmethod
    def from_token_error(cls, error: TokenError) -> SessionFailure:
        """The 401 failure for a token ``verify_session_token`` refused."""
        return cls("unauthenticated", _TOKEN_REASONS[error])


ErrorMapping: TypeAlias = Callable[[SessionFailure], Exception]
"""Turns a failure into the exception the dependency raises (usually an ``HTTPException``)."""

_LOGGER = logging.getLogger("typed_sessions")

NOT_AUTHENTICATED = "Not authenticated"
CONFLICT = "Conflict: the session was changed by another request; try again"
REAUTHENTICATE = "Reauthentication required"
SERVICE_UNAVAILABLE = "Service unavailable"


def default_error_mapping(failure: SessionFailure) -> HTTPException:
    """Map a failure to FastAPI's usual answers.

    - ``unauthenticated``: 401 ``{"detail": "Not authenticated"}`` with
      ``WWW-Authenticate: APIKey``, as FastAPI's own API-key schemes send it, whatever
      the reason;
    - ``forbidden``: 403 ``{"detail": "Forbidden"}``;
    - ``unavailable``: 503 ``{"detail": "Service unavailable"}`` (nothing about the store);
    - ``conflict``: 409 ``{"detail": "Conflict: the session was changed by another
      request; try again"}`` (the middleware's refusal of a request whose session
      changes rest on a value another request changed, or whose turn did not come);
    - ``reauthenticate``: 401 ``{"detail": "Reauthentication required"}`` with
      ``WWW-Authenticate: APIKey error="insufficient_user_authentication"`` (RFC 9470's
      step-up code): sign in again, then retry.
    """
    if failure.kind == "unauthenticated":
        return HTTPException(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": "APIKey"})
    if failure.kind == "forbidden":
        return HTTPException(403, "Forbidden")
    if failure.kind == "conflict":
        return HTTPException(409, CONFLICT)
    if failure.kind == "reauthenticate":
        challenge = 'APIKey error="insufficient_user_authentication"'
        return HTTPException(401, REAUTHENTICATE, headers={"WWW-Authenticate": challenge})
    return HTTPException(503, SERVICE_UNAVAILABLE)


_NO_STORE: Final = {"Cache-Control": "no-store"}


async def store_error_handler(request: Request, exc: Exception) -> Response:
    """An exception handler giving any :class:`StoreError` the dependency's generic 503,
    with ``Cache-Control: no-store`` (it answers for a route, whose own headers are gone).

    The lifecycle helpers (and your own ``store.save`` calls) raise ``StoreError`` when
    the store fails; register this so that becomes a 503 rather than a 500::

        app.add_exception_handler(StoreError, store_error_handler)
    """
    _LOGGER.error("store failed (%s); 503", type(exc).__name__)
    return JSONResponse({"detail": SERVICE_UNAVAILABLE}, status_code=503, headers=_NO_STORE)
