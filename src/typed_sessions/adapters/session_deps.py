"""FastAPI dependencies giving handlers the middleware's session, typed."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends
from starlette.requests import HTTPConnection

from typed_sessions.adapters.errors import SessionMiddlewareMissingError
from typed_sessions.adapters.manager import SessionManager
from typed_sessions.adapters.skipped import SkippedSession

__all__ = [
    "SCOPE_KEY",
    "LoadedSessionDep",
    "SessionDep",
    "get_session_manager",
    "load_session_manager",
]

SCOPE_KEY: Final = "typed_sessions.manager"
"""The ASGI scope key under which the middleware keeps the request's manager."""


async def get_session_manager(connection: HTTPConnection) -> SessionManager:
    """FastAPI dependency: the request's :class:`SessionManager` (HTTP and WebSocket).

    A coroutine function, so that FastAPI calls it on the event loop: a plain ``def``
    dependency would be run in its thread pool, a thread hop for every request.

    Raises:
        SessionSkippedError: the request carried the skip header (answered with 400).
        SessionMiddlewareMissingError: the app has no ``session_middleware``.
    """
    manager = connection.scope.get(SCOPE_KEY)
    if isinstance(manager, SessionManager):
        # Its response varies with the cookie: a body streamed later may read it.
        manager.mark_accessed()
        return manager
    if isinstance(manager, SkippedSession):
        raise manager.error()
    raise SessionMiddlewareMissingError(
        "no session middleware: add it with app.add_middleware(session_middleware, ...)"
    )


SessionDep = Annotated[SessionManager, Depends(get_session_manager)]
"""The request's session manager, typed: ``async def handler(session: SessionDep)``."""


async def load_session_manager(manager: SessionDep) -> SessionManager:
    """FastAPI dependency: the manager with its session loaded (for ``autoload=False``).

    Raises:
        StoreError: the store failed (the middleware answers 503).
    """
    await manager.load()
    return manager


LoadedSessionDep = Annotated[SessionManager, Depends(load_session_manager)]
"""Like :data:`SessionDep`, but loads the session first; the way to read it with
``autoload=False``."""
