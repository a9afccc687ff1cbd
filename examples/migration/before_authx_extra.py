"""Before: authx-extra's SessionMiddleware counter, as it runs with authx-extra 1.2.0.

Two lines differ from the published page, which does not run as printed: ``MemoryIO``
lives in ``authx_extra.extra._memory`` (not ``authx._internal``), and ``get_session()``
and ``get_session_id()`` are coroutines, so they are awaited.
"""

from authx_extra.extra._memory import MemoryIO
from authx_extra.session import SessionMiddleware
from fastapi import FastAPI, Request

app = FastAPI()
app.add_middleware(
    SessionMiddleware,
    secret_key="my-secret-key",
    store=MemoryIO(),
    http_only=True,
    secure=False,
    max_age=0,
    session_cookie="sid",
    session_object="session",
)


@app.get("/session_test")
async def session(request: Request):
    session_manager = request.state.session
    session = await session_manager.get_session()
    session_id = await session_manager.get_session_id()

    print(f"sessionID:{session_id}")

    if "test_counter" not in session:
        session["test_counter"] = 0

    session["test_counter"] += 1

    return {"test_counter": session["test_counter"]}
