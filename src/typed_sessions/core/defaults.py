"""Every default of the library, defined once: lifetimes, retries, skew, names."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.session import Expiry

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_COOKIE",
    "DEFAULT_EXPIRY",
    "DEFAULT_HEADER",
]

DEFAULT_EXPIRY: Final = Expiry()
"""30 minutes idle, 12 hours at most, a save when the idle deadline moves by 3 minutes."""

DEFAULT_COOKIE: Final = CookieSettings()
"""The session cookie: ``Secure; HttpOnly; SameSite=lax``, path ``/``, no domain."""

DEFAULT_HEADER: Final = "X-Session"
"""The request header a header dependency reads the token from."""

DEFAULT_ATTEMPTS: Final = 20
"""How many times a save that lost a race is rebased on the newest record and tried."""

DEFAULT_CLOCK_SKEW: Final = timedelta(seconds=60)
"""How far in the future a token's issue time may be before it is refused."""
