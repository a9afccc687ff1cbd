"""authx-extra's SessionMiddleware page, imports changed, on typed-sessions (issue 16).

The usage block is read from the seed page itself (``tests/compat_pages.py``); only its two
import lines change. Then each option of the page is checked to do what the page says,
and code written for authx-extra 1.2 (whose methods are coroutines) runs too.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.testclient import TestClient

from typed_sessions import (
    Keyring,
    MemoryStore,
    Ok,
    SessionId,
    SessionManager,
    SessionTooLargeError,
    utc_now,
    verify_session_token,
)
from typed_sessions.compat.authx_extra import (
    MemoryIO,
    SessionHandle,
    SessionIntegration,
    SessionMiddleware,
    SessionView,
)

from .compat_pages import PAGE2_IMPORTS, page2_code, rewrite, run
from .conftest import SECRET

pytestmark = pytest.mark.anyio

BASE = "https://testserver"
ROOT = Path(__file__).resolve().parent.parent
SHORT_SECRET_WARNING = (
    "secret #1 is 13 bytes; use at least 32 random bytes (`python -m typed_sessions keygen`)"
)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def session_id_of(client: httpx.AsyncClient, name: str = "sid", secret: str = SECRET) -> SessionId:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the page's short secret: warned about already
        keys = Keyring.from_secrets(secret)
    checked = verify_session_token(client.cookies[name], keys, now=utc_now())
    assert isinstance(checked, Ok)
    return checked.value


def handle_of(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


async def first_request(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """The first request builds the middleware: the page's short secret warns there, once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = await client.get(path)
    assert [str(w.message) for w in caught] == [SHORT_SECRET_WARNING]
    return reply


# --- the page's usage block ------------------------------------------------------------


async def test_the_page_counter_goes_1_2_3_and_prints_no_session_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rewritten = rewrite(page2_code(), PAGE2_IMPORTS)
    assert rewritten.changed == [
        (
            "from authx._internal import MemoryIO",
            "from typed_sessions.compat.authx_extra import MemoryIO",
        ),
        (
            "from authx_extra.session import SessionMiddleware",
            "from typed_sessions.compat.authx_extra.session import SessionMiddleware",
        ),
    ]
    app: FastAPI = run(rewritten.code)["app"]
    async with client_for(app) as client:
        first = await first_request(client, "/session_test")
        replies = [first, await client.get("/session_test"), await client.get("/session_test")]
        session_id = session_id_of(client, secret="my-secret-key")
    assert [r.json() for r in replies] == [{"test_counter": n} for n in (1, 2, 3)]
    # One cookie, for the new session: the page's options, and a SameSite browsers read.
    assert [r.headers.get_list("set-cookie") for r in replies[1:]] == [[], []]
    (set_cookie,) = first.headers.get_list("set-cookie")
    assert set_cookie.startswith("sid=")
    assert set_cookie.endswith("; Path=/; HttpOnly; SameSite=lax")
    # get_session_id(): one stable label from the first request (the session it starts,
    # as authx-extra's did), which is not the session ID and is not in the cookie.
    printed = capsys.readouterr().out.splitlines()
    handle = handle_of(session_id)
    assert printed == [f"sessionID:{handle}"] * 3
    assert session_id not in "\n".join(printed)
    assert handle not in set_cookie


async def test_code_written_for_authx_extra_1_2_awaits_and_runs() -> None:
    """The guide's "before" app (authx-extra 1.2: awaited methods), imports changed."""
    code = (ROOT / "examples/migration/before_authx_extra.py").read_text()
    code = code.replace(
        "from authx_extra.extra._memory import MemoryIO",
        "from typed_sessions.compat.authx_extra import MemoryIO",
    ).replace("from authx_extra.session import", "from typed_sessions.compat.authx_extra import")
    assert not re.search(r"^from authx", code, re.MULTILINE)
    app: FastAPI = run(code)["app"]
    async with client_for(app) as client:
        counts = [(await first_request(client, "/session_test")).json()]
        counts += [(await client.get("/session_test")).json() for _ in range(2)]
    assert counts == [{"test_counter": n} for n in (1, 2, 3)]


# --- each option of the page -----------------------------------------------------------


def counter_app(**options: Any) -> FastAPI:
    """The page's handler (synchronous style), with ``options`` for the middleware."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=options.pop("secret_key", SECRET), **options)
    attribute = options.get("session_object", "session")

    @app.get("/session_test")
    async def session(request: Request) -> dict[str, Any]:
        session_manager = getattr(request.state, attribute)
        session = session_manager.get_session()
        if "test_counter" not in session:
            session["test_counter"] = 0
        session["test_counter"] += 1
        return {"test_counter": session["test_counter"], "id": session_manager.get_session_id()}

    @app.get("/untouched")
    async def untouched() -> str:
        return "ok"

    return app


async def counts(app: FastAPI, times: int = 3, **headers: str) -> list[int]:
    async with client_for(app) as client:
        return [
            (await client.get("/session_test", headers=headers)).json()["test_counter"]
            for _ in range(times)
        ]


async def test_secret_key_signs_the_cookie_with_the_native_keyring() -> None:
    app = counter_app(secret_key=SECRET)
    async with client_for(app) as client:
        await client.get("/session_test")
        session_id_of(client, secret=SECRET)  # verifies with Keyring.from_secrets(secret_key)
        token = client.cookies["sid"]
    other = counter_app(secret_key=SECRET + "-other")
    async with client_for(other) as client:
        # Signed with another secret: ignored, a new session starts.
        reply = await client.get("/session_test", headers={"cookie": f"sid={token}"})
        assert reply.json()["test_counter"] == 1


async def test_store_holds_the_sessions_and_defaults_to_a_memory_io() -> None:
    store = MemoryIO()
    assert isinstance(store, MemoryStore)
    app = counter_app(store=store)
    async with client_for(app) as client:
        await client.get("/session_test")
        await client.get("/session_test")
        record = await store.load(session_id_of(client))
    assert record is not None
    assert record.data == {"test_counter": 2}
    assert await counts(counter_app()) == [1, 2, 3]  # no store given: a MemoryIO of its own
    middleware = SessionMiddleware(counter_app(), secret_key=SECRET)
    assert isinstance(middleware.store, MemoryStore)
    assert SessionMiddleware(counter_app(), secret_key=SECRET).store is not middleware.store


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        pytest.param({}, ["HttpOnly", "Secure", "SameSite=lax"], ["Max-Age"], id="defaults"),
        pytest.param({"http_only": False}, ["Secure"], ["HttpOnly"], id="http_only=False"),
        pytest.param({"secure": False}, ["HttpOnly"], ["Secure"], id="secure=False"),
        pytest.param({"max_age": 0}, [], ["Max-Age", "Expires"], id="max_age=0"),
        pytest.param({"max_age": 600}, ["; Max-Age=600;"], [], id="max_age=600"),
        pytest.param({"same_site": "strict"}, ["SameSite=strict"], ["lax"], id="same_site"),
    ],
)
async def test_cookie_options(
    options: dict[str, Any], present: list[str], absent: list[str]
) -> None:
    async with client_for(counter_app(**options)) as client:
        set_cookie = (await client.get("/session_test")).headers["set-cookie"]
    assert set_cookie.startswith("sid=")
    for text in present:
        assert text in set_cookie
    for text in absent:
        assert text not in set_cookie


async def test_cookie_path_of_authx_extra_1_2_sets_the_cookies_path() -> None:
    app = counter_app(cookie_path="/api", secure=False)
    async with client_for(app) as client:
        set_cookie = (await client.get("/session_test")).headers["set-cookie"]
    assert set_cookie.startswith("sid=")
    assert "; Path=/api;" in set_cookie
    positional = list(inspect.signature(SessionMiddleware).parameters)[:11]
    assert positional == [  # authx-extra 1.2's order, for apps that pass them so
        "app", "secret_key", "store", "http_only", "secure", "max_age", "session_cookie",
        "session_object", "skip_session_header", "logger", "cookie_path",
    ]  # fmt: skip


def test_memory_io_is_a_class_with_a_data_limit() -> None:
    store: MemoryIO = MemoryIO(max_sessions=5, max_data_bytes=None)
    assert isinstance(store, MemoryIO)
    assert isinstance(store, MemoryStore)
    assert store.max_sessions == 5
    assert store.codec.max_data_bytes is None
    assert MemoryIO().codec.max_data_bytes == 65_536
    with pytest.raises(ValueError, match="max_sessions"):
        MemoryIO(max_sessions=0)


async def test_data_over_memory_ios_limit_is_a_500_and_saves_nothing() -> None:
    store = MemoryIO(max_data_bytes=100)
    app = counter_app(store=store)

    @app.get("/big")
    async def big(request: Request) -> str:
        request.state.session.get_session()["blob"] = "x" * 200
        return "ok"

    async with client_for(app) as client:
        await client.get("/session_test")
        session_id = session_id_of(client)
        with pytest.raises(SessionTooLargeError, match="over the limit of 100"):
            await client.get("/big")
        record = await store.load(session_id)
    assert record is not None
    assert record.data == {"test_counter": 1}


class AuthxStyleStore:
    """A store written to authx-extra's interface, as its page invites."""

    async def create_store(self, session_id: str) -> dict[str, Any]:
        return {}

    async def get_store(self, session_id: str) -> dict[str, Any] | None:
        return None

    async def save_store(self, session_id: str) -> None:
        return None


def test_a_store_written_to_authx_extras_interface_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="authx-extra's store interface"):
        SessionMiddleware(counter_app(), secret_key=SECRET, store=AuthxStyleStore())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a session store: it has no load, save, delete"):
        SessionMiddleware(counter_app(), secret_key=SECRET, store=object())  # type: ignore[arg-type]


async def test_max_age_also_bounds_the_sessions_life() -> None:
    store = MemoryIO()
    async with client_for(counter_app(store=store, max_age=600)) as client:
        await client.get("/session_test")
        record = await store.load(session_id_of(client))
    assert record is not None
    assert record.expires_at - record.created_at == timedelta(seconds=600)
    store = MemoryIO()
    async with client_for(counter_app(store=store)) as client:  # 0: 30 min idle, 12 h at most
        await client.get("/session_test")
        record = await store.load(session_id_of(client))
    assert record is not None
    assert record.expires_at - record.created_at == timedelta(minutes=30)


async def test_session_cookie_names_the_cookie() -> None:
    app = counter_app(session_cookie="app_session")
    async with client_for(app) as client:
        await client.get("/session_test")
        assert set(client.cookies) == {"app_session"}
        assert (await client.get("/session_test")).json()["test_counter"] == 2


async def test_session_object_names_the_request_state_attribute() -> None:
    app = counter_app(session_object="sess")

    @app.get("/state")
    async def state(request: Request) -> dict[str, Any]:
        return {
            "type": type(request.state.sess).__name__,
            "session": hasattr(request.state, "session"),
        }

    assert await counts(app) == [1, 2, 3]
    async with client_for(app) as client:
        assert (await client.get("/state")).json() == {
            "type": "SessionIntegration",
            "session": False,
        }


@pytest.mark.parametrize(
    ("option", "header", "skipped"),
    [
        pytest.param("X-Skip", ("x-skip", "anything"), True, id="name"),
        pytest.param({"header_name": "X-Skip", "header_value": "*"}, ("X-Skip", "1"), True, id="*"),
        pytest.param({"header_name": "X-Skip", "header_value": "yes"}, ("x-skip", "yes"), True),
        pytest.param({"header_name": "X-Skip", "header_value": "yes"}, ("x-skip", "no"), False),
        pytest.param([{"header_name": "X-Skip", "header_value": "*"}], ("x-skip", "1"), True),
        pytest.param("X-Skip", ("x-other", "1"), False, id="other-header"),
    ],
)
async def test_skip_session_header(option: Any, header: tuple[str, str], skipped: bool) -> None:
    app = counter_app(skip_session_header=option)
    async with client_for(app) as client:
        untouched = await client.get("/untouched", headers=[header])
        assert untouched.status_code == 200
        used = await client.get("/session_test", headers=[header])
    if skipped:  # no session at all: a handler asking for it gets 400, no cookie is set
        assert (used.status_code, used.text) == (400, "Bad Request")
        assert "set-cookie" not in used.headers
    else:
        assert used.json()["test_counter"] == 1


def test_skip_session_header_takes_one_header() -> None:
    several = [{"header_name": "X-A", "header_value": "*"}, {"header_name": "X-B"}]
    with pytest.raises(ValueError, match="one skip_session_header"):
        SessionMiddleware(FastAPI(), secret_key=SECRET, skip_session_header=several)
    with pytest.raises(ValueError, match="header_name"):
        SessionMiddleware(FastAPI(), secret_key=SECRET, skip_session_header={"name": "X-A"})
    with pytest.raises(ValueError, match="invalid skip_header name"):
        SessionMiddleware(FastAPI(), secret_key=SECRET, skip_session_header="a b")


async def test_logger_gets_events_and_never_a_session_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.compat.authx")
    app = counter_app(logger=logger)
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        async with client_for(app) as client:
            await client.get("/session_test")
            await client.get("/session_test")
            session_id, token = session_id_of(client), client.cookies["sid"]
            await client.get("/session_test", headers={"cookie": "sid=forged"})
    messages = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert messages  # events reach the page's logger
    for message in messages:
        assert session_id not in message
        assert token not in message


def test_a_logger_that_is_not_a_logging_logger_is_refused() -> None:
    class ConsoleLogger:  # authx-extra's own fallback
        def info(self, text: str) -> None: ...

        def debug(self, text: str) -> None: ...

    with pytest.raises(TypeError, match=r"logging\.Logger"):
        SessionMiddleware(FastAPI(), secret_key=SECRET, logger=ConsoleLogger())  # type: ignore[arg-type]  # the point


# --- the manager on request.state ------------------------------------------------------


async def test_the_manager_works_both_synchronously_and_awaited() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    seen: dict[str, Any] = {}

    @app.get("/both")
    async def both(request: Request) -> dict[str, Any]:
        manager: SessionIntegration = request.state.session
        assert isinstance(manager.native, SessionManager)
        session = manager.get_session()
        awaited = await manager.get_session()
        assert isinstance(session, SessionView)
        assert dict(awaited) == dict(session)
        before = manager.get_session_id()
        awaited_id = await manager.get_session_id()
        session["n"] = session.get("n", 0) + 1
        after = manager.get_session_id()
        seen.update(before=before, awaited=awaited_id, after=after)
        return {"n": awaited["n"], "id": str(after)}

    @app.get("/clear")
    async def clear(request: Request) -> dict[str, Any]:
        manager: SessionIntegration = request.state.session
        before = manager.get_session_id()
        await manager.clear_session()
        await manager.save_session()
        manager.save_session()  # not awaited: nothing to warn about
        return {"same": manager.get_session_id() == before, "data": dict(manager.get_session())}

    async with client_for(app) as client:
        first = (await client.get("/both")).json()
        assert seen["before"] == seen["awaited"] == seen["after"] == first["id"]
        assert isinstance(seen["after"], SessionHandle)
        assert first == {"n": 1, "id": handle_of(session_id_of(client))}
        second = (await client.get("/both")).json()
        assert second["id"] == first["id"]
        assert seen["before"] == seen["awaited"] == first["id"]
        assert (await client.get("/clear")).json() == {"same": True, "data": {}}
        assert (await client.get("/both")).json()["id"] == first["id"]


async def test_visitors_without_data_get_labels_of_their_own() -> None:
    """Found by an audit: ``get_session_id()`` was ``""`` for every visitor whose session
    held no data, so what an app keyed on it (a cart, say) was shared by all of them.
    Asking for it starts the visitor's session, as authx-extra gave every visitor one."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    carts: dict[str, list[str]] = {}

    @app.post("/cart/{item}")
    async def add(item: str, request: Request) -> list[str]:
        manager: SessionIntegration = request.state.session
        cart = carts.setdefault(await manager.get_session_id(), [])
        cart.append(item)
        return cart

    async with client_for(app) as alice, client_for(app) as bob:
        assert (await alice.post("/cart/secret")).json() == ["secret"]
        assert (await bob.post("/cart/book")).json() == ["book"]
        assert (await alice.post("/cart/pen")).json() == ["secret", "pen"]
        assert (await bob.post("/cart/cup")).json() == ["book", "cup"]
    assert "" not in carts
    assert len(carts) == 2


async def test_a_sign_out_or_a_websocket_gets_no_label_and_starts_nothing() -> None:
    """Found by a review: after ``native.invalidate()`` (a sign-out), asking for the
    label started a fresh session, whose cookie replaced the clearing one; on a
    WebSocket without a session, ``start()`` raised. Both answer ``""`` and start
    nothing."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, secure=False)

    @app.post("/login")
    async def login(request: Request) -> str:
        manager: SessionIntegration = request.state.session
        manager.get_session()["user"] = "ada"
        return manager.get_session_id()

    @app.post("/logout")
    async def logout(request: Request) -> str:
        manager: SessionIntegration = request.state.session
        manager.native.invalidate()
        return manager.get_session_id()

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        manager: SessionIntegration = websocket.state.session
        await websocket.send_text(manager.get_session_id())
        await websocket.close()

    with TestClient(app, base_url="http://testserver") as client:
        with client.websocket_connect("/ws") as socket_client:
            assert socket_client.receive_text() == ""
        assert client.post("/login").json() != ""
        out = client.post("/logout")
        assert out.json() == ""
        (cleared,) = out.headers.get_list("set-cookie")
        assert "Max-Age=0" in cleared


async def test_regenerate_through_native_gives_a_new_label() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)

    @app.get("/visit")
    async def visit(request: Request) -> str:
        manager: SessionIntegration = request.state.session
        manager.get_session()["seen"] = True
        return manager.get_session_id()

    @app.get("/login")
    async def login(request: Request) -> list[str]:
        manager: SessionIntegration = request.state.session
        before = manager.get_session_id()
        manager.native.regenerate()
        return [before, manager.get_session_id()]

    async with client_for(app) as client:
        label = (await client.get("/visit")).json()
        before, after = (await client.get("/login")).json()
        assert before == label != after
        assert (await client.get("/visit")).json() == after == handle_of(session_id_of(client))


async def test_the_session_view_is_a_mutable_mapping_of_json_values() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)

    @app.get("/ops")
    async def ops(request: Request) -> dict[str, Any]:
        view: SessionView = request.state.session.get_session()
        view.update(a=1, b=[1, 2])
        view.setdefault("c", "x")
        del view["a"]
        popped = view.pop("c")
        with pytest.raises(TypeError, match="keys must be str"):
            view[1] = "x"  # type: ignore[index]  # the point
        view["b"].append(3)  # a nested change is saved too
        return {"copy": view.copy(), "len": len(view), "popped": popped, "repr": repr(view)}

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return dict(request.state.session.get_session())

    async with client_for(app) as client:
        body = (await client.get("/ops")).json()
        assert body == {
            "copy": {"b": [1, 2, 3]},
            "len": 1,
            "popped": "x",
            "repr": "SessionView({'b': [1, 2, 3]})",
        }
        assert (await client.get("/read")).json() == {"b": [1, 2, 3]}


# --- the migration guide's example -------------------------------------------------------


async def test_the_guides_example_counts_in_both_styles(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSION_SECRET", example_secret())
    sys.modules.pop("examples.migration.compat_authx_extra", None)  # built with this secret
    from examples.migration import compat_authx_extra as example

    async with client_for(example.app) as client:
        counts = [
            (await client.get(path)).json()["test_counter"]
            for path in ("/session_test", "/session_test_1_2", "/session_test")
        ]
        handle = handle_of(session_id_of(client, secret=example_secret()))
    assert counts == [1, 2, 3]
    assert capsys.readouterr().out.splitlines() == [f"sessionID:{handle}"] * 3


def example_secret() -> str:
    return "my-secret-key-make-one-with-python-m-typed_sessions-keygen"


async def test_sessions_started_through_the_shim_carry_on_in_the_native_style() -> None:
    from examples.migration.after_authx_extra import create_app

    store = MemoryIO()
    shim = counter_app(store=store)
    async with client_for(shim) as client:
        await client.get("/session_test")
        await client.get("/session_test")
        token = client.cookies["sid"]
    async with client_for(create_app(SECRET, store)) as client:
        reply = await client.get("/session_test", headers={"cookie": f"sid={token}"})
        assert reply.json() == {"test_counter": 3}


async def test_save_and_clear_session_of_a_skipped_request_are_400() -> None:
    app = counter_app(skip_session_header="X-Skip")

    @app.post("/save")
    async def save(request: Request) -> str:
        request.state.session.save_session()
        return "saved"

    @app.post("/clear")
    async def clear(request: Request) -> str:
        request.state.session.clear_session()
        return "cleared"

    async with client_for(app) as client:
        for path in ("/save", "/clear"):
            skipped = await client.post(path, headers={"x-skip": "1"})
            assert (skipped.status_code, skipped.text) == (400, "Bad Request")
            assert (await client.post(path)).status_code == 200


async def test_take_turns_runs_concurrent_requests_of_a_session_one_at_a_time() -> None:
    """The page's counter, 20 requests at once from one session, on Redis: with
    ``take_turns=True`` none is refused and each counts; without it, the requests that
    changed the counter another had changed meanwhile get 409 and count nothing."""
    from redis.asyncio import Redis

    from typed_sessions import RedisStore

    from .redis_server import delete_prefix, require_redis, unique_prefix

    client = Redis.from_url(require_redis())
    prefix = unique_prefix()
    try:
        for take_turns in (True, False):
            store = RedisStore(client, dict[str, Any], prefix=prefix)
            app = counter_app(store=store, take_turns=take_turns, secure=False)
            async with client_for(app) as browser:
                await browser.get("/session_test")
                replies = await asyncio.gather(*(browser.get("/session_test") for _ in range(20)))
                codes = [reply.status_code for reply in replies]
                final = (await browser.get("/session_test")).json()["test_counter"]
            assert set(codes) <= {200, 409}
            assert final == 2 + codes.count(200)  # every 200 counted, no 409 did
            if take_turns:
                assert codes.count(409) == 0
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
