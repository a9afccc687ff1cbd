"""typed-sessions: server-side sessions for FastAPI, typed and secure by default.

Everything public is importable from here. ``RedisStore`` is imported on first use, so
``import typed_sessions`` works without the ``redis`` extra installed.
"""

from typing import TYPE_CHECKING, Any

from typed_sessions.adapters.actions import SessionActions
from typed_sessions.adapters.dependencies import (
    OptionalSessionDependency,
    SessionDependency,
    Verifier,
    make_cookie_dependency,
    make_header_dependency,
)
from typed_sessions.adapters.errors import (
    SessionClosedError,
    SessionConflictError,
    SessionMiddlewareMissingError,
    SessionNotLoadedError,
    SessionSkippedError,
    SessionUsageError,
    WebSocketSessionError,
)
from typed_sessions.adapters.lifecycle import (
    IssuedSession,
    end_session,
    issue_session,
    reissue_session,
    rotate_session,
    start_session,
)
from typed_sessions.adapters.manager import SessionManager
from typed_sessions.adapters.middleware import SessionMiddleware, session_middleware
from typed_sessions.adapters.responses import (
    ErrorMapping,
    FailureKind,
    FailureReason,
    SessionFailure,
    default_error_mapping,
    store_error_handler,
)
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.adapters.session_deps import (
    LoadedSessionDep,
    SessionDep,
    get_session_manager,
    load_session_manager,
)
from typed_sessions.adapters.settings import MiddlewareOptions, SessionSettings
from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.codec import DecodeError, SessionCodec, SessionEncodeError
from typed_sessions.core.cookies import (
    CookieSettings,
    SameSite,
    parse_cookie,
    render_clear_cookie,
    render_set_cookie,
)
from typed_sessions.core.defaults import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_COOKIE,
    DEFAULT_EXPIRY,
    DEFAULT_HEADER,
)
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import (
    MAX_LIFETIME,
    Expiry,
    Session,
    expire_session,
    is_expired,
    new_session,
    replace_data,
    touch_session,
)
from typed_sessions.core.signing import (
    TOKEN_CACHE_SIZE,
    TOKEN_LENGTH,
    Keyring,
    Keys,
    SigningKey,
    TokenError,
    as_keyring,
    sign_session_id,
    verify_session_token,
)
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.operations import (
    SessionNotFound,
    TooManyConflicts,
    UpdateError,
    update_session,
)
from typed_sessions.stores.protocol import (
    Conflict,
    SessionStore,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from typed_sessions.stores.redis import RedisStore

__version__ = "0.3.0"


def __getattr__(name: str) -> Any:
    """Import ``RedisStore`` lazily: it needs the ``redis`` extra."""
    if name == "RedisStore":
        try:
            from typed_sessions.stores.redis import RedisStore
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"RedisStore needs the redis extra: pip install 'typed-sessions[redis]' ({exc})",
                name=exc.name,
            ) from exc
        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_COOKIE",
    "DEFAULT_EXPIRY",
    "DEFAULT_HEADER",
    "MAX_LIFETIME",
    "TOKEN_CACHE_SIZE",
    "TOKEN_LENGTH",
    "Clock",
    "Conflict",
    "CookieSettings",
    "DecodeError",
    "Err",
    "ErrorMapping",
    "Expiry",
    "FailureKind",
    "FailureReason",
    "IssuedSession",
    "Keyring",
    "Keys",
    "LoadedSessionDep",
    "MemoryStore",
    "MiddlewareOptions",
    "Ok",
    "OptionalSessionDependency",
    "RedisStore",
    "Result",
    "SameSite",
    "Session",
    "SessionActions",
    "SessionClosedError",
    "SessionCodec",
    "SessionConflictError",
    "SessionData",
    "SessionDep",
    "SessionDependency",
    "SessionEncodeError",
    "SessionFailure",
    "SessionId",
    "SessionManager",
    "SessionMiddleware",
    "SessionMiddlewareMissingError",
    "SessionNotFound",
    "SessionNotLoadedError",
    "SessionSettings",
    "SessionSkippedError",
    "SessionStore",
    "SessionUsageError",
    "SigningKey",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "TokenError",
    "TooManyConflicts",
    "UpdateError",
    "Verifier",
    "WebSocketSessionError",
    "__version__",
    "as_keyring",
    "default_error_mapping",
    "end_session",
    "expire_session",
    "get_session_manager",
    "is_expired",
    "issue_session",
    "load_session_manager",
    "make_cookie_dependency",
    "make_header_dependency",
    "new_session",
    "new_session_id",
    "parse_cookie",
    "reissue_session",
    "render_clear_cookie",
    "render_set_cookie",
    "replace_data",
    "rotate_session",
    "session_middleware",
    "sign_session_id",
    "start_session",
    "store_error_handler",
    "touch_session",
    "update_session",
    "utc_now",
    "verify_session_token",
]
