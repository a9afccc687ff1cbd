"""The app's ``UUID`` session IDs as typed-sessions ``SessionId`` values, and back.

fastapi-sessions apps make their own session IDs (``uuid4()``) and pass them to the
backend's ``create`` before the cookie is attached; the backend is built without the
secret. So the mapping cannot be keyed, and need not be: the cookie carries the ID inside
an HMAC-signed token, which is the credential, and the stores hash IDs before using them
as keys (``RedisStore``). The mapping is a fixed 11-character prefix followed by the
UUID's 32 hex digits: 43 URL-safe characters, the length of every ``SessionId``.
It is reversible, so ``Depends(cookie)`` gives back the very UUID the app created, and
an ID made by ``new_session_id()`` (256 random bits) is never mistaken for one (its
chance of starting with the prefix is 2**-66).
"""

from __future__ import annotations

import re
from typing import Final
from uuid import UUID

from typed_sessions import SessionId

__all__ = ["UUID_ID_PREFIX", "session_id_for", "uuid_for"]

UUID_ID_PREFIX: Final = "compat-uuid"
"""What every session ID made from a UUID starts with."""

_UUID_ID = re.compile(r"compat-uuid([0-9a-f]{32})")


def session_id_for(value: UUID) -> SessionId:
    """Return the session ID the stores know the app's ``value`` by.

    Raises:
        TypeError: ``value`` is not a ``UUID`` (fastapi-sessions' cookie frontend deals
            in UUIDs only).
    """
    match value:
        case UUID():
            return SessionId(UUID_ID_PREFIX + value.hex)
        case _:  # an untyped app's str, say
            raise TypeError(f"session IDs are UUIDs (uuid4()), not {type(value).__name__}")


def uuid_for(session_id: str) -> UUID | None:
    """Return the UUID a session ID was made from, or ``None`` for any other ID."""
    match = _UUID_ID.fullmatch(session_id)
    return None if match is None else UUID(hex=match[1])
