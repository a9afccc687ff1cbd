"""fastapi-sessions' ``frontends.implementations``: the session cookie and its parameters."""

from typed_sessions.compat.fastapi_sessions.frontends.implementations.cookie import (
    CookieParameters,
    SameSiteEnum,
    SessionCookie,
)

__all__ = ["CookieParameters", "SameSiteEnum", "SessionCookie"]
