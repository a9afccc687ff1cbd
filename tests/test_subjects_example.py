"""The subjects example of the docs, run on the memory store and on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from examples import docs_subjects as example
from typed_sessions import MemoryStore, session_handle

from .stores import redis_harness

pytestmark = pytest.mark.anyio

Store = example.Store


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore(dict[str, Any])
        return
    async with redis_harness() as harness:
        yield harness.store


async def test_a_users_sessions(store: Store) -> None:
    laptop = await example.sign_in(store, "42", "Firefox/133", "203.0.113.9")
    phone = await example.sign_in(store, "42", "Mobile Safari\r\nX-Evil: 1", "2001:db8:5::1")
    tablet = await example.sign_in(store, "42", None, "not an address")
    someone_else = await example.sign_in(store, "7", "Chrome", None)

    page = await example.my_sessions(store, "42", current=laptop.id)
    assert [(i.handle, i.current) for i in page] == [
        (session_handle(laptop.id), True),
        (session_handle(phone.id), False),
        (session_handle(tablet.id), False),
    ]
    devices = [i.device for i in page]
    assert [(d.user_agent, d.address) for d in devices if d is not None] == [
        ("Firefox/133", "203.0.113.0/24"),
        ("Mobile SafariX-Evil: 1", "2001:db8:5::/48"),
        ("", None),
    ]
    assert all(i.subject == "42" for i in page)

    # Another user's handle, from the page of user 7: refused, nothing ends.
    assert not await example.sign_out_device(store, "42", session_handle(someone_else.id))
    assert await example.sign_out_device(store, "42", page[2].handle)
    assert await store.load(tablet.id) is None

    assert await example.sign_out_everywhere_else(store, "42", laptop.id) == 1
    assert await store.load(phone.id) is None
    assert await store.load(laptop.id) == laptop

    assert await example.disable_account(store, "42") == 1
    assert await example.my_sessions(store, "42", current=laptop.id) == []
    assert await store.load(someone_else.id) == someone_else


async def test_a_store_without_the_index_is_refused_clearly() -> None:
    class Plain:  # a SessionStore, but no subject index
        load = save = delete = None

    with pytest.raises(RuntimeError, match="keeps no subject index"):
        example.index_of(Plain())  # type: ignore[arg-type]  # not a SessionStore on purpose
