"""The authx-extra SessionMiddleware page's counter, rewritten with typed-sessions.

Run: ``SESSION_SECRET=$(python -m typed_sessions keygen) uvicorn --factory
examples.counter_middleware:create_app`` (or ``TYPED_SESSIONS_DEVELOPMENT=1`` for a
throwaway secret, with a warning) and open http://localhost:8000/session_test and reload:
1, 2, 3. The cookie is ``Secure``; browsers accept that from ``localhost``, anywhere else
serve the app over HTTPS.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI, Request

from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.core.cookies import CookieSettings
from typed_sessions.core.signing import Keyring
from typed_sessions.environment import secret_from_env
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import SessionStore

logger = logging.getLogger("counter")


def create_app(
    secret: str | None = None,
    *,
    store: SessionStore[dict[str, Any]] | None = None,
    take_turns: bool = False,
) -> FastAPI:
    """Build the app; ``secret`` defaults to ``$SESSION_SECRET`` (without it, the app
    refuses to start: see :func:`~typed_sessions.secret_from_env`). ``take_turns``:
    concurrent requests of one session in this process run their session work one after
    the other (all answered 200), instead of a stale one being refused with 409."""
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=store if store is not None else MemoryStore(dict[str, Any]),
        take_turns=take_turns,
        keys=Keyring.from_secrets(secret or secret_from_env()),
        cookie=CookieSettings(name="sid"),  # Secure, HttpOnly, a browser-session cookie
        state_attribute="session",
        skip_header="x-skip-session",
        logger=logger,
    )

    @app.get("/session_test")
    async def session_test(request: Request) -> dict[str, int]:
        """The page's handler, as written there (``request.state.session``)."""
        session_manager = request.state.session
        session = session_manager.get_session()
        session_id = session_manager.get_session_id()
        logger.debug("has session: %s", session_id is not None)  # never log the ID itself

        if "test_counter" not in session:
            session["test_counter"] = 0

        session["test_counter"] += 1

        return {"test_counter": session["test_counter"]}

    @app.get("/typed_session_test")
    async def typed_session_test(session_manager: SessionDep) -> dict[str, int]:
        """The same counter through the typed dependency: no ``Any`` in sight."""
        session = session_manager.get_session()
        counter = int(session.get("test_counter", 0)) + 1
        session["test_counter"] = counter
        return {"test_counter": counter}

    return app


def app_from_env() -> FastAPI:
    """The app on Redis, for ``uvicorn --factory``: ``TYPED_SESSIONS_REDIS_URL``,
    ``TYPED_SESSIONS_PREFIX``, ``TYPED_SESSIONS_SECRET`` and ``TAKE_TURNS=1``."""
    from typed_sessions.stores.redis import RedisStore

    store = RedisStore.from_url(
        os.environ["TYPED_SESSIONS_REDIS_URL"],
        dict[str, Any],
        prefix=os.environ.get("TYPED_SESSIONS_PREFIX", "counter:"),
    )
    return create_app(
        os.environ["TYPED_SESSIONS_SECRET"],
        store=store,
        take_turns=os.environ.get("TAKE_TURNS") == "1",
    )
