"""benchmarks/prototype_middleware.py keeps the guarantees it is measured with (issue 13)."""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from typing import Any

import pytest
from benchmarks.prototype_middleware import (
    CompactPrototype,
    ProtoStore,
    PrototypeMiddleware,
    Record,
)

from typed_sessions import (
    Keyring,
    MemoryStore,
    SessionEncodeError,
    SessionId,
    sign_session_id,
)

from .conftest import SECRET, START, FakeClock

pytestmark = pytest.mark.anyio

COOKIE = "__Host-session"
IDLE, ABSOLUTE = 1800, 12 * 3600


class Clock:
    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now


class Handler:
    """A bare ASGI app: runs ``body`` on the session, answers ``status``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.status = 200
        self.value: Any = None  # put under "x" when not None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        session: dict[str, Any] = scope["session"]
        self.seen.append(dict(session))
        session["n"] = session.get("n", 0) + 1
        if self.value is not None:
            session["x"] = self.value
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def make() -> tuple[PrototypeMiddleware, Handler, ProtoStore, Clock]:
    handler, store, clock = Handler(), ProtoStore(), Clock()
    keys = Keyring.from_secrets(SECRET)
    app = PrototypeMiddleware(handler, store=store, keys=keys, idle=IDLE, clock=clock)
    return app, handler, store, clock


async def call(app: PrototypeMiddleware, token: str | None = None) -> tuple[int, str | None]:
    """One GET with ``token`` as the cookie: the status and the new token, if one was set."""
    headers = [(b"host", b"testserver")]
    if token is not None:
        headers.append((b"cookie", f"other=1; {COOKIE}={token}".encode("latin-1")))
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:  # pragma: no cover - the handler never reads
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/", "headers": headers}, receive, send)
    cookies = [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]
    assert len(cookies) <= 1
    if not cookies:
        return sent[0]["status"], None
    name, _, rest = cookies[0].partition("=")
    assert name == COOKIE
    assert rest.endswith("; Path=/; Secure; HttpOnly; SameSite=Lax")
    return sent[0]["status"], rest.split(";", 1)[0]


async def test_the_counter_counts_with_its_cookie_set_once() -> None:
    app, handler, store, _ = make()
    status, token = await call(app)
    assert status == 200
    assert token is not None
    for _ in range(3):
        assert await call(app, token) == (200, None)  # no Set-Cookie for a known session
    assert [seen.get("n") for seen in handler.seen] == [None, 1, 2, 3]
    assert [record.text for record in store.records.values()] == ['{"n":4}']


async def test_each_request_gets_its_own_copy() -> None:
    app, handler, store, _ = make()
    _, token = await call(app)
    await call(app, token)
    await call(app, token)
    assert handler.seen[1] == {"n": 1}
    assert handler.seen[2] == {"n": 2}
    assert next(iter(store.records.values())).version == 3


@pytest.mark.parametrize(
    "bad",
    ["garbage", "", '"quoted"', "x" * 100_000, "\xff\xfe" * 64, "é" * 127],
)
async def test_a_cookie_that_fails_is_ignored(bad: str) -> None:
    app, handler, store, _ = make()
    status, token = await call(app, bad)
    assert status == 200
    assert token is not None
    assert token != bad
    assert handler.seen == [{}]
    assert len(store.records) == 1
    assert app.verified == {}  # never cached


async def test_a_tampered_or_foreign_token_is_a_new_session() -> None:
    app, handler, store, _ = make()
    _, token = await call(app)
    assert token is not None
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    other_id = token[:25] + ("A" if token[25] != "A" else "B") + token[26:]
    foreign = sign_session_id(
        SessionId(token[20:63]), Keyring.from_secrets("another-secret-" + "9" * 32), now=START
    )
    for bad in (flipped, other_id, foreign):
        status, new = await call(app, bad)
        assert status == 200
        assert new not in (None, token)
        assert handler.seen[-1] == {}
        assert bad not in app.verified
    assert len(store.records) == 4


async def test_an_expired_session_is_not_revived() -> None:
    app, handler, _, clock = make()
    _, token = await call(app)
    clock.now += IDLE  # the idle deadline passed, exactly
    _, new = await call(app, token)
    assert new is not None
    assert new != token
    assert handler.seen[-1] == {}
    assert await call(app, token) != (200, None)
    assert handler.seen[-1] == {}


async def test_sliding_expiry_stops_at_the_absolute_deadline() -> None:
    app, handler, _, clock = make()
    _, token = await call(app)
    while clock.now + IDLE // 2 <= START.timestamp() + ABSOLUTE - 1:
        clock.now += IDLE // 2
        assert await call(app, token) == (200, None)
        assert handler.seen[-1] != {}
    clock.now = START.timestamp() + ABSOLUTE  # the absolute deadline: session and token
    _, new = await call(app, token)
    assert new is not None
    assert handler.seen[-1] == {}


async def test_the_age_check_runs_on_a_cached_token() -> None:
    app, handler, store, clock = make()
    _, token = await call(app)
    assert token is not None
    assert token not in app.verified
    await call(app, token)
    assert token in app.verified
    (session_id, record), *_ = store.records.items()
    store.records[session_id] = record._replace(expires=2**40)  # a store that lets it live
    clock.now += ABSOLUTE + 1
    _, new = await call(app, token)
    assert new is not None
    assert handler.seen[-1] == {}
    assert token not in app.verified


async def test_a_5xx_saves_nothing() -> None:
    app, handler, store, _ = make()
    handler.status = 500
    assert await call(app) == (500, None)
    assert store.records == {}
    handler.status = 200
    _, token = await call(app)
    handler.status = 503
    before = dict(store.records)
    assert await call(app, token) == (503, None)
    assert store.records == before


async def test_a_cached_token_of_a_deleted_session_is_not_live() -> None:
    app, handler, store, _ = make()
    _, token = await call(app)
    await call(app, token)
    assert token in app.verified
    (session_id,) = store.records
    await store.delete(session_id)
    _, new = await call(app, token)
    assert new is not None
    assert new != token
    assert handler.seen[-1] == {}
    assert session_id not in store.records


@pytest.mark.parametrize("value", [math.nan, math.inf, object(), {1: "int key"}])
async def test_data_that_is_not_json_is_refused(value: Any) -> None:
    app, handler, store, _ = make()
    _, token = await call(app)
    before = dict(store.records)
    handler.value = {"x": value} if isinstance(value, dict) else value
    if isinstance(value, dict):  # a nested non-str key: JSON turns it into "1" (not checked)
        await call(app, token)
        return
    with pytest.raises(SessionEncodeError, match="not JSON"):
        await call(app, token)
    assert store.records == before
    with pytest.raises(SessionEncodeError):  # nor is a new session stored
        await call(app)
    assert store.records == before


async def test_a_top_level_key_that_is_not_str_is_refused() -> None:
    app, _, store, _ = make()
    with pytest.raises(SessionEncodeError, match="keys must be str"):
        await app.commit(None, None, {1: "x"}, int(START.timestamp()))  # type: ignore[dict-item]
    assert store.records == {}


async def test_a_lost_race_merges_and_an_ended_session_stays_ended() -> None:
    app, _, store, _ = make()
    now = int(START.timestamp())
    await call(app)
    ((session_id, loaded),) = store.records.items()
    sid = SessionId(session_id)
    assert await app.commit(sid, loaded, {"n": 1, "a": 1}, now) is None  # saved: version 2
    assert await app.commit(sid, loaded, {"n": 1, "b": 2}, now) is None  # stale: merged
    assert store.records[session_id] == Record(3, now, now + IDLE, '{"n":1,"a":1,"b":2}')
    await store.delete(session_id)
    await app.commit(sid, loaded, {"n": 5}, now)
    assert store.records == {}  # not brought back


async def test_the_cache_is_bounded_and_forgets_replaced_keys() -> None:
    app, _, _, _ = make()
    app.cache_size = 3
    tokens = [(await call(app))[1] for _ in range(5)]
    for token in tokens:
        await call(app, token)
    assert list(app.verified) == tokens[2:]
    app.keys = Keyring.from_secrets("a-new-secret-" + "7" * 32)
    _, new = await call(app, tokens[-1])  # the old key is gone: a new session
    assert new is not None
    assert list(app.verified) == []


async def test_circular_data_is_refused_not_a_crash() -> None:
    app, handler, store, _ = make()
    _, token = await call(app)
    before = dict(store.records)
    loop: list[Any] = []
    loop.append(loop)
    handler.value = loop
    with pytest.raises(SessionEncodeError, match="not JSON"):
        await call(app, token)
    assert store.records == before


# --- the same prototype over MemoryStore's compact records ----------------------------


def make_compact() -> tuple[CompactPrototype, Handler, MemoryStore[dict[str, Any]], Clock]:
    handler, clock = Handler(), Clock()
    store = MemoryStore(dict[str, Any], clock=FakeClock(START))
    keys = Keyring.from_secrets(SECRET)
    app = CompactPrototype(handler, store=store, keys=keys, idle=IDLE, clock=clock)
    return app, handler, store, clock


async def test_compact_the_counter_counts_in_the_memory_store() -> None:
    app, handler, store, _ = make_compact()
    status, token = await call(app)
    assert status == 200
    assert token is not None
    for _ in range(3):
        assert await call(app, token) == (200, None)
    assert [seen.get("n") for seen in handler.seen] == [None, 1, 2, 3]
    session_id = SessionId(token[20:63])
    loaded = await store.load(session_id)
    assert loaded is not None
    assert (loaded.data, loaded.version) == ({"n": 4}, 4)


async def test_compact_a_5xx_saves_nothing_and_a_bad_cookie_is_ignored() -> None:
    app, handler, store, _ = make_compact()
    _, token = await call(app)
    assert token is not None
    handler.status = 500
    assert await call(app, token) == (500, None)
    loaded = await store.load(SessionId(token[20:63]))
    assert loaded is not None
    assert (loaded.data, loaded.version) == ({"n": 1}, 1)
    handler.status = 200
    status, new = await call(app, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert status == 200
    assert new not in (None, token)
    assert handler.seen[-1] == {}


async def test_compact_a_lost_race_merges_and_an_ended_session_stays_ended() -> None:
    app, _, store, _ = make_compact()
    now = int(START.timestamp())
    _, token = await call(app)
    assert token is not None
    sid = SessionId(token[20:63])
    loaded = store.load_record_now(sid)
    assert loaded is not None
    text = '{"n":1}'
    assert await app.commit_compact(sid, loaded, text, {"n": 1, "a": 1}, now) is None
    assert await app.commit_compact(sid, loaded, text, {"n": 1, "b": 2}, now) is None  # stale
    merged = await store.load(sid)
    assert merged is not None
    assert (merged.data, merged.version) == ({"n": 1, "a": 1, "b": 2}, 3)
    await store.delete(sid)
    await app.commit_compact(sid, loaded, text, {"n": 5}, now)
    assert await store.load(sid) is None  # not brought back
