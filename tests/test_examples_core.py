"""The pure-core examples the docs include."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from examples import expiry_policy, key_rotation
from examples.custom_store import DictStore, as_store
from typed_sessions import Conflict, Err, Expiry, Ok, new_session, replace_data, utc_now


def test_key_rotation() -> None:
    assert key_rotation.main() == {
        "old token, during rotation": True,
        "new token, during rotation": True,
        "new token, after rotation": True,
        "old token, after rotation": False,
    }


def test_expiry_policy() -> None:
    assert expiry_policy.main() == [
        "created, expires 09:30",
        "request after 20 s: save needed = False",
        "request after 10 min: expires 09:40",
        "busy all day: ended 17:00 (absolute), refused at 17:10",
    ]


@pytest.mark.anyio
async def test_custom_store_honours_the_contract() -> None:
    store = as_store(DictStore(dict[str, Any]))
    session = new_session({"n": 1}, Expiry(), now=utc_now())
    first = await store.save(session)
    assert isinstance(first, Ok)
    assert await store.load(session.id) == first.value
    assert await store.save(session) == Err(Conflict(expected=0, found=1))
    second = await store.save(replace_data(first.value, {"n": 2}, now=utc_now()))
    assert isinstance(second, Ok)
    assert await store.save(first.value) == Err(Conflict(expected=1, found=2))
    await store.delete(session.id)
    assert await store.load(session.id) is None
    gone = new_session({"n": 0}, Expiry(idle=timedelta(seconds=1)), now=utc_now() - timedelta(1))
    assert isinstance(await store.save(gone), Ok)
    assert await store.load(gone.id) is None
