"""Re-authentication: routes that admit a session only if its user signed in recently.

OWASP ASVS 5.0 7.5.1 and 7.5.3: changing sensitive settings or doing a highly sensitive
operation needs a fresh authentication. ``current.fresh(within=timedelta(minutes=5))``
is a dependency that gives the session as ``current`` does, but refuses one whose
``auth_time`` is older (or missing) with a distinct answer the client can act on: 401
``{"detail": "Reauthentication required"}`` and ``WWW-Authenticate: APIKey
error="insufficient_user_authentication"`` (the error code of RFC 9470, step-up
authentication). After the user authenticated again, ``current.reauthenticate(response,
session)`` records it and rotates the session ID.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final, TypeVar

from fastapi import Depends

from typed_sessions.adapters.responses import ErrorMapping, SessionFailure
from typed_sessions.core.clock import Clock
from typed_sessions.core.session import Session

__all__ = ["STALE", "fresh_dependency"]

T = TypeVar("T")

STALE: Final = SessionFailure("reauthenticate", "stale_authentication")
"""The failure of a session whose user did not authenticate recently enough."""


def fresh_dependency(
    base: Callable[..., Awaitable[Session[T]]],
    within: timedelta,
    *,
    clock: Clock,
    on_error: ErrorMapping,
) -> Callable[..., Awaitable[Session[T]]]:
    """A dependency giving ``base``'s session when its ``auth_time`` is at most
    ``within`` ago, and raising ``on_error(STALE)`` otherwise.

    Raises:
        ValueError: ``within`` is not positive.
    """
    if within <= timedelta(0):
        raise ValueError("within must be a positive duration")

    async def fresh_session(session: Session[Any] = Depends(base)) -> Session[T]:  # noqa: B008 - FastAPI's way
        auth_time = session.auth_time
        if auth_time is None or clock() - auth_time > within:
            raise on_error(STALE)
        return session

    return fresh_session
