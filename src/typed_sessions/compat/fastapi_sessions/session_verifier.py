"""fastapi-sessions' ``SessionVerifier``: subclass it, give it a backend, use ``Depends(verifier)``.

Each call hands the request to a typed-sessions cookie dependency (built once per
frontend, with the frontend's keys and cookie and the backend's store and expiry), which
checks the token, loads the record, refuses it past its deadlines, asks
:meth:`SessionVerifier.verify_session` and slides the idle deadline. The frontend
(``Depends(cookie)``) must run first, as in fastapi-sessions: it says which cookie to read.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Generic, TypeVar
from uuid import UUID

from fastapi import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response

from typed_sessions import (
    Session,
    SessionDependency,
    SessionFailure,
    default_error_mapping,
    make_cookie_dependency,
)
from typed_sessions.compat.fastapi_sessions.backends.implementations.store_backends import (
    StoreBackend,
)
from typed_sessions.compat.fastapi_sessions.frontends.implementations.cookie import (
    STATE_ATTRIBUTE,
    SessionCookie,
)
from typed_sessions.compat.fastapi_sessions.frontends.session_frontend import FrontendError

__all__ = ["SessionVerifier"]

ID = TypeVar("ID", bound=UUID)
DataT = TypeVar("DataT")

_CACHE = "_typed_sessions_dependencies"


class _Refused(Exception):
    """Raised by the cookie dependency (as its ``on_error``); the verifier answers it."""

    def __init__(self, failure: SessionFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class SessionVerifier(ABC, Generic[ID, DataT]):
    """Gives a route the session's data once the frontend's cookie checks out.

    The session must be live in :attr:`backend` (not deleted, not past its deadlines)
    and :meth:`verify_session` must return a true value; otherwise
    :attr:`auth_http_exception` is raised (``auto_error``) or ``None`` returned. A store
    failure answers 503.
    """

    @property
    @abstractmethod
    def identifier(self) -> str:
        """The frontend's ``identifier``."""

    @property
    @abstractmethod
    def backend(self) -> StoreBackend[ID, DataT]:
        """Where the sessions live: an ``InMemoryBackend``, ``RedisBackend`` or ``StoreBackend``."""

    @property
    @abstractmethod
    def auto_error(self) -> bool:
        """Raise :attr:`auth_http_exception` (``True``) or return ``None``."""

    @property
    @abstractmethod
    def auth_http_exception(self) -> HTTPException:
        """The answer to a request whose session is missing, ended or refused."""

    @abstractmethod
    def verify_session(self, model: DataT) -> bool | Awaitable[bool]:
        """Whether the live session holding ``model`` may use the route: a true value,
        or an awaitable of one (an ``async def`` is awaited, not taken as true)."""

    async def __call__(self, request: HTTPConnection, response: Response) -> DataT | None:
        """Return the session's data, or refuse (see the class docs).

        Raises:
            RuntimeError: no frontend with this identifier read the request (its
                ``Depends(cookie)`` is missing or comes after the verifier's).
        """
        found = getattr(request.state, STATE_ATTRIBUTE, {}).get(self.identifier)
        if found is None:
            raise RuntimeError(
                f"no session frontend with identifier {self.identifier!r} ran before this "
                "verifier: add Depends(cookie) to the route, before Depends(verifier)"
            )
        if isinstance(found, FrontendError):
            self._refuse()
            return None
        try:
            session = await self._dependency(found)(request, response)
        except _Refused as refused:
            failure = refused.failure
            if failure.kind == "unavailable":
                answer = default_error_mapping(failure)
                raise HTTPException(answer.status_code, answer.detail) from failure.error
            self._refuse()
            return None
        return self.backend.hand_out(session)

    def _refuse(self) -> None:
        if self.auto_error:
            raise self.auth_http_exception

    def _verify(self, session: Session[DataT]) -> bool | Awaitable[bool]:
        verdict = self.verify_session(session.data)
        return _truth(verdict) if inspect.isawaitable(verdict) else bool(verdict)

    def _dependency(self, frontend: SessionCookie) -> SessionDependency[DataT]:
        """The cookie dependency for ``frontend``, made on first use and kept."""
        cache: dict[SessionCookie, SessionDependency[DataT]]
        try:
            cache = vars(self).setdefault(_CACHE, {})
        except TypeError:  # no __dict__ (__slots__ only): made on each call
            cache = {}
        dependency = cache.get(frontend)
        if dependency is None:
            backend = self.backend
            match backend:
                case StoreBackend():
                    dependency = cache[frontend] = make_cookie_dependency(
                        backend.store,
                        self._verify,
                        keys=frontend.keys,
                        cookie=frontend.cookie,
                        expiry=backend.expiry,
                        clock=backend.clock,
                        on_error=_Refused,
                        scheme_name=frontend.scheme_name,
                    )
                case _:  # an untyped app's backend of fastapi-sessions, say
                    raise TypeError(
                        "the verifier's backend must be an InMemoryBackend, RedisBackend or "
                        f"StoreBackend of typed_sessions.compat, not {type(backend).__name__}"
                    )
        return dependency


async def _truth(verdict: Awaitable[object]) -> bool:
    """The truth of an async ``verify_session``'s answer, as fastapi-sessions takes a sync one's."""
    return bool(await verdict)
