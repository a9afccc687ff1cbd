"""A store's own lane code runs: a subclass of MemoryStore overriding the lane's coroutines,
or a proxy forwarding to one, is read and saved through them, not the memory store's
plain shortcuts (which stand only for the coroutines defined beside them)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from typed_sessions.adapters.middleware import session_middleware
from typed_sessions.core.ids import SessionId
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory import MemoryStore
from typed_sessions.stores.protocol import Conflict, StoreUnavailableError

from .conftest import BASE

pytestmark = pytest.mark.anyio


class ReplicatingStore(MemoryStore[dict[str, Any]]):
    """A user's MemoryStore subclass that overrides the lane's (async) methods: it
    mirrors every lane save somewhere else, counts loads, and can be told to fail.
    It defines neither ``load_record_now`` nor ``save_record_now`` itself."""

    def __init__(self) -> None:
        super().__init__(dict[str, Any])
        self.mirrored: list[SessionId] = []
        self.lane_loads = 0
        self.fail_save = False
        self.fail_load = False

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        self.lane_loads += 1
        if self.fail_load:
            raise StoreUnavailableError("replica down")
        return await super().load_record(session_id)

    async def save_record(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        if self.fail_save:
            raise StoreUnavailableError("replica down")
        conflict = await super().save_record(session_id, loaded, data, last, expires)
        if conflict is None:
            self.mirrored.append(session_id)
        return conflict


class DelegatingStore:
    """A user's own lane: a thin proxy around a MemoryStore that wraps the lane methods
    it knows of (the RecordLane protocol's) and forwards everything else."""

    def __init__(self) -> None:
        self.inner: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
        self.fail_save = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        return await self.inner.load_record(session_id)

    async def save_record(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        if self.fail_save:
            raise StoreUnavailableError("down")
        return await self.inner.save_record(session_id, loaded, data, last, expires)


def _client(store: Any) -> httpx.AsyncClient:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys="k" * 40)

    @app.get("/set/{value}")
    async def set_value(value: str, request: Request) -> dict[str, Any]:
        session = request.state.session.get_session()
        session["v"] = value
        return dict(session)

    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE)


async def test_overridden_save_record_of_a_memory_store_subclass_is_still_called() -> None:
    store = ReplicatingStore()
    async with _client(store) as client:
        first = await client.get("/set/a")  # a new session: typed save
        assert first.status_code == 200
        second = await client.get("/set/b")  # the usual resave
        assert second.status_code == 200
        assert len(store.mirrored) == 1, "the subclass's save_record was not called"


async def test_overridden_load_record_of_a_memory_store_subclass_is_still_called() -> None:
    store = ReplicatingStore()
    async with _client(store) as client:
        await client.get("/set/a")
        second = await client.get("/set/b")
        assert second.status_code == 200
        assert store.lane_loads == 1, "the subclass's load_record was not called"


class RevokingStore(MemoryStore[dict[str, Any]]):
    """A user's MemoryStore subclass whose ``load_record`` hides revoked sessions (for
    example, revoked by an admin tool elsewhere)."""

    def __init__(self) -> None:
        super().__init__(dict[str, Any])
        self.revoked: set[str] = set()

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        if session_id in self.revoked:
            return None
        return await super().load_record(session_id)


async def test_a_session_hidden_by_an_overridden_load_record_is_not_adopted() -> None:
    """A revoked session is not adopted (an empty session)."""
    store = RevokingStore()
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys="k" * 40)

    @app.get("/login")
    async def login(request: Request) -> dict[str, Any]:
        request.state.session.get_session()["user"] = "alice"
        return {"id": request.state.session.get_session_id()}

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return dict(request.state.session.get_session())

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        session_id = (await client.get("/login")).json()["id"]
        store.revoked.add(session_id)
        response = await client.get("/me")
        assert response.json() == {}, "a session revoked by load_record was adopted"


async def test_failing_overridden_save_record_still_answers_503() -> None:
    """A save failure the subclass raises is a 503, not a 200 with the record saved
    behind its back."""
    store = ReplicatingStore()
    async with _client(store) as client:
        assert (await client.get("/set/a")).status_code == 200
        store.fail_save = True
        second = await client.get("/set/b")
        assert second.status_code == 503


async def test_delegating_lane_proxy_save_failure_still_answers_503() -> None:
    """A user's own lane (no ``*_now`` methods of its own) that forwards other
    attributes: its ``save_record`` decides."""
    store = DelegatingStore()
    async with _client(store) as client:
        first = await client.get("/set/a")
        assert first.status_code == 200
        store.fail_save = True
        second = await client.get("/set/b")
        assert second.status_code == 503


def test_only_the_memory_store_itself_is_an_instant_lane() -> None:
    from typed_sessions.adapters.settings import instant_lane_of

    store: MemoryStore[dict[str, Any]] = MemoryStore(dict[str, Any])
    assert instant_lane_of(store) is store
    assert instant_lane_of(ReplicatingStore()) is None
    assert instant_lane_of(RevokingStore()) is None
    assert instant_lane_of(DelegatingStore()) is None  # pyright: ignore[reportArgumentType]
    assert instant_lane_of(None) is None
