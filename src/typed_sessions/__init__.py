"""typed-sessions: server-side sessions for FastAPI, typed and secure by default.

Everything public is importable from here.
"""

from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.codec import DecodeError, SessionCodec, SessionEncodeError
from typed_sessions.core.cookies import (
    CookieSettings,
    SameSite,
    parse_cookie,
    render_clear_cookie,
    render_set_cookie,
)
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import (
    Expiry,
    Session,
    is_expired,
    new_session,
    replace_data,
    touch_session,
)
from typed_sessions.core.signing import (
    DEFAULT_CLOCK_SKEW,
    TOKEN_LENGTH,
    Keyring,
    SessionId,
    SigningKey,
    TokenError,
    new_session_id,
    sign_session_id,
    verify_session_token,
)
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import (
    Conflict,
    SessionStore,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from typed_sessions.stores.update import (
    SessionNotFound,
    TooManyConflicts,
    UpdateError,
    update_session,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "TOKEN_LENGTH",
    "Clock",
    "Conflict",
    "CookieSettings",
    "DecodeError",
    "Err",
    "Expiry",
    "Keyring",
    "MemoryStore",
    "Ok",
    "Result",
    "SameSite",
    "Session",
    "SessionCodec",
    "SessionEncodeError",
    "SessionId",
    "SessionNotFound",
    "SessionStore",
    "SigningKey",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "TokenError",
    "TooManyConflicts",
    "UpdateError",
    "__version__",
    "is_expired",
    "new_session",
    "new_session_id",
    "parse_cookie",
    "render_clear_cookie",
    "render_set_cookie",
    "replace_data",
    "sign_session_id",
    "touch_session",
    "update_session",
    "utc_now",
    "verify_session_token",
]
