"""fastapi-sessions' ``backends.session_backend`` module: the backend's error."""

from __future__ import annotations

__all__ = ["BackendError"]


class BackendError(Exception):
    """A backend call the stored sessions cannot honour: creating an ID that exists, or
    updating one that does not (as in fastapi-sessions)."""
