"""Every option of session_middleware, with its default unless a comment says otherwise."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from typed_sessions import (
    CookieSettings,
    Expiry,
    Keyring,
    MemoryStore,
    default_error_mapping,
    session_middleware,
    utc_now,
)


def create_app(secret: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),  # required: where the records live
        keys=Keyring.from_secrets(secret),  # required: a Keyring, or one secret
        cookie=CookieSettings(  # the same settings as the dependencies take
            name="session",  # default: "__Host-session"
            secure=True,  # sent over HTTPS only
            httponly=True,  # hidden from JavaScript
            max_age=None,  # None: a browser-session cookie
            samesite="lax",
            path="/",
            domain=None,  # the request's host only
        ),
        state_attribute="session",  # request.state.session
        skip_header=None,  # e.g. "x-skip-session" or ("x-health-check", "1")
        logger=logging.getLogger("sessions"),  # default: "typed_sessions"; None: no logging
        expiry=Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12)),
        autoload=True,  # load before the handler when the cookie verifies
        save_attempts=20,  # merges tried after a lost race, then 503
        clock=utc_now,  # tests pass a fake clock
        take_turns=False,  # True: a session's requests run one at a time in a worker
        turn_timeout=10.0,  # seconds a request waits for its session's turn, then 409
        on_error=default_error_mapping,  # how a refused request is answered (409)
    )
    return app


def create_app_with_cookie_settings(secret: str) -> FastAPI:
    """The cookie options as one CookieSettings."""
    app = FastAPI()
    app.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),
        keys=secret,
        cookie=CookieSettings(name="__Host-session", samesite="strict"),
    )
    return app
