"""fastapi-sessions 0.3's API on typed-sessions: change the imports, keep the app.

``from fastapi_sessions.X import Y`` becomes
``from typed_sessions.compat.fastapi_sessions.X import Y`` for the modules the getting-started
guide uses (``frontends.implementations``, ``backends.implementations``,
``session_verifier``); every name is also importable from this package. ``RedisBackend``
puts the sessions in Redis, for several workers.
"""

from typed_sessions.compat.fastapi_sessions.backends.implementations import (
    InMemoryBackend,
    RedisBackend,
    StoreBackend,
)
from typed_sessions.compat.fastapi_sessions.backends.session_backend import BackendError
from typed_sessions.compat.fastapi_sessions.frontends.implementations import (
    CookieParameters,
    SameSiteEnum,
    SessionCookie,
)
from typed_sessions.compat.fastapi_sessions.frontends.session_frontend import FrontendError
from typed_sessions.compat.fastapi_sessions.ids import session_id_for, uuid_for
from typed_sessions.compat.fastapi_sessions.session_verifier import SessionVerifier

__all__ = [
    "BackendError",
    "CookieParameters",
    "FrontendError",
    "InMemoryBackend",
    "RedisBackend",
    "SameSiteEnum",
    "SessionCookie",
    "SessionVerifier",
    "StoreBackend",
    "session_id_for",
    "uuid_for",
]
