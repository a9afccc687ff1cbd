"""What the compatibility shims cost over the native API they map onto.

- ``GET /whoami`` with a valid cookie: no sessions (baseline), the native cookie
  dependency, and fastapi-sessions' getting-started wiring on
  ``typed_sessions.compat.fastapi_sessions`` (frontend + verifier);
- the authx-extra page's counter: no sessions (baseline), ``session_middleware``, and
  ``typed_sessions.compat.authx_extra.SessionMiddleware``.

Runs in the project's own venv (no peer library needed):
``cd benchmarks && ../.venv/bin/python bench_compat.py``.
"""

import asyncio
from typing import Annotated, Any
from uuid import UUID, uuid4

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from harness import Browser, run_async, table
from typed_sessions import (
    CookieSettings,
    Keyring,
    MemoryStore,
    Session,
    issue_session,
    make_cookie_dependency,
    session_middleware,
    sign_session_id,
    utc_now,
)
from typed_sessions.compat import authx_extra
from typed_sessions.compat.fastapi_sessions import (
    CookieParameters,
    InMemoryBackend,
    SessionCookie,
    SessionVerifier,
    session_id_for,
)

SECRET = "s" * 32


class SessionData(BaseModel):
    username: str


class BasicVerifier(SessionVerifier[UUID, SessionData]):
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


def whoami_apps() -> tuple[dict[str, FastAPI], dict[str, str]]:
    keys = Keyring.from_secrets(SECRET)
    store: MemoryStore[SessionData] = MemoryStore(SessionData)
    current = make_cookie_dependency(store, lambda s: True, keys=keys)
    unprotected, native, shim = FastAPI(), FastAPI(), FastAPI()

    @unprotected.get("/whoami")
    async def open_whoami() -> SessionData:
        return SessionData(username="alice")

    @native.get("/whoami")
    async def native_whoami(
        session: Annotated[Session[SessionData], Depends(current)],
    ) -> SessionData:
        return session.data

    cookie = SessionCookie(
        cookie_name="cookie",
        identifier="general_verifier",
        auto_error=True,
        secret_key=SECRET,
        cookie_params=CookieParameters(),
    )
    backend = InMemoryBackend[UUID, SessionData]()
    verifier = BasicVerifier(backend)

    @shim.get("/whoami", dependencies=[Depends(cookie)])
    async def shim_whoami(data: Annotated[SessionData, Depends(verifier)]) -> SessionData:
        return data

    async def tokens() -> dict[str, str]:
        issued = await issue_session(store, SessionData(username="alice"), keys=keys)
        session = uuid4()
        await backend.create(session, SessionData(username="alice"))
        shim_token = sign_session_id(session_id_for(session), cookie.keys, now=utc_now())
        return {
            "no sessions": f"session={issued.token}",
            "native dependency": f"session={issued.token}",
            "compat.fastapi_sessions": f"cookie={shim_token}",
        }

    apps = {"no sessions": unprotected, "native dependency": native}
    apps["compat.fastapi_sessions"] = shim
    return apps, asyncio.run(tokens())


def counter_apps() -> dict[str, FastAPI]:
    plain, native, shim = FastAPI(), FastAPI(), FastAPI()
    native.add_middleware(
        session_middleware,
        store=MemoryStore(dict[str, Any]),
        keys=SECRET,
        cookie=CookieSettings(name="sid"),
    )
    shim.add_middleware(authx_extra.SessionMiddleware, secret_key=SECRET)
    counts: dict[str, int] = {}

    @plain.get("/session_test")
    async def plain_counter() -> dict[str, int]:
        counts["n"] = counts.get("n", 0) + 1
        return {"test_counter": counts["n"]}

    @native.get("/session_test")
    async def native_counter(request: Request) -> dict[str, int]:
        session = request.state.session.get_session()  # as the page (and the shim) does
        if "test_counter" not in session:
            session["test_counter"] = 0
        session["test_counter"] += 1
        return {"test_counter": session["test_counter"]}

    @shim.get("/session_test")
    async def shim_counter(request: Request) -> dict[str, int]:
        session = request.state.session.get_session()
        if "test_counter" not in session:
            session["test_counter"] = 0
        session["test_counter"] += 1
        return {"test_counter": session["test_counter"]}

    return {"no sessions": plain, "session_middleware": native, "compat.authx_extra": shim}


def main() -> None:
    apps, cookies = whoami_apps()
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://testserver",
            headers={"cookie": cookies[name]},
        )
        for name, app in apps.items()
    }

    def whoami(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        async def call() -> None:
            reply = await client.get("/whoami")
            assert reply.status_code == 200, reply.text

        return call

    medians = run_async([(n, whoami(c)) for n, c in clients.items()], rounds=20, batch=200)
    print(table("GET /whoami with a valid session cookie", medians, baseline="no sessions"))

    browsers = {name: Browser(app) for name, app in counter_apps().items()}

    def counter(browser: Browser):  # type: ignore[no-untyped-def]
        async def call() -> None:
            assert await browser.get("/session_test") == 200

        return call

    medians = run_async([(n, counter(b)) for n, b in browsers.items()], rounds=20, batch=200)
    print()
    print(table("the counter, one browser", medians, baseline="no sessions"))


if __name__ == "__main__":
    main()
