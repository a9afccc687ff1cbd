"""The session middleware's commit turns: one commit per session at a time in a worker,
the record each saved kept (bounded) for later stale commits, nothing left behind."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from typed_sessions.adapters import kept as kept_module
from typed_sessions.adapters.kept import KEPT_SECONDS, KEPT_SESSIONS
from typed_sessions.adapters.middleware import SessionMiddleware, session_middleware
from typed_sessions.adapters.outcome import Record
from typed_sessions.adapters.session_deps import SessionDep
from typed_sessions.adapters.turns import Turns
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Result
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict

from .conftest import BASE

pytestmark = pytest.mark.anyio


class SlowSaves:
    """A memory store whose saves wait a while once ``slow`` is set."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.slow = False

    async def load(self, session_id: SessionId) -> Record | None:
        return await self.inner.load(session_id)

    async def save(self, session: Record) -> Result[Record, Conflict]:
        if self.slow:
            await asyncio.sleep(0.05)
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        await self.inner.delete(session_id)


class CancelAtHandOver(Turns[SessionId]):
    """Commit turns that cancel the request they hand a turn to, right then."""

    __slots__ = ("victims",)

    def __init__(self) -> None:
        super().__init__()
        self.victims: list[asyncio.Task[httpx.Response]] = []

    def give_back(self, key: SessionId) -> bool:
        handed = super().give_back(key)
        if handed and self.victims:
            self.victims.pop().cancel()
        return handed


async def test_a_waiter_cancelled_after_the_hand_over_leaves_no_turn_behind() -> None:
    """A request cancelled just as the commit turn is handed to it passes the turn on;
    the records kept are the saved ones, within their bound."""
    store = SlowSaves()
    app = FastAPI()

    @app.get("/set/{key}")
    async def set_key(key: str, manager: SessionDep) -> str:
        manager.get_session()[key] = "v"
        return "ok"

    middleware = session_middleware(app, store=store, keys="k" * 40)
    turns = CancelAtHandOver()
    middleware._commit._queue = turns  # pyright: ignore[reportPrivateUsage]
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/set/a")).status_code == 200
        store.slow = True
        first = asyncio.create_task(client.get("/set/b"))
        await asyncio.sleep(0.01)  # the first holds the commit turn, saving slowly
        second = asyncio.create_task(client.get("/set/c"))
        turns.victims.append(second)
        assert (await first).status_code == 200
        with pytest.raises(asyncio.CancelledError):
            await second
    assert [record.data for record in kept_records(middleware)] == [{"a": "v", "b": "v"}]
    assert not turns._queues  # pyright: ignore[reportPrivateUsage]


def kept_records(middleware: SessionMiddleware) -> list[Record]:
    """The records the middleware keeps, oldest save first."""
    kept = middleware._commit._kept  # pyright: ignore[reportPrivateUsage]
    found = (kept.get(session_id) for session_id in list(kept.records))
    return [record for record in found if record is not None]


class Counted:
    """A memory store seen only through the protocol (no lane), counting its calls."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.loads = self.saves = 0

    async def load(self, session_id: SessionId) -> Record | None:
        self.loads += 1
        return await self.inner.load(session_id)

    async def save(self, session: Record) -> Result[Record, Conflict]:
        self.saves += 1
        return await self.inner.save(session)

    async def delete(self, session_id: SessionId) -> None:
        await self.inner.delete(session_id)


def stale_writer_app(store: Counted, gate: asyncio.Event) -> FastAPI:
    """``/bump`` counts up (a read and a write); ``/late/{key}`` reads ``key`` or writes
    it blind, after ``gate`` opens: a request whose commit comes after others'."""
    app = FastAPI()

    @app.get("/bump")
    async def bump(manager: SessionDep) -> int:
        session = manager.get_session()
        session["n"] = session.get("n", 0) + 1
        return int(session["n"])

    @app.get("/end")
    async def end(manager: SessionDep) -> str:
        manager.invalidate()
        return "ended"

    @app.get("/late/{key}")
    async def late(key: str, manager: SessionDep, read: bool = False) -> str:
        session = manager.get_session()
        value = session.get("n", 0) if read else 0
        await gate.wait()
        session[key] = value + 1
        return "ok"

    return app


async def stale_blind_write(
    client: httpx.AsyncClient, *, then: str
) -> asyncio.Task[httpx.Response]:
    """Start a session (version 1), a blind write of it that loads now and commits when
    the gate opens, then GET ``then``, which saves version 2 (kept by the worker)."""
    await client.get("/bump")
    blind = asyncio.create_task(client.get("/late/k"))
    await asyncio.sleep(0.01)  # it loaded version 1
    await client.get(then)
    return blind


async def test_a_stale_commit_is_decided_by_the_kept_record_without_a_round_trip() -> None:
    """A request that loaded a version this worker has since replaced learns it at its
    commit from the record kept, not from a failed save and a reload: refused (409) when
    it read what changed, merged with one save when it did not."""
    store, gate = Counted(), asyncio.Event()
    middleware = session_middleware(stale_writer_app(store, gate), store=store, keys="k" * 40)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/bump")).json() == 1
        stale_read = asyncio.create_task(client.get("/late/m", params={"read": "true"}))
        blind = asyncio.create_task(client.get("/late/k"))
        await asyncio.sleep(0.01)  # both loaded version 1
        loads, saves = store.loads, store.saves
        assert (await client.get("/bump")).json() == 2  # version 2, kept by the worker
        assert (store.loads, store.saves) == (loads + 1, saves + 1)
        gate.set()
        refused = await stale_read
        assert refused.status_code == 409
        assert (await blind).status_code == 200
        # The refusal cost nothing; the blind write one save, into the kept version 2.
        assert (store.loads, store.saves) == (loads + 1, saves + 2)
        assert (await client.get("/bump")).json() == 3
    (session,) = kept_records(middleware)
    assert session.data == {"n": 3, "k": 1}


async def test_a_session_ended_elsewhere_stays_ended_despite_the_kept_record() -> None:
    """The kept record is a hint, checked by the store's compare-and-set: a session
    another worker ended is not brought back by a stale request merged into it."""
    store, gate = Counted(), asyncio.Event()
    middleware = session_middleware(stale_writer_app(store, gate), store=store, keys="k" * 40)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        blind = await stale_blind_write(client, then="/bump")
        (session_id,) = (record.id for record in kept_records(middleware))
        await store.inner.delete(session_id)  # ended by another worker
        gate.set()
        answer = await blind
        assert answer.status_code == 409  # its write could not be saved: told, not dropped
        assert "set-cookie" not in answer.headers
        assert await store.inner.load(session_id) is None


async def test_a_session_ended_here_is_not_kept() -> None:
    store = Counted()
    middleware = session_middleware(
        stale_writer_app(store, asyncio.Event()), store=store, keys="k" * 40
    )
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await client.get("/bump")
        await client.get("/bump")
        assert len(kept_records(middleware)) == 1
        await client.get("/end")
        assert kept_records(middleware) == []


async def test_the_records_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``KEPT_SESSIONS``; and a save as planned is kept as the JSON its change
    check made, without encoding the data again."""

    def encode_again(value: object) -> str:
        raise AssertionError("a planned save's JSON was encoded again")

    monkeypatch.setattr(kept_module, "encode_json", encode_again)
    store = Counted()
    middleware = session_middleware(
        stale_writer_app(store, asyncio.Event()), store=store, keys="k" * 40
    )
    transport = httpx.ASGITransport(app=middleware)
    for _ in range(KEPT_SESSIONS + 10):  # each client its own session, saved twice
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await client.get("/bump")
            await client.get("/bump")
    kept = kept_records(middleware)
    assert len(kept) == KEPT_SESSIONS
    assert all(record.version == 2 for record in kept)


async def test_a_kept_record_is_a_copy_and_kept_for_a_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A nested value the handler changes after the response started is not saved, and
    does not reach a later save through the kept record either; after ``KEPT_SECONDS``
    the record is not used (nor held) any more."""
    clock = [1000.0]
    monkeypatch.setattr(kept_module, "monotonic", lambda: clock[0])
    store, gate = Counted(), asyncio.Event()
    app = stale_writer_app(store, gate)

    @app.get("/cart")
    async def cart(manager: SessionDep) -> JSONResponse:
        items = manager.get_session()["cart"] = ["book"]
        # After the response started: documented as not saved.
        return JSONResponse("ok", background=BackgroundTask(items.append, "UNSAVED"))

    middleware = session_middleware(app, store=store, keys="k" * 40)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        blind = await stale_blind_write(client, then="/cart")
        (record,) = kept_records(middleware)
        assert record.data == {"n": 1, "cart": ["book"]}
        gate.set()
        assert (await blind).status_code == 200  # merged into the kept version 2
        stored = await store.inner.load(record.id)
        assert stored is not None
        assert stored.data == {"n": 1, "cart": ["book"], "k": 1}
        # A moment later the kept record is not used: a stale commit goes to the store.
        gate.clear()
        late = asyncio.create_task(client.get("/late/m"))
        await asyncio.sleep(0.01)
        await client.get("/bump")
        clock[0] += KEPT_SECONDS
        saves = store.saves
        gate.set()
        assert (await late).status_code == 200
        assert store.saves == saves + 2  # a failed compare-and-set, then the merge
        assert kept_records(middleware)[0].data["m"] == 1


class CountedTurns(Turns[SessionId]):
    """Commit turns counting how many were taken."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def take_free(self, key: SessionId) -> bool:
        self.taken += 1
        return super().take_free(key)


def counter_app() -> tuple[FastAPI, list[SessionId | None]]:
    app = FastAPI()
    ids: list[SessionId | None] = []

    @app.get("/count")
    async def count(manager: SessionDep) -> int:
        session = manager.get_session()
        session["n"] = session.get("n", 0) + 1
        ids.append(manager.get_session_id())
        return int(session["n"])

    return app, ids


async def test_the_usual_save_on_memory_is_not_queued_unless_a_commit_is_under_way() -> None:
    """On the memory store (an instant lane) the usual save takes no commit turn; while
    a commit of the same session holds one, it waits for it and then saves on top."""
    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    app, ids = counter_app()
    middleware = session_middleware(app, store=store, keys="k" * 40)
    turns = CountedTurns()
    middleware._commit._queue = turns  # pyright: ignore[reportPrivateUsage]
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/count")).json() == 1  # a new session: a Create
        assert (await client.get("/count")).json() == 2
        assert turns.taken == 0
        session_id = ids[-1]
        assert session_id is not None
        assert turns.take_free(session_id)  # a commit of this session under way
        waiting = asyncio.create_task(client.get("/count"))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # its save waits for the turn
        turns.give_back(session_id)
        assert (await waiting).json() == 3
        queued = turns.taken
        assert queued > 1  # the one held above, and the waiter's
        assert (await client.get("/count")).json() == 4
    assert turns.taken == queued  # nobody to wait for again
    assert not turns._queues  # pyright: ignore[reportPrivateUsage]
