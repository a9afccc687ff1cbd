"""fastapi-sessions' ``SessionCookie`` frontend on typed-sessions' signed tokens.

The cookie holds a token from :func:`~typed_sessions.sign_session_id`, signed with
``Keyring.from_secrets(secret_key, purpose=cookie_name)``: bound to its cookie, as
fastapi-sessions' signatures were (salted with the cookie name), so a token of one
cookie is refused under another. An app moving on to the native API gives its
dependency that keyring and keeps its users signed in. It carries the ID made from the
app's UUID (``typed_sessions.compat.fastapi_sessions.ids``).
``SameSite`` is sent as browsers read it (fastapi-sessions sent
``SameSite=SameSiteEnum.lax``, which they ignore).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID

from fastapi import HTTPException
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions import (
    Clock,
    CookieSettings,
    Err,
    Keyring,
    SameSite,
    parse_cookie,
    render_clear_cookie,
    render_set_cookie,
    sign_session_id,
    utc_now,
    verify_session_token,
)
from typed_sessions.compat.fastapi_sessions.backends.implementations.handed_out import (
    begin_request,
)
from typed_sessions.compat.fastapi_sessions.frontends.session_frontend import FrontendError
from typed_sessions.compat.fastapi_sessions.ids import session_id_for, uuid_for

__all__ = ["STATE_ATTRIBUTE", "CookieParameters", "SameSiteEnum", "SessionCookie"]

STATE_ATTRIBUTE: Final = "typed_sessions_compat_frontends"
"""``request.state`` attribute: identifier -> the frontend that read the request's ID."""


class SameSiteEnum(StrEnum):
    """fastapi-sessions' ``SameSiteEnum``; each member is sent as its value."""

    lax = "lax"
    strict = "strict"
    none = "none"


@dataclass(frozen=True, slots=True)
class CookieParameters:
    """fastapi-sessions' cookie parameters, with its defaults (14 days, no ``Secure``).

    ``max_age`` is also the oldest token the cookie frontend accepts, as before. Checked
    when a ``SessionCookie`` is made: ``samesite="none"`` needs ``secure=True``.
    """

    max_age: int = 14 * 24 * 60 * 60
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = True
    samesite: SameSiteEnum | SameSite = SameSiteEnum.lax

    def settings(self, name: str) -> CookieSettings:
        """These parameters as typed-sessions cookie settings for the cookie ``name``.

        Raises:
            ValueError: a setting browsers would reject or misread.
        """
        return CookieSettings(
            name=name,
            path=self.path,
            domain=self.domain,
            max_age=self.max_age,
            secure=self.secure,
            httponly=self.httponly,
            samesite=SameSiteEnum(self.samesite).value,
        )


class SessionCookie(SecurityBase):
    """The session cookie frontend: ``Depends(cookie)`` gives the app's session UUID.

    It appears in OpenAPI as an ``apiKey`` cookie scheme (``scheme_name``, default
    ``"SessionCookie"``). A request without the cookie gets 403 ``No session provided``,
    one with an altered, foreign or too old cookie 401 ``Invalid session provided``; with
    ``auto_error=False`` the dependency returns a ``FrontendError`` instead. The cookie is
    only read here; the verifier loads the session.

    Raises:
        ValueError: at construction, for an empty ``secret_key`` or cookie parameters a
            browser would reject.
    """

    def __init__(
        self,
        *,
        cookie_name: str,
        identifier: str,
        secret_key: str | bytes,
        cookie_params: CookieParameters,
        scheme_name: str | None = None,
        auto_error: bool = False,
        clock: Clock = utc_now,
    ) -> None:
        self.model: SecurityBaseModel = APIKey.model_validate(
            {"in": APIKeyIn.cookie, "name": cookie_name}
        )
        self.scheme_name: str = scheme_name or type(self).__name__
        self._identifier = identifier
        self.auto_error = auto_error
        self.cookie_params = cookie_params
        self.cookie: CookieSettings = cookie_params.settings(cookie_name)
        self.keys: Keyring = Keyring.from_secrets(secret_key, purpose=cookie_name)
        self.max_age: timedelta = timedelta(seconds=cookie_params.max_age)
        self.clock = clock

    @property
    def identifier(self) -> str:
        """The name that ties this frontend to its verifier."""
        return self._identifier

    async def __call__(self, request: HTTPConnection) -> UUID | FrontendError:
        """Return the UUID the request's cookie carries (or refuse, as described above).

        A coroutine function, so FastAPI calls it on the event loop (fastapi-sessions'
        was synchronous, which FastAPI runs in a worker thread). It does no I/O.
        """
        found: dict[str, SessionCookie | FrontendError] = (
            getattr(request.state, STATE_ATTRIBUTE, None) or {}
        )
        setattr(request.state, STATE_ATTRIBUTE, found)
        begin_request(found)  # the sessions handed out from here on are this request's
        headers = request.headers.getlist("cookie")
        token = parse_cookie("; ".join(headers), self.cookie.name) if headers else None
        if not token:
            return self._refuse(found, 403, "No session provided")
        checked = verify_session_token(token, self.keys, now=self.clock(), max_age=self.max_age)
        session_uuid = None if isinstance(checked, Err) else uuid_for(checked.value)
        if session_uuid is None:
            return self._refuse(found, 401, "Invalid session provided")
        found[self._identifier] = self
        return session_uuid

    def _refuse(
        self, found: dict[str, SessionCookie | FrontendError], status: int, detail: str
    ) -> FrontendError:
        """Raise fastapi-sessions' ``HTTPException``, or note and return a ``FrontendError``."""
        if self.auto_error:
            raise HTTPException(status_code=status, detail=detail)
        error = FrontendError(detail)
        found[self._identifier] = error
        return error

    def attach_to_response(self, response: Response, session_id: UUID) -> None:
        """Set the cookie naming ``session_id`` on ``response`` (and ``no-store``)."""
        token = sign_session_id(session_id_for(session_id), self.keys, now=self.clock())
        response.headers.append("set-cookie", render_set_cookie(self.cookie, token))
        response.headers["cache-control"] = "no-store"

    def delete_from_response(self, response: Response) -> None:
        """Clear the cookie on ``response`` (same path, domain and flags as it was set)."""
        response.headers.append("set-cookie", render_clear_cookie(self.cookie))
        response.headers["cache-control"] = "no-store"
