"""Session IDs: what names a record in a store, and how a fresh one is made."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final, NewType

__all__ = ["ID_LENGTH", "SessionId", "id_digest", "new_session_id"]

SessionId = NewType("SessionId", str)
"""A session ID: 43 URL-safe characters encoding 256 random bits."""

_ID_BYTES: Final = 32
ID_LENGTH: Final = 43
"""Length of every ID :func:`new_session_id` returns."""


def new_session_id() -> SessionId:
    """Return a fresh session ID: 256 bits from :mod:`secrets`, URL-safe text."""
    return SessionId(secrets.token_urlsafe(_ID_BYTES))


def id_digest(session_id: str) -> str:
    """A short, non-reversible label for a session ID, safe to log (12 hex digits)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]
