"""Every acknowledged write is in the store: a concurrent write is merged or refused.

The authx-extra page's counter (read ``test_counter``, write it back plus one) from many
concurrent requests of one session: each answer is 200 or the documented 409, never a
5xx, and the stored counter equals the number of 200 answers. With ``take_turns=True``,
all answers are 200 and the count is exact. Run on the memory store (made to yield at
every call, so requests interleave) and on the real Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from examples.counter_middleware import create_app
from tests.conftest import SECRET
from tests.racing import Yielding
from tests.stores import HARNESSES
from typed_sessions import SessionDep, SessionStore, session_middleware
from typed_sessions.adapters.responses import CONFLICT

pytestmark = pytest.mark.anyio
BASE = "https://testserver"
STORES = ["memory", "redis"]


@asynccontextmanager
async def store_for(kind: str) -> AsyncGenerator[SessionStore[dict[str, Any]], None]:
    async with HARNESSES[kind]() as harness:
        yield Yielding(harness.store)


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncGenerator[httpx.AsyncClient, None]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def rounds(
    client: httpx.AsyncClient, path: str, *, rounds: int = 10, width: int = 32
) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    for _ in range(rounds):
        answers += await asyncio.gather(*(client.get(path) for _ in range(width)))
    return answers


def statuses(answers: list[httpx.Response]) -> list[int]:
    return [answer.status_code for answer in answers]


@pytest.mark.parametrize("kind", STORES)
async def test_the_pages_counter_counts_every_acknowledged_increment(kind: str) -> None:
    async with store_for(kind) as store, client_for(create_app(SECRET, store=store)) as client:
        assert (await client.get("/session_test")).json() == {"test_counter": 1}
        answers = await rounds(client, "/session_test")
        final = (await client.get("/session_test")).json()["test_counter"] - 1
    codes = statuses(answers)
    assert set(codes) <= {200, 409}, codes
    assert final == 1 + codes.count(200)  # every 200 counted, no 409 counted
    assert 409 in codes  # they did race (else this test shows nothing)
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json() == {"detail": CONFLICT}
    assert refused.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("kind", STORES)
async def test_taking_turns_answers_every_request_and_counts_exactly(kind: str) -> None:
    async with store_for(kind) as store:
        app = create_app(SECRET, store=store, take_turns=True)
        async with client_for(app) as client:
            await client.get("/session_test")
            answers = await rounds(client, "/session_test")
            final = (await client.get("/session_test")).json()["test_counter"]
    assert statuses(answers) == [200] * 320
    assert sorted(a.json()["test_counter"] for a in answers) == list(range(2, 322))
    assert final == 322


def cart_app(store: SessionStore[dict[str, Any]], **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(session_middleware, store=store, keys=SECRET, **options)

    @app.get("/add/{item}")
    async def add(item: str, session: SessionDep) -> list[str]:
        data = session.get_session()
        data["cart"] = [*data.get("cart", []), item]
        return list(data["cart"])

    @app.get("/set/{key}/{value}")
    async def set_key(key: str, value: str, session: SessionDep) -> str:
        session.get_session()[key] = value  # written, never read
        return value

    @app.get("/skew")
    async def skew(session: SessionDep) -> str:
        data = session.get_session()
        if data.get("a") == "before":  # decides on a...
            await gate.wait()  # (meanwhile, another request changes a)
            data["b"] = "decided on a=before"  # ...and writes b
        return "ok"

    gate = asyncio.Event()
    app.state.gate = gate
    later = asyncio.Event()
    app.state.later = later

    @app.get("/set-later/{key}/{value}")
    async def set_later(key: str, value: str, session: SessionDep) -> str:
        data = session.get_session()  # loaded now...
        await later.wait()
        data[key] = value  # ...written blind later
        return value

    @app.get("/read")
    async def read(session: SessionDep) -> dict[str, Any]:
        return dict(session.get_session())

    @app.get("/iterate-and-write")
    async def iterate(session: SessionDep) -> int:
        data = session.get_session()
        count = len(data)  # the key set was read
        await gate.wait()  # (meanwhile, another request adds a key)
        data["count"] = count
        return count

    return app


@pytest.mark.parametrize("kind", STORES)
async def test_two_requests_appending_to_one_cart_both_land_or_one_is_refused(kind: str) -> None:
    async with store_for(kind) as store, client_for(cart_app(store)) as client:
        await client.get("/add/first")
        for round_ in range(5):
            items = [f"x{round_}", f"y{round_}"]
            answers = await asyncio.gather(*(client.get(f"/add/{item}") for item in items))
            cart = (await client.get("/read")).json()["cart"]
            for item, answer in zip(items, answers, strict=True):
                assert answer.status_code in (200, 409)
                assert (item in cart) == (answer.status_code == 200)


@pytest.mark.parametrize("kind", STORES)
async def test_write_skew_is_refused(kind: str) -> None:
    """Reads a, writes b, while another request changes a: refused, b not written."""
    async with store_for(kind) as store:
        app = cart_app(store)
        async with client_for(app) as client:
            await client.get("/set/a/before")
            await client.get("/set/b/unset")
            skewed = asyncio.ensure_future(client.get("/skew"))
            await asyncio.sleep(0.05)  # /skew has read a and waits
            assert (await client.get("/set/a/x")).status_code == 200
            app.state.gate.set()
            assert (await skewed).status_code == 409
            assert (await client.get("/read")).json() == {"a": "x", "b": "unset"}


@pytest.mark.parametrize("kind", STORES)
async def test_write_skew_saved_first_lets_the_later_change_merge_in(kind: str) -> None:
    """The other order (docs/concurrency.md's table): the request that read a and wrote
    b saves first; the one changing a, loaded before, saves second and merges in, as
    nothing it read changed. Both 200: the order "skew, then change" is serializable."""
    async with store_for(kind) as store:
        app = cart_app(store)
        async with client_for(app) as client:
            await client.get("/set/a/before")
            await client.get("/set/b/unset")
            change = asyncio.ensure_future(client.get("/set-later/a/x"))
            skewed = asyncio.ensure_future(client.get("/skew"))
            await asyncio.sleep(0.05)  # both have loaded
            app.state.gate.set()
            assert (await skewed).status_code == 200
            app.state.later.set()
            assert (await change).status_code == 200
            final = (await client.get("/read")).json()
    assert final == {"a": "x", "b": "decided on a=before"}


@pytest.mark.parametrize("kind", STORES)
async def test_different_keys_from_fifty_requests_all_land(kind: str) -> None:
    async with store_for(kind) as store, client_for(cart_app(store)) as client:
        await client.get("/set/theme/dark")
        answers = await asyncio.gather(*(client.get(f"/set/k{i}/v{i}") for i in range(50)))
        data = (await client.get("/read")).json()
    assert statuses(list(answers)) == [200] * 50
    assert data == {"theme": "dark", **{f"k{i}": f"v{i}" for i in range(50)}}


@pytest.mark.parametrize("kind", STORES)
async def test_a_request_that_only_reads_is_never_refused(kind: str) -> None:
    async with store_for(kind) as store, client_for(cart_app(store)) as client:
        await client.get("/set/n/0")
        answers = await asyncio.gather(
            *(client.get("/read") for _ in range(30)),
            *(client.get(f"/set/n/{i}") for i in range(30)),
        )
    assert statuses(list(answers[:30])) == [200] * 30
    assert statuses(list(answers[30:])) == [200] * 30  # blind writes: the order of saves


async def test_reading_the_key_set_refuses_when_a_key_was_added() -> None:
    async with store_for("memory") as store:
        app = cart_app(store)
        async with client_for(app) as client:
            await client.get("/set/a/1")
            counted = asyncio.ensure_future(client.get("/iterate-and-write"))
            await asyncio.sleep(0.05)
            assert (await client.get("/set/new/1")).status_code == 200
            app.state.gate.set()
            assert (await counted).status_code == 409
            assert (await client.get("/read")).json() == {"a": "1", "new": "1"}


async def test_the_error_mapping_chooses_the_refusals_answer() -> None:
    from fastapi import HTTPException

    from typed_sessions import SessionFailure, default_error_mapping

    def mapping(failure: SessionFailure) -> Exception:
        if failure.kind == "conflict":
            return HTTPException(429, "busy, retry", headers={"Retry-After": "1"})
        return default_error_mapping(failure)

    async with store_for("memory") as store:
        app = cart_app(store, on_error=mapping)
        async with client_for(app) as client:
            await client.get("/add/first")
            answers: list[httpx.Response] = []
            for i in range(5):
                answers += await asyncio.gather(client.get(f"/add/a{i}"), client.get(f"/add/b{i}"))
    mapped = [a for a in answers if a.status_code != 200]
    assert mapped
    assert {a.status_code for a in mapped} == {429}
    assert mapped[0].json() == {"detail": "busy, retry"}
    assert mapped[0].headers["retry-after"] == "1"


async def test_a_turn_that_does_not_come_is_a_409() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    async with store_for("memory") as store:
        app = cart_app(store, take_turns=True, turn_timeout=0.05)

        @app.get("/slow")
        async def slow(session: SessionDep) -> str:
            session.get_session()["slow"] = True
            started.set()
            await release.wait()
            return "slow"

        async with client_for(app) as client:
            await client.get("/add/first")
            slow_answer = asyncio.ensure_future(client.get("/slow"))
            await started.wait()
            waited = await client.get("/add/second")
            async with client_for(app) as visitor:  # another visitor: no wait
                untouched = await visitor.get("/read")
            release.set()
            assert (await slow_answer).status_code == 200
    assert waited.status_code == 409
    assert waited.json() == {"detail": CONFLICT}
    assert untouched.status_code == 200
