"""What a save writes is the data as the response started, detached from the handler's
(found by an audit): a task the handler started, still changing a nested value it holds,
never reaches the save, a merge that waits for the store, or the record a worker keeps
for its next commits; nor can a value it puts there break the commit. Nor does a nested
change the handler dropped again reach a touch or a move of a record read through
``load``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import FakeClock
from tests.middleware.test_request_races import KEYS, client, sid, start_session
from typed_sessions import (
    Ok,
    Result,
    Session,
    SessionDep,
    SessionId,
    session_middleware,
    utc_now,
)
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict

pytestmark = pytest.mark.anyio

Record = Session[dict[str, Any]]


class GatedStore:
    """A memory store without its instant lane, whose next load, once armed, waits."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.store: MemoryStore[dict[str, Any]] = MemoryStore(
            dict[str, Any], clock=clock or utc_now
        )
        self.reached = asyncio.Event()
        self.go = asyncio.Event()
        self.armed = False  # the next load waits
        self.armed_save = False  # the next save that succeeds waits, once done

    async def load(self, session_id: SessionId) -> Record | None:
        if self.armed:
            self.armed = False
            await self._wait()
        return await self.store.load(session_id)

    async def save(self, session: Record) -> Result[Record, Conflict]:
        saved = await self.store.save(session)
        if self.armed_save and isinstance(saved, Ok):
            self.armed_save = False
            await self._wait()
        return saved

    async def _wait(self) -> None:
        self.reached.set()
        await self.go.wait()

    async def delete(self, session_id: SessionId) -> None:
        await self.store.delete(session_id)


def cart_app(store: GatedStore, held: dict[str, Any], gate: asyncio.Event) -> FastAPI:
    """``/add`` leaves its nested cart in ``held`` (and sets ``held["added"]``), then
    waits for ``gate``."""
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS)

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session().update(cart={"items": []}, n=0, other=0)
        return "ok"

    @app.post("/add")
    async def add(manager: SessionDep) -> str:
        session = manager.get_session()
        session["n"] += 1
        session["cart"]["items"].append("by-handler")
        held["cart"] = session["cart"]  # a task of the handler's keeps it
        held["added"].set()
        await gate.wait()
        return "ok"

    @app.post("/other")
    async def other(manager: SessionDep) -> str:
        manager.get_session()["other"] += 1
        return "ok"

    return app


@pytest.mark.parametrize("late", ["after-response", {"a", "set"}])
async def test_a_change_made_while_the_merge_waits_for_the_store_is_not_saved(late: Any) -> None:
    """Request A's save lost a race to another worker's and is merged: it waits for the
    newest record, and meanwhile the task changes the nested list A's handler left. The
    merge saves A's change as it was when the response started; a value that is not
    JSON, put there now, does not fail it."""
    store = GatedStore()
    held: dict[str, Any] = {"added": asyncio.Event()}
    gate = asyncio.Event()
    worker_a, worker_b = cart_app(store, held, gate), cart_app(store, held, gate)
    token = await start_session(worker_a)
    async with client(worker_a, token) as a_client, client(worker_b, token) as b_client:
        a = asyncio.ensure_future(a_client.post("/add"))
        await held["added"].wait()
        assert (await b_client.post("/other")).status_code == 200  # A is stale now
        store.armed = True
        gate.set()
        await store.reached.wait()  # A's merge, loading the newest record
        held["cart"]["items"].append(late)
        store.go.set()
        assert (await a).status_code == 200
    saved = await store.store.load(sid(token))
    assert saved is not None
    assert saved.data == {"cart": {"items": ["by-handler"]}, "n": 1, "other": 1}


async def test_a_change_made_after_the_save_never_reaches_the_record_a_worker_keeps() -> None:
    """The worker keeps A's merged record for its next commits. The task changes the
    nested list right after A's save: a stale request C of the same worker, which changed
    another key, merges into A's record as saved, without that change."""
    store = GatedStore()
    held: dict[str, Any] = {"added": asyncio.Event()}
    gate, c_gate = asyncio.Event(), asyncio.Event()
    worker = cart_app(store, held, gate)
    c_loaded = asyncio.Event()

    @worker.post("/third")
    async def third(manager: SessionDep) -> str:
        session = manager.get_session()
        c_loaded.set()
        await c_gate.wait()
        session["third"] = 1
        return "ok"

    other_worker = cart_app(store, {"added": asyncio.Event()}, asyncio.Event())
    token = await start_session(worker)
    async with client(worker, token) as a_client, client(other_worker, token) as b_client:
        c = asyncio.ensure_future(a_client.post("/third"))  # C loads the first version
        await c_loaded.wait()
        a = asyncio.ensure_future(a_client.post("/add"))  # so does A
        await held["added"].wait()
        assert (await b_client.post("/other")).status_code == 200  # both are stale now
        store.armed_save = True
        gate.set()
        await store.reached.wait()  # A's merge saved; its worker keeps the record next
        held["cart"]["items"].append("after-response")
        store.go.set()
        assert (await a).status_code == 200
        c_gate.set()
        assert (await c).status_code == 200  # merged into the record A's worker kept
    saved = await store.store.load(sid(token))
    assert saved is not None
    assert saved.data == {"cart": {"items": ["by-handler"]}, "n": 1, "other": 1, "third": 1}


@pytest.mark.parametrize("move", [False, True])
async def test_a_nested_change_put_back_as_loaded_is_not_saved_by_a_touch_or_a_move(
    clock: FakeClock, move: bool
) -> None:
    """A store read through ``load`` (no lane: Redis, SQL): the handler changes a nested
    dict in place, then puts the loaded value back. Its session is unchanged, so the
    save is a touch of the deadline, or a bare move to a new ID; either writes the data
    as loaded, not the change it dropped."""
    store = GatedStore(clock)
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=KEYS, clock=clock)

    @app.post("/init")
    async def init(manager: SessionDep) -> str:
        manager.get_session()["c"] = {"a": 1}
        return "ok"

    @app.post("/try")
    async def try_out(manager: SessionDep) -> str | None:
        session = manager.get_session()
        session["c"]["z"] = 1  # tried in place, then dropped:
        session["c"] = {"a": 1}
        if move:
            manager.regenerate()
        return manager.get_session_id()

    token = await start_session(app)
    clock.advance(timedelta(minutes=5))  # the deadline moves: a touch, when no move
    async with client(app, token) as c:
        response = await c.post("/try")
    assert response.status_code == 200
    saved = await store.store.load(SessionId(response.json()))
    assert saved is not None
    assert saved.data == {"c": {"a": 1}}
    assert saved.last_active == clock.now
