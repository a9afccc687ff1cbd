"""The shims' types, as the pages use them: checked by ``mypy --strict`` (with the typed
examples ``examples/migration/compat_*.py``), and run so the checks are not dead code."""

from __future__ import annotations

from typing import Any, assert_type
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from typed_sessions.compat.authx_extra import (
    MemoryIO,
    SessionHandle,
    SessionIntegration,
    SessionMiddleware,
    SessionView,
)
from typed_sessions.compat.fastapi_sessions import (
    CookieParameters,
    FrontendError,
    InMemoryBackend,
    SessionCookie,
    SessionVerifier,
    StoreBackend,
)
from typed_sessions.stores.memory import MemoryStore

from .conftest import SECRET

pytestmark = pytest.mark.anyio


class SessionData(BaseModel):
    username: str


class Verifier(SessionVerifier[UUID, SessionData]):
    def __init__(self, backend: InMemoryBackend[UUID, SessionData]) -> None:
        self._backend = backend

    @property
    def identifier(self) -> str:
        return "general_verifier"

    @property
    def backend(self) -> InMemoryBackend[UUID, SessionData]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return True

    @property
    def auth_http_exception(self) -> HTTPException:
        return HTTPException(status_code=403, detail="invalid session")

    def verify_session(self, model: SessionData) -> bool:
        return True


async def test_fastapi_sessions_shim_types() -> None:
    backend = InMemoryBackend[UUID, SessionData]()
    assert_type(backend, InMemoryBackend[UUID, SessionData])
    session = uuid4()
    await backend.create(session, SessionData(username="ann"))
    assert_type(await backend.read(session), SessionData | None)
    cookie = SessionCookie(
        cookie_name="cookie",
        identifier="general_verifier",
        auto_error=False,
        secret_key=SECRET,
        cookie_params=CookieParameters(),
    )
    request = Request({"type": "http", "headers": [], "state": {}})
    assert isinstance(assert_type(await cookie(request), UUID | FrontendError), FrontendError)
    verifier = Verifier(backend)
    assert_type(verifier.backend, InMemoryBackend[UUID, SessionData])
    with pytest.raises(HTTPException, match="invalid session"):
        assert_type(await verifier(request, Response()), SessionData | None)
    over_a_store = StoreBackend(MemoryStore(SessionData))  # UUIDs by default, as on the page
    assert_type(over_a_store, StoreBackend[UUID, SessionData])
    await over_a_store.create(session, SessionData(username="bob"))
    assert await over_a_store.read(session) == SessionData(username="bob")


async def test_authx_extra_shim_types() -> None:
    store = MemoryIO()
    assert_type(store, MemoryIO)  # a class, as authx-extra's is
    memory: MemoryStore[dict[str, Any]] = store  # of dicts
    assert memory is store
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, store=store, secure=False)

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        manager: SessionIntegration = request.state.session
        assert_type(manager.get_session(), SessionView)
        assert_type(await manager.get_session(), SessionView)
        assert_type(manager.get_session_id(), SessionHandle)
        assert_type(await manager.get_session_id(), SessionHandle)
        assert_type(await manager.save_session(), None)
        manager.get_session()["n"] = 1
        return dict(manager.get_session())

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/")).json() == {"n": 1}
