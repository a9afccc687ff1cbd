"""typed-sessions: server-side sessions for FastAPI, typed and secure by default.

Everything public is importable from here. ``RedisStore``, ``SqlStore`` and
``session_table`` are imported on first use, so ``import typed_sessions`` works without
the ``redis`` or ``sql`` extra installed.
"""

import logging
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
    device_of,
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
from typed_sessions.adapters.user_sessions import UserSessions
from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.codec import (
    DEFAULT_MAX_DATA_BYTES,
    DecodeError,
    SessionCodec,
    SessionEncodeError,
    SessionTooLargeError,
    Upgrade,
)
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
    session_info,
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
from typed_sessions.core.subjects import (
    Device,
    SessionInfo,
    check_subject,
    device_from,
    session_handle,
)
from typed_sessions.environment import DEVELOPMENT_ENV, secret_from_env
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
from typed_sessions.stores.subjects import SubjectIndex, subject_index

logging.getLogger("typed_sessions").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from typed_sessions.stores.redis import RedisStore
    from typed_sessions.stores.sql import SqlStore
    from typed_sessions.stores.sql_table import session_table

__version__ = "0.3.0"


_SQL_NAMES = frozenset({"SqlStore", "session_table"})


def __getattr__(name: str) -> Any:
    """Import ``RedisStore`` and ``SqlStore`` lazily: they need the ``redis`` and ``sql``
    extras."""
    if name == "RedisStore":
        try:
            from typed_sessions.stores.redis import RedisStore
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"RedisStore needs the redis extra: pip install 'typed-sessions[redis]' ({exc})",
                name=exc.name,
            ) from exc
        return RedisStore
    if name in _SQL_NAMES:  # the SQL store: the sql extra (SQLAlchemy)
        try:
            from typed_sessions.stores.sql import SqlStore
            from typed_sessions.stores.sql_table import session_table
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"{name} needs the sql extra: pip install 'typed-sessions[sql]' ({exc})",
                name=exc.name,
            ) from exc
        return SqlStore if name == "SqlStore" else session_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_COOKIE",
    "DEFAULT_EXPIRY",
    "DEFAULT_HEADER",
    "DEFAULT_MAX_DATA_BYTES",
    "DEVELOPMENT_ENV",
    "MAX_LIFETIME",
    "TOKEN_CACHE_SIZE",
    "TOKEN_LENGTH",
    "Clock",
    "Conflict",
    "CookieSettings",
    "DecodeError",
    "Device",
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
    "SessionInfo",
    "SessionManager",
    "SessionMiddleware",
    "SessionMiddlewareMissingError",
    "SessionNotFound",
    "SessionNotLoadedError",
    "SessionSettings",
    "SessionSkippedError",
    "SessionStore",
    "SessionTooLargeError",
    "SessionUsageError",
    "SigningKey",
    "SqlStore",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "SubjectIndex",
    "TokenError",
    "TooManyConflicts",
    "UpdateError",
    "Upgrade",
    "UserSessions",
    "Verifier",
    "WebSocketSessionError",
    "__version__",
    "as_keyring",
    "check_subject",
    "default_error_mapping",
    "device_from",
    "device_of",
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
    "secret_from_env",
    "session_handle",
    "session_info",
    "session_middleware",
    "session_table",
    "sign_session_id",
    "start_session",
    "store_error_handler",
    "subject_index",
    "touch_session",
    "update_session",
    "utc_now",
    "verify_session_token",
]
