"""The examples the documentation includes: each one runs, and does what the page says.

Also checks the docs themselves: every Python block of a page is a ``--8<--`` include of
a file in ``examples/`` (so no untested code reaches the docs), every included file
exists, and every ``examples/docs_*.py`` and ``examples/migration/*.py`` is used.

The migration guides' "before" apps use the peer libraries, which the test environment
does not install: they are compiled here, and run only where the peer is importable.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from starlette.types import Message, Scope

from typed_sessions import (
    TOKEN_LENGTH,
    Conflict,
    Err,
    Expiry,
    Keyring,
    MemoryStore,
    Ok,
    Session,
    SessionDep,
    SessionId,
    SessionStore,
    new_session,
    secret_from_env,
    utc_now,
    verify_session_token,
)
from typed_sessions.adapters.responses import CONFLICT
from typed_sessions.stores.redis import RedisStore

from .conftest import SECRET
from .racing import Yielding
from .redis_server import delete_prefix, require_cluster, require_redis, unique_prefix

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
BASE = "https://testserver"
KEYS = Keyring.from_secrets(SECRET)
EXPIRY = Expiry(idle=timedelta(minutes=5))


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def session_id_in(token: str, keys: Keyring = KEYS) -> SessionId:
    result = verify_session_token(token, keys, now=utc_now())
    assert isinstance(result, Ok)
    return result.value


# --- the docs include only tested example files ----------------------------------------

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_griffe" not in p.parts)


def _included() -> dict[str, list[str]]:
    """Each example file a page includes, and the pages that include it."""
    found: dict[str, list[str]] = {}
    for page in _pages():
        for line in page.read_text().splitlines():
            snippet = _SNIPPET.match(line.strip())
            if snippet is not None:
                found.setdefault(snippet[1], []).append(page.name)
    return found


def test_every_python_block_in_the_docs_is_an_included_example() -> None:
    blocks = 0
    for page in _pages():
        for language, body in _FENCE.findall(page.read_text()):
            if language in ("python", "py", "pycon"):
                blocks += 1
                lines = [line.strip() for line in body.strip().splitlines()]
                assert lines, f"{page.name}: an empty Python block"
                for line in lines:
                    assert _SNIPPET.match(line), f"{page.name}: inline Python: {line!r}"
    assert blocks >= 10


def test_every_included_file_exists_and_is_tested() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for name in _included():
        path = EXAMPLES / name
        assert path.is_file(), f"docs include a missing file: examples/{name}"
        package, _, stem = ("examples." + name.removesuffix(".py").replace("/", ".")).rpartition(
            "."
        )
        imported = re.search(rf"from {re.escape(package)} import [^\n]*\b{stem}\b", tests)
        named = f"{package}.{stem}" in tests
        assert named or imported, f"examples/{name} is in the docs, but no test imports it"


def test_every_docs_example_is_included_somewhere() -> None:
    included = set(_included())
    files = [*EXAMPLES.glob("docs_*.py"), *(EXAMPLES / "migration").glob("[!_]*.py")]
    for path in files:
        name = path.relative_to(EXAMPLES).as_posix()
        assert name in included, f"examples/{name} is not included by any page"


# --- getting started: the header dependency --------------------------------------------


async def test_header_dependency_example() -> None:
    from examples.docs_header_dependency import app

    async with client_for(app) as client:
        assert (await client.get("/whoami")).status_code == 401
        login = await client.post("/login/alice")
        assert login.status_code == 200
        assert "set-cookie" not in login.headers
        token = login.json()["token"]
        whoami = await client.get("/whoami", headers={"X-Session": token})
        assert whoami.json() == {"name": "alice"}
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        assert (await client.get("/whoami", headers={"X-Session": forged})).status_code == 401
        schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "SessionHeader": {"type": "apiKey", "in": "header", "name": "X-Session"}
    }


# --- stores ----------------------------------------------------------------------------


async def test_memory_store_example() -> None:
    from examples.docs_memory_store import SessionData, store

    assert store.max_sessions == 10_000
    saved = await store.save(new_session(SessionData(username="ada"), EXPIRY, now=utc_now()))
    assert isinstance(saved, Ok)
    loaded = await store.load(saved.value.id)
    assert loaded is not None
    assert loaded.data == SessionData(username="ada")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    url = require_redis()
    prefix = unique_prefix()
    yield url, prefix
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await delete_prefix(client, prefix)
    finally:
        await client.aclose()


async def test_redis_store_example(redis_prefix: tuple[str, str]) -> None:
    from examples.docs_redis_store import create_app

    url, prefix = redis_prefix
    app = create_app(url, SECRET, prefix=prefix)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        counts = [(await client.post("/visit")).json()["visits"] for _ in range(3)]
        assert counts == [1, 2, 3]
        session_id = session_id_in(client.cookies["__Host-session"])
    # The record is in Redis under the prefix and the ID's SHA-256, never the raw ID.
    store: RedisStore[dict[str, Any]] = RedisStore.from_url(url, dict[str, Any], prefix=prefix)
    async with store:
        record = await store.load(session_id)
        assert record is not None
        assert record.data == {"visits": 3}
        key = store.key_for(session_id)
        assert key.startswith(prefix)
        assert session_id not in key
        assert await store.client.exists(key) == 1


async def test_redis_store_example_answers_503_when_redis_is_down() -> None:
    from examples.docs_redis_store import create_app

    app = create_app("redis://127.0.0.1:1/0", SECRET)  # nothing listens on port 1
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.get("/healthz")).status_code == 503
        client.cookies.set("__Host-session", _token_for_unknown_session())
        assert (await client.post("/visit")).status_code == 503


async def test_redis_cluster_store_example() -> None:
    from examples.docs_redis_store import cluster_store

    store = cluster_store(require_cluster())
    try:
        saved = await store.save(new_session({"n": 1}, EXPIRY, now=utc_now()))
        assert isinstance(saved, Ok)
        loaded = await store.load(saved.value.id)
        assert loaded is not None
        assert loaded.data == {"n": 1}
        await store.delete(saved.value.id)
    finally:
        await store.client.aclose()


# --- middleware --------------------------------------------------------------------------


async def test_middleware_login_example() -> None:
    from examples.docs_middleware_login import create_app

    async with client_for(create_app(SECRET)) as client:
        await client.post("/cart/apple")
        anonymous = client.cookies["__Host-session"]
        login = await client.post("/login/ada")
        assert login.json() == {"cart": ["apple"], "user": "ada"}
        signed_in = client.cookies["__Host-session"]
        assert session_id_in(signed_in) != session_id_in(anonymous)  # regenerated
        assert (await client.get("/me")).json() == {"cart": ["apple"], "user": "ada"}

        logout = await client.post("/logout")
        assert logout.json() == {"flash": "You are signed out."}
        after = client.cookies["__Host-session"]
        assert session_id_in(after) not in (session_id_in(signed_in), session_id_in(anonymous))
        assert (await client.get("/me")).json() == {"flash": "You are signed out."}

    for old in (anonymous, signed_in):  # both old cookies are worth nothing now
        async with client_for(create_app(SECRET)) as replay:
            replay.cookies.set("__Host-session", old)
            assert (await replay.get("/me")).json() == {}


class CountingStore:
    """A memory store that counts loads."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.loads = 0

    async def load(self, session_id: SessionId) -> Session[dict[str, Any]] | None:
        self.loads += 1
        return await self.inner.load(session_id)

    async def save(self, session: Session[dict[str, Any]]) -> Any:
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        await self.inner.delete(session_id)


async def test_middleware_autoload_example() -> None:
    from examples.docs_middleware_autoload import create_app

    store = CountingStore()
    async with client_for(create_app(store, KEYS)) as client:
        assert (await client.post("/visit")).json() == {"visits": 1}
        assert "__Host-session" in client.cookies
        for _ in range(5):
            assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert store.loads == 0  # a cookie was sent every time, and never looked up
        assert (await client.post("/visit")).json() == {"visits": 2}
        assert (await client.get("/visits")).json() == {"visits": 2}
        assert store.loads == 2


async def websocket_call(app: FastAPI, path: str, cookie: str | None = None) -> list[Message]:
    """Open a WebSocket on ``app`` over raw ASGI; return the messages the app sent.

    (Starlette's TestClient warns on import without httpx2.)
    """
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"__Host-session={cookie}".encode()))
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("testclient", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
    }
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_middleware_websocket_example() -> None:
    from examples.docs_middleware_websocket import create_app

    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app = create_app(store, KEYS)
    async with client_for(app) as client:
        await client.post("/login/ada")
        token = client.cookies["__Host-session"]
    for _ in range(2):
        sent = await websocket_call(app, "/ws", cookie=token)
        assert [m["type"] for m in sent] == [
            "websocket.accept",
            "websocket.send",
            "websocket.close",
        ]
        assert sent[1]["text"] == '{"hello":"ada"}'
    record = await store.load(session_id_in(token))
    assert record is not None
    assert record.data == {"user": "ada", "messages": 2}
    refused = await websocket_call(app, "/ws")  # no session
    assert [m["type"] for m in refused] == ["websocket.accept", "websocket.close"]
    assert refused[1]["code"] == 1008


async def test_middleware_options_example(caplog: pytest.LogCaptureFixture) -> None:
    from examples.docs_middleware_options import create_app, create_app_with_cookie_settings

    for build, expected in [
        (create_app, "; Path=/; HttpOnly; Secure; SameSite=lax"),
        (create_app_with_cookie_settings, "; Path=/; HttpOnly; Secure; SameSite=strict"),
    ]:
        app = build(SECRET)

        @app.post("/set")
        async def set_value(session: SessionDep) -> None:
            session.get_session()["k"] = "v"

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sessions"):
            async with client_for(app) as client:
                response = await client.post("/set")
        (cookie,) = response.headers.get_list("set-cookie")
        name = "__Host-session" if build is create_app_with_cookie_settings else "session"
        assert cookie.startswith(name + "=")
        assert cookie.endswith(expected)
        assert "Max-Age" not in cookie
        logged = [r.getMessage() for r in caplog.records if r.name == "sessions"]
        assert logged == (["typed-sessions: session saved under a new ID" + _sid(cookie)]
                          if build is create_app else [])  # fmt: skip


def _sid(set_cookie: str) -> str:
    from typed_sessions.core.ids import id_digest

    token = set_cookie.split(";", 1)[0].split("=", 1)[1]
    return f" [sid#{id_digest(session_id_in(token))}]"


# --- no lost updates ---------------------------------------------------------------------


async def test_compare_and_set_example() -> None:
    from examples.docs_compare_and_set import main

    assert await main() == [
        "created: version 1",
        "A saved: version 2",
        "B refused: expected 1, found 2",
        "stored: {'theme': 'dark'}, version 2",
    ]


async def test_update_session_example_loses_no_item() -> None:
    from examples.docs_update_session import Cart, create_app

    store = Yielding[Cart](MemoryStore(Cart))
    async with client_for(create_app(store, KEYS)) as client:
        assert (await client.get("/cart")).status_code == 401
        assert (await client.post("/cart")).json() == {"items": []}
        items = [f"item{i}" for i in range(30)]
        responses = await asyncio.gather(*(client.post(f"/cart/items/{i}") for i in items))
        assert {r.status_code for r in responses} == {200}
        cart = (await client.get("/cart")).json()
    assert sorted(cart["items"]) == sorted(items)
    assert store.conflicts > 0  # the requests did collide, and were retried


async def test_update_session_example_module_app() -> None:
    from examples.docs_update_session import app

    async with client_for(app) as client:
        await client.post("/cart")
        assert (await client.post("/cart/items/tea")).json() == {"items": ["tea"]}
        client.cookies.clear()
        assert (await client.post("/cart/items/tea")).status_code == 401


@asynccontextmanager
async def merge_client(
    store: SessionStore[dict[str, Any]],
) -> AsyncGenerator[httpx.AsyncClient, None]:
    from examples.docs_middleware_merge import create_app

    async with client_for(create_app(store, KEYS)) as client:
        assert (await client.post("/prefs/theme/dark")).status_code == 200  # the session
        yield client


async def test_merge_example_keeps_every_key() -> None:
    memory: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    store = Yielding(memory)
    async with merge_client(store) as client:
        responses = await asyncio.gather(*(client.post(f"/prefs/k{i}/v{i}") for i in range(30)))
        assert {r.status_code for r in responses} == {200}
        record = await memory.load(session_id_in(client.cookies["__Host-session"]))
    assert record is not None
    assert record.data == {"theme": "dark", **{f"k{i}": f"v{i}" for i in range(30)}}
    # They all loaded one version; each merged into the record the one before it saved
    # (handed over in this worker), so hardly any save was refused.
    assert store.saves - store.conflicts == 1 + 30


async def test_merge_example_same_key_refuses_what_it_cannot_merge() -> None:
    memory: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    async with merge_client(Yielding(memory)) as client:
        responses = await asyncio.gather(*(client.post("/visits") for _ in range(30)))
        record = await memory.load(session_id_in(client.cookies["__Host-session"]))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}
    assert 409 in statuses  # they did collide: a request that read a stale count is refused
    assert record is not None
    # Every acknowledged increment is in the store, and no refused one.
    assert record.data == {"theme": "dark", "visits": statuses.count(200)}
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json() == {"detail": CONFLICT}


async def test_merge_example_exact_counter_counts_every_request() -> None:
    memory: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    store = Yielding(memory)
    async with merge_client(store) as client:
        responses = await asyncio.gather(*(client.post("/visits/exact") for _ in range(30)))
        assert sorted(r.json()["visits"] for r in responses) == list(range(1, 31))
        record = await memory.load(session_id_in(client.cookies["__Host-session"]))
    assert record is not None
    assert record.data == {"theme": "dark", "visits": 30}
    assert store.conflicts > 0


async def test_merge_example_exact_counter_never_resets_when_it_gives_up() -> None:
    """update_session giving up (TooManyConflicts) is a 503, not a fresh count of 1."""
    from examples.docs_middleware_merge import create_app

    memory: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    async with client_for(create_app(memory, KEYS)) as client:
        for _ in range(5):
            await client.post("/visits/exact")
        session_id = session_id_in(client.cookies["__Host-session"])

        real_save = memory.save
        lost = 0

        async def loses_20_races(session: Session[dict[str, Any]]) -> Any:
            nonlocal lost
            if lost == 20:  # update_session has given up; later saves go through
                return await real_save(session)
            lost += 1
            return Err(Conflict(expected=session.version, found=session.version + 1))

        memory.save = loses_20_races  # type: ignore[method-assign]
        response = await client.post("/visits/exact")
        assert response.status_code == 503
        record = await memory.load(session_id)
    assert record is not None
    assert record.data["visits"] == 5


async def test_merge_example_exact_counter_starts_a_session() -> None:
    from examples.docs_middleware_merge import create_app

    async with client_for(create_app(MemoryStore(dict[str, Any]), KEYS)) as client:
        assert (await client.post("/visits/exact")).json() == {"visits": 1}
        assert (await client.post("/visits/exact")).json() == {"visits": 2}


# --- migration guides: after ---------------------------------------------------------------


async def test_after_starlette_example() -> None:
    from examples.migration.after_starlette import app

    def session_id_of(token: str) -> SessionId:
        return session_id_in(token, Keyring.from_secrets(secret_from_env("SESSION_SECRET")))

    async with client_for(app) as client:
        assert (await client.get("/session_test")).json() == {"user": None, "test_counter": 1}
        anonymous = client.cookies["__Host-session"]
        assert (await client.post("/login/ada")).json() == {"user": "ada"}
        assert session_id_of(client.cookies["__Host-session"]) != session_id_of(anonymous)
        assert (await client.get("/session_test")).json() == {"user": "ada", "test_counter": 2}
        signed_in = client.cookies["__Host-session"]
        # Only a signed ID in the cookie: a whole token, and nothing else. (Searching it for
        # "ada" would fail now and then: a random hex tag can spell it.)
        assert len(signed_in) == TOKEN_LENGTH
        session_id_of(signed_in)
        await client.post("/logout")
        assert "__Host-session" not in client.cookies
        assert (await client.get("/session_test")).json() == {"user": None, "test_counter": 1}
    async with client_for(app) as replay:  # unlike Starlette's, a cleared session stays gone
        replay.cookies.set("__Host-session", signed_in)
        assert (await replay.get("/session_test")).json() == {"user": None, "test_counter": 1}


async def test_after_fastapi_sessions_errors_example() -> None:
    from fastapi import Depends

    from examples.migration import after_fastapi_sessions_errors as example

    app = FastAPI()

    @app.get("/whoami", dependencies=[Depends(example.current_session)])
    async def whoami() -> str:
        return "ok"

    async with client_for(app) as client:
        missing = await client.get("/whoami")
        assert (missing.status_code, missing.json()) == (403, {"detail": "No session provided"})
        client.cookies.set("cookie", "forged")
        forged = await client.get("/whoami")
        assert (forged.status_code, forged.json()) == (401, {"detail": "Invalid session provided"})
        client.cookies.set("cookie", _token_for_unknown_session(example.keys))
        unknown = await client.get("/whoami")
        assert (unknown.status_code, unknown.json()) == (403, {"detail": "invalid session"})


def _token_for_unknown_session(keys: Keyring = KEYS) -> str:
    from typed_sessions import new_session_id, sign_session_id

    return sign_session_id(new_session_id(), keys, now=utc_now())


# --- migration guides: before (the peers' code) ------------------------------------------

BEFORE = sorted((EXAMPLES / "migration").glob("before_*.py"))


@pytest.mark.parametrize("path", BEFORE, ids=[p.stem for p in BEFORE])
def test_before_examples_compile(path: Path) -> None:
    compile(path.read_text(), str(path), "exec")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fastapi-sessions uses .copy()
async def test_before_fastapi_sessions_runs_as_the_guide_says() -> None:
    pytest.importorskip("fastapi_sessions")
    before = importlib.import_module("examples.migration.before_fastapi_sessions")
    # Plain http: its cookie is not Secure by default.
    transport = httpx.ASGITransport(app=before.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        missing = await client.get("/whoami")
        assert (missing.status_code, missing.json()) == (403, {"detail": "No session provided"})
        created = await client.post("/create_session/alice")
        cookie = created.headers["set-cookie"]
        assert "Secure" not in cookie
        assert "SameSite=SameSiteEnum.lax" in cookie  # not a SameSite value browsers know
        assert (await client.get("/whoami")).json() == {"username": "alice"}
        old_cookie = client.cookies["cookie"]
        await client.post("/delete_session")
        assert (await client.get("/whoami")).status_code == 403
    # Replaying the cookie to /delete_session: InMemoryBackend.delete raises KeyError.
    transport = httpx.ASGITransport(app=before.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        replayed = await client.post("/delete_session", headers={"Cookie": f"cookie={old_cookie}"})
        assert replayed.status_code == 500


async def test_before_authx_extra_runs_as_the_guide_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("authx_extra")
    before = importlib.import_module("examples.migration.before_authx_extra")
    before.app.add_api_route("/sets_cookies", _sets_cookies)
    before.app.add_api_route("/raw_session", _raw_authx_session)

    transport = httpx.ASGITransport(app=before.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        counts = [(await client.get("/session_test")).json()["test_counter"] for _ in range(3)]
        assert counts == [1, 2, 3]
        # The middleware writes its own key into the user's session.
        assert (await client.get("/raw_session")).json()["__cause__"] == "success"
    assert "sessionID:" in capsys.readouterr().out  # the page's handler prints the ID
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # A request that starts a session loses the cookies its route set.
        cookies = (await client.get("/sets_cookies")).headers.get_list("set-cookie")
        assert [c.split("=", 1)[0] for c in cookies] == ["sid"]


async def test_before_starlette_runs_as_the_guide_says() -> None:
    pytest.importorskip("itsdangerous")
    before = importlib.import_module("examples.migration.before_starlette")
    async with client_for(before.app) as client:
        await client.post("/login/ada")
        assert (await client.get("/session_test")).json() == {"user": "ada", "test_counter": 1}
        signed_in = client.cookies["session"]
        assert "ada" in _starlette_payload(signed_in)  # the data itself rides in the cookie
        await client.post("/logout")
        assert (await client.get("/session_test")).json() == {"user": None, "test_counter": 1}
    async with client_for(before.app) as replay:  # clear() cannot revoke the old cookie
        replay.cookies.set("session", signed_in)
        assert (await replay.get("/session_test")).json() == {"user": "ada", "test_counter": 2}


async def _sets_cookies(response: Response) -> str:
    response.set_cookie("theme", "dark")
    response.set_cookie("lang", "en")
    return "ok"


async def _raw_authx_session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = await request.state.session.get_session()
    return dict(session)


def _starlette_payload(cookie: str) -> str:
    import base64

    return base64.b64decode(cookie.split(".", 1)[0]).decode()


async def test_take_turns_example_counts_every_request() -> None:
    from examples.docs_take_turns import app

    async with client_for(app) as client:
        assert (await client.post("/visits")).json() == {"visits": 1}
        answers = await asyncio.gather(*(client.post("/visits") for _ in range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        assert sorted(a.json()["visits"] for a in answers) == list(range(2, 22))
