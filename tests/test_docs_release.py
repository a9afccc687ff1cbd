"""The release branch's documented examples: testing an app over HTTPS (docs/testing.md)
and the rolling deploy of a new data model (docs/stores.md)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest

from typed_sessions import Expiry, MemoryStore, Ok, new_session, utc_now

STARLETTE_HTTPX = "ignore:Using `httpx` with `starlette.testclient`"  # Starlette 1.x


@pytest.mark.filterwarnings(STARLETTE_HTTPX)
def test_the_testing_example_runs_as_the_page_says() -> None:
    docs_testing = importlib.import_module("examples.docs_testing")
    docs_testing.test_login_then_whoami()
    docs_testing.test_plain_http_loses_the_secure_cookie()


def _share(old: MemoryStore[Any], new: MemoryStore[Any]) -> None:
    """Two deploys of the model over one storage (a Redis server, in production)."""
    new._entries = old._entries  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
async def test_the_upgrade_example_reads_both_ways() -> None:
    from examples.docs_upgrade import Cart, CartV1, downgrade, upgrade

    old: MemoryStore[CartV1] = MemoryStore(CartV1, upgrade=downgrade)
    new: MemoryStore[Cart] = MemoryStore(Cart, upgrade=upgrade)
    _share(old, new)
    expiry = Expiry(idle=timedelta(minutes=5))
    by_old = await old.save(new_session(CartV1(items=["tea"]), expiry, now=utc_now()))
    by_new = await new.save(new_session(Cart(lines=["jam"], currency="EUR"), expiry, now=utc_now()))
    assert isinstance(by_old, Ok)
    assert isinstance(by_new, Ok)
    read_by_new = await new.load(by_old.value.id)
    read_by_old = await old.load(by_new.value.id)
    assert read_by_new is not None
    assert read_by_old is not None
    assert read_by_new.data == Cart(lines=["tea"], currency="EUR")
    assert read_by_old.data == CartV1(items=["jam"])
    assert isinstance(await new.save(read_by_new), Ok)  # now stored in the new shape
    plain: MemoryStore[Cart] = MemoryStore(Cart)  # no upgrade: reads it as it is
    _share(new, plain)
    assert await plain.load(by_old.value.id) is not None
