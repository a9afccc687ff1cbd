"""Concurrent requests of one session through the middleware.

Changes to different keys are merged. A request whose change rests on a value another
request changed meanwhile (a counter it read and increased) is refused with 409 instead
of overwriting it, so every acknowledged increment counts. A counter that must never
refuse goes through ``update_session`` (or ``take_turns=True``) instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from typed_sessions import (
    Keyring,
    Ok,
    SessionDep,
    SessionStore,
    TooManyConflicts,
    session_middleware,
    update_session,
)


def _increment(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "visits": data.get("visits", 0) + 1}


def create_app(store: SessionStore[dict[str, Any]], keys: Keyring) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=keys)

    @app.post("/prefs/{key}/{value}")
    async def set_pref(key: str, value: str, session: SessionDep) -> dict[str, str]:
        session.get_session()[key] = value  # one key per request: always merged
        return {key: value}

    @app.post("/visits")
    async def count(session: SessionDep) -> dict[str, int]:
        data = session.get_session()
        data["visits"] = data.get("visits", 0) + 1  # read meanwhile changed: 409, not lost
        return {"visits": data["visits"]}

    @app.post("/visits/exact")
    async def count_exactly(session: SessionDep) -> dict[str, int]:
        data = session.get_session()
        session_id = session.get_session_id()
        if session_id is None:
            data["visits"] = 1  # no stored session yet: this request creates it
            return {"visits": 1}
        # Read-modify-write in the store itself, retried on conflict. The middleware
        # then saves only keys this request changed in `data`: none here.
        result = await update_session(store, session_id, _increment)
        if isinstance(result, Ok):
            return {"visits": result.value.data["visits"]}
        if isinstance(result.error, TooManyConflicts):
            raise HTTPException(503, "the session is busy; try again")
        raise HTTPException(409, "the session ended meanwhile")  # SessionNotFound

    return app
