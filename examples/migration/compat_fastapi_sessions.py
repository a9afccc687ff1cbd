"""fastapi-sessions' getting-started app on typed-sessions: only the imports changed.

The guide's complete app, with its three ``fastapi_sessions`` imports pointed at
``typed_sessions.compat.fastapi_sessions``. Return types are added for ``mypy --strict``
and the secret is a long one (typed-sessions warns about secrets under 32 bytes); the
guide's own text runs unchanged too (``tests/test_compat_fastapi_sessions.py``).
"""

from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, HTTPException, Response
from pydantic import BaseModel

from typed_sessions import secret_from_env
from typed_sessions.compat.fastapi_sessions.backends.implementations import InMemoryBackend
from typed_sessions.compat.fastapi_sessions.frontends.implementations import (
    CookieParameters,
    SessionCookie,
)
from typed_sessions.compat.fastapi_sessions.session_verifier import SessionVerifier


class SessionData(BaseModel):
    username: str


cookie_params = CookieParameters()

# Uses UUID
cookie = SessionCookie(
    cookie_name="cookie",
    identifier="general_verifier",
    auto_error=True,
    secret_key=secret_from_env("SESSION_SECRET"),  # the page: a literal; never in source
    cookie_params=cookie_params,
)
backend = InMemoryBackend[UUID, SessionData]()


class BasicVerifier(SessionVerifier[UUID, SessionData]):
    def __init__(
        self,
        *,
        identifier: str,
        auto_error: bool,
        backend: InMemoryBackend[UUID, SessionData],
        auth_http_exception: HTTPException,
    ):
        self._identifier = identifier
        self._auto_error = auto_error
        self._backend = backend
        self._auth_http_exception = auth_http_exception

    @property
    def identifier(self) -> str:
        return self._identifier

    @property
    def backend(self) -> InMemoryBackend[UUID, SessionData]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return self._auto_error

    @property
    def auth_http_exception(self) -> HTTPException:
        return self._auth_http_exception

    def verify_session(self, model: SessionData) -> bool:
        """If the session exists, it is valid"""
        return True


verifier = BasicVerifier(
    identifier="general_verifier",
    auto_error=True,
    backend=backend,
    auth_http_exception=HTTPException(status_code=403, detail="invalid session"),
)

app = FastAPI()


@app.post("/create_session/{name}")
async def create_session(name: str, response: Response) -> str:
    session = uuid4()
    data = SessionData(username=name)

    await backend.create(session, data)
    cookie.attach_to_response(response, session)

    return f"created session for {name}"


@app.get("/whoami", dependencies=[Depends(cookie)])
async def whoami(session_data: SessionData = Depends(verifier)) -> SessionData:
    return session_data


@app.post("/delete_session")
async def del_session(response: Response, session_id: UUID = Depends(cookie)) -> str:
    await backend.delete(session_id)
    cookie.delete_from_response(response)
    return "deleted session"
