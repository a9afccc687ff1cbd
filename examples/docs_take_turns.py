"""Requests of one session take turns in this worker: the page's counter, exact.

Run: ``SESSION_SECRET=$(python -m typed_sessions keygen) uvicorn
examples.docs_take_turns:app``. Twenty concurrent increments of one session are all
answered 200 and the counter ends twenty higher.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from typed_sessions import MemoryStore, SessionDep, secret_from_env, session_middleware

app = FastAPI()
app.add_middleware(
    session_middleware,
    store=MemoryStore(dict[str, Any]),
    keys=secret_from_env("SESSION_SECRET"),
    take_turns=True,  # one request of a session at a time, from its load to its commit
    turn_timeout=10.0,  # a turn that does not come in 10 s: 409 (reason "session_busy")
)


@app.post("/visits")
async def visits(session: SessionDep) -> dict[str, int]:
    data = session.get_session()
    data["visits"] = data.get("visits", 0) + 1  # read-modify-write: never refused here
    return {"visits": data["visits"]}
