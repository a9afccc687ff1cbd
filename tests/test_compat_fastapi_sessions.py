"""fastapi-sessions' getting-started app, imports changed, on typed-sessions (issue 16).

The app is read from the seed page itself (``tests/compat_pages.py``); only its three
``fastapi_sessions`` import lines change. The rest checks the shim's pieces one by one:
the UUID mapping, the backends' records, refusals, expiry and store failures.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from typed_sessions import (
    TOKEN_LENGTH,
    Conflict,
    Expiry,
    Keyring,
    MemoryStore,
    Ok,
    Result,
    Session,
    SessionId,
    SessionTooLargeError,
    StoreUnavailableError,
    new_session_id,
    sign_session_id,
    utc_now,
    verify_session_token,
)
from typed_sessions.compat.fastapi_sessions import (
    BackendError,
    CookieParameters,
    FrontendError,
    InMemoryBackend,
    SameSiteEnum,
    SessionCookie,
    SessionVerifier,
    StoreBackend,
    session_id_for,
    uuid_for,
)

from .compat_pages import PAGE1_IMPORTS, page1_code, rewrite, run
from .conftest import SECRET, FakeClock
from .racing import Yielding

pytestmark = pytest.mark.anyio
DataT = TypeVar("DataT")

BASE = "https://testserver"
PAGE_SECRET = "DONOTUSE"  # the page's
SHORT_SECRET_WARNING = (
    "secret #1 is 8 bytes; use at least 32 random bytes (`python -m typed_sessions keygen`)"
)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def load_page() -> dict[str, Any]:
    """Run the page's app; the page's 8-byte secret is the one warning allowed."""
    rewritten = rewrite(page1_code(), PAGE1_IMPORTS)
    compat = "from typed_sessions.compat.fastapi_sessions"
    assert [after for _, after in rewritten.changed] == [
        f"{compat}.backends.implementations import InMemoryBackend",
        f"{compat}.session_verifier import SessionVerifier",
        f"{compat}.frontends.implementations import SessionCookie, CookieParameters",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = run(rewritten.code)
    assert [str(w.message) for w in caught] == [SHORT_SECRET_WARNING]
    return page


@pytest.fixture
def page() -> dict[str, Any]:
    return load_page()


@pytest.fixture
async def client(page: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(page["app"]) as client:
        yield client


def cookie_header(name: str, value: str) -> dict[str, str]:
    """A request's Cookie header (httpx deprecates per-request ``cookies=``)."""
    return {"cookie": f"{name}={value}"}


def token_in(reply: httpx.Response) -> str:
    (set_cookie,) = reply.headers.get_list("set-cookie")
    name, _, rest = set_cookie.partition("=")
    assert name == "cookie"
    return rest.split(";", 1)[0]


# --- the page's app --------------------------------------------------------------------


async def test_the_page_flow_create_whoami_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/create_session/ann")
    assert (created.status_code, created.json()) == (200, "created session for ann")
    (set_cookie,) = created.headers.get_list("set-cookie")
    assert set_cookie.endswith("; Max-Age=1209600; Path=/; HttpOnly; SameSite=lax")
    assert "SameSiteEnum" not in set_cookie
    assert created.headers["cache-control"] == "no-store"
    assert len(token_in(created)) == TOKEN_LENGTH

    whoami = await client.get("/whoami")
    assert (whoami.status_code, whoami.json()) == (200, {"username": "ann"})

    deleted = await client.post("/delete_session")
    assert (deleted.status_code, deleted.json()) == (200, "deleted session")
    (cleared,) = deleted.headers.get_list("set-cookie")
    assert cleared.startswith('cookie=""; Max-Age=0; ')
    assert "cookie" not in client.cookies
    missing = await client.get("/whoami")
    assert (missing.status_code, missing.json()) == (403, {"detail": "No session provided"})


async def test_replaying_delete_answers_200_and_clears_the_cookie_again(
    client: httpx.AsyncClient,
) -> None:
    token = token_in(await client.post("/create_session/ann"))
    for _ in range(3):  # fastapi-sessions: 500 (KeyError) from the second one on
        replay = await client.post("/delete_session", headers=cookie_header("cookie", token))
        assert (replay.status_code, replay.json()) == (200, "deleted session")
        assert replay.headers["set-cookie"].startswith('cookie=""; Max-Age=0; ')


async def test_a_deleted_session_gets_the_verifiers_exception(
    client: httpx.AsyncClient,
) -> None:
    token = token_in(await client.post("/create_session/ann"))
    await client.post("/delete_session")
    refused = await client.get("/whoami", headers=cookie_header("cookie", token))
    assert (refused.status_code, refused.json()) == (403, {"detail": "invalid session"})


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_the_verifier_saying_no_raises_auth_http_exception(
    page: dict[str, Any], asynchronous: bool
) -> None:
    """A verifier of the page's class that refuses someone: 403, its own exception. An
    ``async def verify_session`` (a check against a database, say) is awaited: found by
    an audit, fastapi-sessions calls ``bool()`` on its coroutine, which admitted all."""

    basic_verifier: type[Any] = page["BasicVerifier"]

    class NoMallory(basic_verifier):  # type: ignore[misc]  # the page's (untyped) class
        def verify_session(self, model: Any) -> bool:
            return bool(model.username != "mallory")

    class NoMalloryAsync(basic_verifier):  # type: ignore[misc]
        async def verify_session(self, model: Any) -> bool:
            await asyncio.sleep(0)
            return bool(model.username != "mallory")

    strict = (NoMalloryAsync if asynchronous else NoMallory)(
        identifier="general_verifier",
        auto_error=True,
        backend=page["backend"],
        auth_http_exception=HTTPException(status_code=403, detail="not you"),
    )
    app: FastAPI = page["app"]

    @app.get("/strict", dependencies=[Depends(page["cookie"])])
    async def strict_route(data: Any = Depends(strict)) -> Any:  # noqa: B008 - as the page writes it
        return data

    async with client_for(app) as client:
        await client.post("/create_session/mallory")
        refused = await client.get("/strict")
        assert (refused.status_code, refused.json()) == (403, {"detail": "not you"})
        assert (await client.get("/whoami")).json() == {"username": "mallory"}
        await client.post("/create_session/ann")
        assert (await client.get("/strict")).json() == {"username": "ann"}


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("x" * TOKEN_LENGTH, id="malformed"),
        pytest.param("", id="empty"),
        pytest.param("é" * 40, id="non-ascii"),
    ],
)
async def test_a_cookie_that_is_not_a_token_is_401(client: httpx.AsyncClient, cookie: str) -> None:
    raw = [(b"cookie", f"cookie={cookie}".encode())]
    reply = await client.get("/whoami", headers=raw)
    if cookie:
        assert (reply.status_code, reply.json()) == (401, {"detail": "Invalid session provided"})
    else:
        assert (reply.status_code, reply.json()) == (403, {"detail": "No session provided"})


async def test_altered_foreign_and_non_uuid_tokens_are_401(client: httpx.AsyncClient) -> None:
    token = token_in(await client.post("/create_session/ann"))
    altered = token[:-1] + ("0" if token[-1] != "0" else "1")
    own_keys = Keyring.from_secrets(SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the page's short secret, again
        page_keys = Keyring.from_secrets(PAGE_SECRET, purpose="cookie")  # the page's cookie
    foreign = sign_session_id(session_id_for(uuid4()), own_keys, now=utc_now())
    native = sign_session_id(new_session_id(), page_keys, now=utc_now())  # right key, no UUID
    for bad in (altered, foreign, native):
        reply = await client.get("/whoami", headers=cookie_header("cookie", bad))
        assert (reply.status_code, reply.json()) == (401, {"detail": "Invalid session provided"})
        deleted = await client.post("/delete_session", headers=cookie_header("cookie", bad))
        assert deleted.status_code == 401


async def test_the_cookie_is_a_security_scheme_in_openapi(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {"type": "apiKey", "in": "cookie", "name": "cookie"}
    }
    paths = schema["paths"]
    assert paths["/whoami"]["get"]["security"] == [{"SessionCookie": []}]
    assert paths["/delete_session"]["post"]["security"] == [{"SessionCookie": []}]
    assert "security" not in paths["/create_session/{name}"]["post"]


async def test_the_record_is_a_typed_sessions_record(page: dict[str, Any]) -> None:
    """Behind the page: a record with deadlines, under the UUID's ID, in a MemoryStore."""
    backend: StoreBackend[UUID, Any] = page["backend"]  # the page's own SessionData
    async with client_for(page["app"]) as client:
        token = token_in(await client.post("/create_session/ann"))
    checked = verify_session_token(token, page["cookie"].keys, now=utc_now())
    assert isinstance(checked, Ok)
    session_uuid = uuid_for(checked.value)
    assert session_uuid is not None
    assert session_uuid.version == 4
    assert isinstance(backend.store, MemoryStore)
    record = await backend.store.load(checked.value)
    assert record is not None
    assert record.data == page["SessionData"](username="ann")
    assert record.expires_at - record.created_at == Expiry().idle
    assert await backend.read(session_uuid) == page["SessionData"](username="ann")


# --- auto_error=False ------------------------------------------------------------------


class User(BaseModel):
    name: str


class Verifier(SessionVerifier[UUID, DataT]):
    """The seed page's verifier, for any data: it admits every session but a ``User``
    named "blocked"."""

    def __init__(
        self, backend: StoreBackend[UUID, DataT], *, auto_error: bool = True, name: str = "users"
    ) -> None:
        self._backend = backend
        self._auto_error = auto_error
        self._name = name

    @property
    def identifier(self) -> str:
        return self._name

    @property
    def backend(self) -> StoreBackend[UUID, DataT]:
        return self._backend

    @property
    def auto_error(self) -> bool:
        return self._auto_error

    @property
    def auth_http_exception(self) -> HTTPException:
        return HTTPException(status_code=403, detail="invalid session")

    def verify_session(self, model: DataT) -> bool:
        return not (isinstance(model, User) and model.name == "blocked")


def make_app(
    backend: StoreBackend[UUID, User], *, auto_error: bool, clock: FakeClock | None = None
) -> tuple[FastAPI, SessionCookie]:
    cookie = SessionCookie(
        cookie_name="sid",
        identifier="users",
        secret_key=SECRET,
        cookie_params=CookieParameters(secure=True, samesite=SameSiteEnum.strict),
        auto_error=auto_error,
        clock=utc_now if clock is None else clock,
    )
    verifier = Verifier(backend, auto_error=auto_error)
    app = FastAPI()

    @app.post("/login/{name}")
    async def login(name: str, response: Response) -> str:
        session = uuid4()
        await backend.create(session, User(name=name))
        cookie.attach_to_response(response, session)
        return str(session)

    @app.get("/me")
    async def me(
        session_id: UUID | FrontendError = Depends(cookie),  # noqa: B008
        user: User | None = Depends(verifier),  # noqa: B008
    ) -> dict[str, Any]:
        frontend = type(session_id).__name__ if isinstance(session_id, FrontendError) else "UUID"
        return {"user": None if user is None else user.name, "frontend": frontend}

    return app, cookie


async def test_auto_error_false_gives_frontend_error_and_none() -> None:
    backend: InMemoryBackend[UUID, User] = InMemoryBackend[UUID, User]()
    app, _ = make_app(backend, auto_error=False)
    async with client_for(app) as client:
        nobody = (await client.get("/me")).json()
        assert nobody == {"user": None, "frontend": "FrontendError"}
        forged = (await client.get("/me", headers=cookie_header("sid", "x" * TOKEN_LENGTH))).json()
        assert forged == {"user": None, "frontend": "FrontendError"}
        login = await client.post("/login/blocked")
        assert "SameSite=strict" in login.headers["set-cookie"]
        assert "Secure" in login.headers["set-cookie"]
        assert (await client.get("/me")).json() == {"user": None, "frontend": "UUID"}
        await client.post("/login/ada")
        assert (await client.get("/me")).json() == {"user": "ada", "frontend": "UUID"}


async def test_the_frontend_gives_back_the_uuid_the_app_made() -> None:
    backend = InMemoryBackend[UUID, User]()
    app, cookie = make_app(backend, auto_error=True)

    @app.get("/id")
    async def session_uuid(session_id: UUID = Depends(cookie)) -> str:  # noqa: B008
        return str(session_id)

    async with client_for(app) as client:
        made = (await client.post("/login/ada")).json()
        assert (await client.get("/id")).json() == made


# --- expiry ----------------------------------------------------------------------------


async def test_sessions_end_after_their_idle_time_and_each_use_slides_it(
    clock: FakeClock,
) -> None:
    expiry = Expiry(idle=timedelta(minutes=10), absolute=timedelta(hours=1))
    backend = InMemoryBackend[UUID, User](expiry=expiry, clock=clock)
    app, _ = make_app(backend, auto_error=True, clock=clock)
    async with client_for(app) as client:
        session = UUID((await client.post("/login/ada")).json())
        for _ in range(3):
            clock.advance(timedelta(minutes=9))
            assert (await client.get("/me")).status_code == 200  # slid each time
        clock.advance(timedelta(minutes=11))
        expired = await client.get("/me")
        assert (expired.status_code, expired.json()) == (403, {"detail": "invalid session"})
        assert await backend.read(session) is None
        await client.post("/login/ada")
        clock.advance(timedelta(hours=1, minutes=1))  # past the absolute limit: token too
        assert (await client.get("/me")).status_code == 403


async def test_a_token_older_than_the_cookie_max_age_is_401(clock: FakeClock) -> None:
    backend = InMemoryBackend[UUID, User](clock=clock)
    cookie = SessionCookie(
        cookie_name="sid",
        identifier="users",
        secret_key=SECRET,
        cookie_params=CookieParameters(max_age=60),
        auto_error=True,
        clock=clock,
    )
    app = FastAPI()

    @app.get("/id")
    async def session_uuid(session_id: UUID = Depends(cookie)) -> str:  # noqa: B008
        return str(session_id)

    session = uuid4()
    token = sign_session_id(session_id_for(session), cookie.keys, now=clock())
    await backend.create(session, User(name="ada"))
    async with client_for(app) as client:
        assert (await client.get("/id", headers=cookie_header("sid", token))).json() == str(session)
        clock.advance(timedelta(seconds=61))
        assert (await client.get("/id", headers=cookie_header("sid", token))).status_code == 401


# --- the backends ----------------------------------------------------------------------


async def test_backend_create_read_update_delete() -> None:
    backend = InMemoryBackend[UUID, User]()
    session = uuid4()
    assert await backend.read(session) is None
    with pytest.raises(BackendError, match="does not exist"):
        await backend.update(session, User(name="ada"))
    await backend.create(session, User(name="ada"))
    with pytest.raises(BackendError, match="overwrite"):
        await backend.create(session, User(name="eve"))
    read = await backend.read(session)
    assert read == User(name="ada")
    assert read is not None
    read.name = "changed in place"  # a copy: the stored session does not change
    assert await backend.read(session) == User(name="ada")
    await backend.update(session, User(name="grace"))
    assert await backend.read(session) == User(name="grace")
    await backend.delete(session)
    await backend.delete(session)  # already gone: not an error
    assert await backend.read(session) is None


async def test_the_data_type_comes_from_the_subscript_a_subclass_or_data_type() -> None:
    class UserBackend(InMemoryBackend[UUID, User]):
        pass

    for backend in (
        InMemoryBackend[UUID, User](),
        UserBackend(),
        InMemoryBackend[Any, Any](data_type=User),
    ):
        assert backend.data_type is User
        session = uuid4()
        await backend.create(session, User(name="ada"))
        assert await backend.read(session) == User(name="ada")
    from typed_sessions.compat.fastapi_sessions import RedisBackend

    with pytest.raises(TypeError, match=r"RedisBackend\[UUID, SessionData\]"):
        RedisBackend("redis://127.0.0.1:1").data_type  # noqa: B018 - the property raises
    with pytest.raises(TypeError, match="needs a store"):
        await StoreBackend[UUID, User]().read(uuid4())


async def test_an_annotated_backend_takes_the_type_of_its_first_data() -> None:
    """Found by an audit: ``backend: InMemoryBackend[UUID, User] = InMemoryBackend()``
    passes ``mypy --strict`` and runs on fastapi-sessions, but Python drops the
    annotation's subscript: the first ``create`` raised ``TypeError`` (a 500). Nothing
    can be stored before that create: reads find nothing, and it names the type."""
    bare: InMemoryBackend[UUID, User] = InMemoryBackend()
    session = uuid4()
    assert await bare.read(session) is None
    with pytest.raises(BackendError, match="does not exist"):
        await bare.update(session, User(name="ada"))
    await bare.delete(session)
    await bare.create(session, User(name="ada"))
    assert bare.data_type is User
    assert await bare.read(session) == User(name="ada")


async def test_a_read_is_a_use_that_slides_the_idle_deadline(clock: FakeClock) -> None:
    """Found by an audit: ``backend.read`` in a route (without the verifier) never slid
    the idle deadline, so a user active every 20 minutes was signed out at 30."""
    backend = InMemoryBackend[UUID, User](clock=clock)  # idle: 30 minutes
    session = uuid4()
    await backend.create(session, User(name="ada"))
    for _ in range(4):
        clock.advance(timedelta(minutes=20))
        assert await backend.read(session) == User(name="ada")
    clock.advance(timedelta(minutes=31))
    assert await backend.read(session) is None


async def test_the_backends_take_max_data_bytes() -> None:
    from typed_sessions.compat.fastapi_sessions import RedisBackend

    big = User(name="x" * 100_000)
    with pytest.raises(SessionTooLargeError):
        await InMemoryBackend[UUID, User]().create(uuid4(), big)  # 64 KiB by default
    roomy = InMemoryBackend[UUID, User](max_data_bytes=200_000)
    session = uuid4()
    await roomy.create(session, big)
    assert await roomy.read(session) == big
    assert RedisBackend[UUID, User]("redis://127.0.0.1:1", max_data_bytes=1).max_data_bytes == 1


async def test_session_ids_are_uuids_only() -> None:
    backend = InMemoryBackend[UUID, User]()
    with pytest.raises(TypeError, match="UUIDs"):
        await backend.create("not-a-uuid", User(name="ada"))  # type: ignore[arg-type]  # the point


class DownStore:
    """A store whose server is down."""

    async def load(self, session_id: SessionId) -> Session[User] | None:
        raise StoreUnavailableError("down")

    async def save(self, session: Session[User]) -> Result[Session[User], Conflict]:
        raise StoreUnavailableError("down")

    async def delete(self, session_id: SessionId) -> None:
        raise StoreUnavailableError("down")


async def test_a_store_failure_is_503_everywhere() -> None:
    backend = StoreBackend[UUID, User](DownStore())
    app, cookie = make_app(backend, auto_error=True)
    token = sign_session_id(session_id_for(uuid4()), cookie.keys, now=utc_now())
    async with client_for(app) as client:
        for reply in (
            await client.post("/login/ada"),
            await client.get("/me", headers=cookie_header("sid", token)),
        ):
            assert (reply.status_code, reply.json()) == (503, {"detail": "Service unavailable"})
    with pytest.raises(HTTPException) as raised:
        await backend.read(uuid4())
    assert raised.value.status_code == 503
    with pytest.raises(HTTPException) as raised:
        await backend.delete(uuid4())
    assert raised.value.status_code == 503


async def test_a_verifier_without_its_frontend_is_a_clear_error() -> None:
    backend = InMemoryBackend[UUID, User]()
    app = FastAPI()

    @app.get("/me")
    async def me(user: User | None = Depends(Verifier(backend))) -> Any:  # noqa: B008
        return user

    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match=r"add Depends\(cookie\) to the route"):
            await client.get("/me")


def test_cookie_parameters_browsers_would_reject_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="SameSite=None without Secure"):
        SessionCookie(
            cookie_name="sid",
            identifier="users",
            secret_key=SECRET,
            cookie_params=CookieParameters(samesite="none"),
        )
    with pytest.raises(ValueError, match="invalid cookie name"):
        SessionCookie(
            cookie_name="a b",
            identifier="users",
            secret_key=SECRET,
            cookie_params=CookieParameters(),
        )


# --- the UUID mapping ------------------------------------------------------------------


@given(st.uuids())
def test_the_uuid_mapping_round_trips_and_signs(value: UUID) -> None:
    session_id = session_id_for(value)
    assert len(session_id) == len(new_session_id()) == 43
    assert uuid_for(session_id) == value
    token = sign_session_id(session_id, Keyring.from_secrets(SECRET), now=utc_now())
    assert len(token) == TOKEN_LENGTH


@given(st.text())
def test_uuid_for_any_other_text_is_none_or_its_uuid(text: str) -> None:
    found = uuid_for(text)
    assert found is None or session_id_for(found) == text


def test_native_ids_are_not_taken_for_uuids() -> None:
    assert all(uuid_for(new_session_id()) is None for _ in range(1000))


# --- RedisBackend ----------------------------------------------------------------------


async def test_redis_backend_from_a_url_or_a_client() -> None:
    from redis.asyncio import Redis

    from typed_sessions import RedisStore
    from typed_sessions.compat.fastapi_sessions import RedisBackend

    from .redis_server import delete_prefix, require_redis, unique_prefix

    url, prefix = require_redis(), unique_prefix()
    client = Redis.from_url(url)
    from_url = RedisBackend[UUID, User](url, prefix=prefix)
    from_client = RedisBackend[UUID, User](client, prefix=prefix)
    try:
        session = uuid4()
        await from_url.create(session, User(name="ada"))
        assert await from_client.read(session) == User(name="ada")
        await from_client.update(session, User(name="grace"))
        assert await from_url.read(session) == User(name="grace")
        store = from_url.store
        assert isinstance(store, RedisStore)
        assert await client.exists(store.key_for(session_id_for(session))) == 1
        await from_url.delete(session)
        assert await from_client.read(session) is None
    finally:
        await from_url.aclose()
        await from_client.aclose()  # does not close the client it was given
        await delete_prefix(client, prefix)
        await client.aclose()


def test_a_redis_backend_imports_its_store_when_made_not_in_a_request() -> None:
    """Importing redis-py and the store takes about 100 ms: at construction, not inside
    the first request, on the event loop."""
    code = (
        "import sys\n"
        "from typed_sessions.compat.fastapi_sessions import RedisBackend\n"
        "assert 'typed_sessions.stores.redis' not in sys.modules\n"
        "RedisBackend('redis://127.0.0.1:1')\n"
        "assert 'typed_sessions.stores.redis' in sys.modules\n"
        "assert 'redis.asyncio' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    without_redis = (  # as without the redis extra: its install line, when made
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from typed_sessions.compat.fastapi_sessions import RedisBackend\n"
        "try:\n"
        "    RedisBackend('redis://127.0.0.1:1')\n"
        "except ModuleNotFoundError as exc:\n"
        "    assert \"pip install 'typed-sessions[redis]'\" in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('made without redis-py')\n"
    )
    subprocess.run([sys.executable, "-c", without_redis], check=True)


# --- the migration guide's example -------------------------------------------------------


async def test_the_guides_example_runs_the_pages_flow() -> None:
    from examples.migration import compat_fastapi_sessions as example

    async with client_for(example.app) as client:
        assert (await client.get("/whoami")).status_code == 403
        assert (await client.post("/create_session/ann")).json() == "created session for ann"
        assert (await client.get("/whoami")).json() == {"username": "ann"}
        token = client.cookies["cookie"]
        assert (await client.post("/delete_session")).json() == "deleted session"
        replay = await client.post("/delete_session", headers=cookie_header("cookie", token))
        assert replay.status_code == 200
        gone = await client.get("/whoami", headers=cookie_header("cookie", token))
        assert (gone.status_code, gone.json()) == (403, {"detail": "invalid session"})


async def test_sessions_started_through_the_shim_carry_on_in_the_native_style() -> None:
    """The native dependency over the backend's store, with Keyring.from_secrets(secret_key,
    purpose=cookie_name) and the cookie's name, reads the shim's sessions: the next step
    keeps users signed in."""
    from typed_sessions import CookieSettings, make_cookie_dependency

    backend = InMemoryBackend[UUID, User]()
    app, _ = make_app(backend, auto_error=True)
    current = make_cookie_dependency(
        backend.store,
        lambda session: True,
        keys=Keyring.from_secrets(SECRET, purpose="sid"),
        cookie=CookieSettings(name="sid"),
    )

    @app.get("/native")
    async def native(session: Session[User] = Depends(current)) -> str:  # noqa: B008
        return session.data.name

    async with client_for(app) as client:
        await client.post("/login/ada")
        assert (await client.get("/native")).json() == "ada"


# --- races and hostile cookies -----------------------------------------------------------


async def test_a_logout_racing_requests_of_the_same_session_is_never_undone(
    clock: FakeClock,
) -> None:
    """Each use slides the deadline (a save); a delete in between is never overwritten."""
    store: Yielding[User] = Yielding(MemoryStore(User, clock=clock))
    backend = StoreBackend[UUID, User](store, clock=clock)
    app, _ = make_app(backend, auto_error=True, clock=clock)

    async def delete_after(session: UUID, steps: int) -> None:
        for _ in range(steps):
            await asyncio.sleep(0)
        await backend.delete(session)

    statuses: list[int] = []
    async with client_for(app) as client:
        for steps in range(0, 60, 4):  # the logout lands earlier or later among the uses
            session = UUID((await client.post("/login/ada")).json())
            clock.advance(timedelta(minutes=5))  # every use now moves the deadline: a save
            uses = asyncio.gather(*(client.get("/me") for _ in range(5)))
            replies, _ = await asyncio.gather(uses, delete_after(session, steps))
            statuses += [r.status_code for r in replies]
            assert await backend.read(session) is None
            assert (await client.get("/me")).status_code == 403
    assert set(statuses) == {200, 403}  # some uses came before the logout, some after
    assert store.saves > 15  # and the uses did save


async def test_concurrent_updates_each_land_whole() -> None:
    store: Yielding[User] = Yielding(MemoryStore(User))
    backend = StoreBackend[UUID, User](store)
    session = uuid4()
    await backend.create(session, User(name="start"))
    names = [f"user{i}" for i in range(20)]
    await asyncio.gather(*(backend.update(session, User(name=n)) for n in names))
    final = await backend.read(session)
    assert final is not None
    assert final.name in names
    assert store.conflicts > 0  # they did race, and every one was retried to success


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_the_frontend_refuses_any_cookie_without_raising(value: bytes) -> None:
    cookie = SessionCookie(
        cookie_name="sid",
        identifier="users",
        secret_key=SECRET,
        cookie_params=CookieParameters(),
        auto_error=False,
    )
    headers = [(b"cookie", b"sid=" + value.replace(b"\r", b"").replace(b"\n", b""))]
    request = Request({"type": "http", "headers": headers, "state": {}})
    call = cookie(request)
    with pytest.raises(StopIteration) as done:  # no I/O: it finishes without suspending
        call.send(None)
    assert isinstance(done.value.value, FrontendError)


async def test_a_token_of_one_cookie_is_refused_under_another() -> None:
    """fastapi-sessions salted its signatures with the cookie name: so does the shim (the
    keyring's purpose), so a user cookie's token does not open an admin cookie's routes."""
    user, admin = (
        SessionCookie(
            cookie_name=name,
            identifier=name,
            secret_key=SECRET,
            cookie_params=CookieParameters(),
            auto_error=True,
        )
        for name in ("user", "admin")
    )
    app = FastAPI()

    @app.post("/signup")
    async def signup(response: Response) -> None:
        user.attach_to_response(response, uuid4())

    @app.get("/as-user")
    async def as_user(session_id: UUID = Depends(user)) -> str:  # noqa: B008
        return str(session_id)

    @app.get("/as-admin")
    async def as_admin(session_id: UUID = Depends(admin)) -> str:  # noqa: B008
        return str(session_id)

    async with client_for(app) as client:
        set_cookie = (await client.post("/signup")).headers["set-cookie"]
        token = set_cookie.partition("=")[2].split(";", 1)[0]
        assert (await client.get("/as-user", headers=cookie_header("user", token))).is_success
        refused = await client.get("/as-admin", headers=cookie_header("admin", token))
        assert (refused.status_code, refused.json()) == (
            401,
            {"detail": "Invalid session provided"},
        )


async def test_an_update_is_a_use_of_the_session(clock: FakeClock) -> None:
    """Updated every 9 minutes with a 10-minute idle limit, the session never ends."""
    expiry = Expiry(idle=timedelta(minutes=10), absolute=timedelta(hours=1))
    backend = InMemoryBackend[UUID, User](clock=clock, expiry=expiry)
    session = uuid4()
    await backend.create(session, User(name="ann"))
    for name in ("bob", "cy", "dee"):
        clock.advance(timedelta(minutes=9))
        await backend.update(session, User(name=name))
    assert await backend.read(session) == User(name="dee")
    clock.advance(timedelta(minutes=11))
    assert await backend.read(session) is None


class Cart(BaseModel):
    items: list[str]


async def test_concurrent_updates_never_lose_an_acknowledged_item() -> None:
    """Ten requests of one session at once, each reading the cart, adding an item and
    calling ``backend.update``: every 200 has its item stored; the others get 409
    (their update rested on a cart another request had changed) and store nothing. A
    request alone is never refused, also when its verifier slid the deadline (a save)."""
    clock = FakeClock(utc_now())
    backend = StoreBackend[UUID, Cart](Yielding(MemoryStore(Cart, clock=clock)), clock=clock)
    cookie = SessionCookie(
        cookie_name="cart", identifier="carts", secret_key=SECRET,
        cookie_params=CookieParameters(), auto_error=True, clock=clock,
    )  # fmt: skip
    verifier = Verifier(backend, name="carts")
    app = FastAPI()

    @app.post("/login")
    async def login(response: Response) -> None:
        session = uuid4()
        await backend.create(session, Cart(items=[]))
        cookie.attach_to_response(response, session)

    @app.post("/add/{item}")
    async def add(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        cart.items.append(item)
        await backend.update(session_id, cart)

    @app.get("/cart", dependencies=[Depends(cookie)])
    async def show(cart: Cart = Depends(verifier)) -> Cart:  # noqa: B008
        return cart

    async with client_for(app) as client:
        await client.post("/login")
        replies = await asyncio.gather(*(client.post(f"/add/{n}") for n in range(10)))
        codes = [reply.status_code for reply in replies]
        stored = (await client.get("/cart")).json()["items"]
        clock.advance(timedelta(minutes=10))  # the verifier now slides the deadline
        added = await client.post("/add/last")
        final = (await client.get("/cart")).json()["items"]
    assert set(codes) <= {200, 409}
    assert 409 in codes
    assert sorted(stored) == sorted(str(n) for n, code in enumerate(codes) if code == 200)
    assert added.status_code == 200
    assert final == [*stored, "last"]
