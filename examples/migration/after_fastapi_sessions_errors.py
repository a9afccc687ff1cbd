"""Keep fastapi-sessions' status codes while clients migrate: a custom error mapping.

fastapi-sessions answers a missing cookie with 403 "No session provided", a bad
signature with 401 "Invalid session provided" and an unknown session with the
verifier's exception (403 "invalid session" in its guide). typed-sessions answers 401
to all of these and 403 only when ``verify_fn`` says no; ``on_error`` changes that.
"""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import BaseModel

from typed_sessions import (
    CookieSettings,
    Keyring,
    MemoryStore,
    Session,
    SessionFailure,
    default_error_mapping,
    make_cookie_dependency,
    secret_from_env,
)


class SessionData(BaseModel):
    username: str


def fastapi_sessions_errors(failure: SessionFailure) -> Exception:
    match failure.reason:
        case "missing":
            return HTTPException(403, "No session provided")
        case "malformed" | "unknown_key" | "bad_signature" | "token_expired" | "token_future":
            return HTTPException(401, "Invalid session provided")
        case "unknown_session" | "session_expired" | "refused":
            return HTTPException(403, "invalid session")
        case _:  # "store_error": keep the generic 503
            return default_error_mapping(failure)


def verify(session: Session[SessionData]) -> bool:
    return True


keys = Keyring.from_secrets(secret_from_env("SESSION_SECRET"))
cookie = CookieSettings(name="cookie")
store = MemoryStore(SessionData)
current_session = make_cookie_dependency(
    store, verify, keys=keys, cookie=cookie, on_error=fastapi_sessions_errors
)
