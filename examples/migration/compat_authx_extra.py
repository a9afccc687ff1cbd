"""authx-extra's SessionMiddleware counter on typed-sessions: only the imports changed.

The page's usage block, with its two imports pointed at ``typed_sessions.compat.authx_extra``.
Types are added for ``mypy --strict`` and the secret comes from ``$SESSION_SECRET`` (never
a literal in source: anyone could sign cookies with it); the page's own text runs unchanged too
(``tests/test_compat_authx_extra.py``). ``print`` shows a label of the session, never its ID.
"""

from fastapi import FastAPI, Request

from typed_sessions.compat.authx_extra import MemoryIO, SessionIntegration
from typed_sessions.compat.authx_extra.session import SessionMiddleware
from typed_sessions.environment import secret_from_env

app = FastAPI()
app.add_middleware(
    SessionMiddleware,
    secret_key=secret_from_env(),
    store=MemoryIO(),
    http_only=True,
    secure=False,
    max_age=0,
    session_cookie="sid",
    session_object="session",
)


@app.get("/session_test")
async def session(request: Request) -> dict[str, int]:
    session_manager: SessionIntegration = request.state.session
    session = session_manager.get_session()
    session_id = session_manager.get_session_id()

    print(f"sessionID:{session_id}")

    if "test_counter" not in session:
        session["test_counter"] = 0

    session["test_counter"] += 1

    return {"test_counter": session["test_counter"]}


@app.get("/session_test_1_2")
async def session_awaited(request: Request) -> dict[str, int]:
    """The same handler as written for authx-extra 1.2, whose methods were coroutines."""
    session_manager: SessionIntegration = request.state.session
    session = await session_manager.get_session()
    session_id = await session_manager.get_session_id()

    print(f"sessionID:{session_id}")

    session["test_counter"] = session.get("test_counter", 0) + 1
    await session_manager.save_session()  # nothing to do: saved when the response starts

    return {"test_counter": session["test_counter"]}
