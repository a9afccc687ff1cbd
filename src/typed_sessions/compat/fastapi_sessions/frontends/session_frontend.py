"""fastapi-sessions' ``frontends.session_frontend`` module: the frontend's error value."""

from __future__ import annotations

__all__ = ["FrontendError"]


class FrontendError(Exception):
    """What a frontend made with ``auto_error=False`` returns (not raises) for a request
    without a valid session cookie, as in fastapi-sessions."""
