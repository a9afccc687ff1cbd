"""The fastapi-sessions shim's record of reads: a request that read more sessions than its
record keeps, and Redis backends made differently over one server (found by a review:
both let an update overwrite another request's change)."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from typed_sessions.compat.fastapi_sessions import RedisBackend, StoreBackend

from . import compat_carts
from .compat_carts import Cart, cart_app, race_with_pen

pytestmark = pytest.mark.anyio
no_earlier_request = compat_carts.no_earlier_request  # autouse: a fresh record per test


def app_for(
    backend: StoreBackend[UUID, Cart],
    gate: asyncio.Event | None = None,
    verifier_backend: StoreBackend[UUID, Cart] | None = None,
) -> FastAPI:
    app, cookie, verifier = cart_app(backend, verifier_backend=verifier_backend, gate=gate)

    # the verifier's cart; the page then shows 64 other carts (e.g. a shared-wishlist
    # view reading the sessions of the user's other devices); optionally it re-reads its
    # own session; the verifier's cart is changed in place and updated
    @app.post("/many/{reread}/{item}")
    async def many(
        reread: str,
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        assert gate is not None
        others = [uuid4() for _ in range(64)]
        for other in others:
            await backend.create(other, Cart(items=[]))
        await gate.wait()
        for other in others:
            assert await backend.read(other) is not None
        if reread == "yes":
            assert await backend.read(session_id) is not None
        cart.items.append(item)
        await backend.update(session_id, cart)

    return app


@pytest.mark.parametrize("reread", ["no", "yes"])
async def test_a_record_that_forgot_a_session_refuses_what_it_cannot_check(reread: str) -> None:
    """The record keeps 64 sessions; reading 64 others lets the cart's entry go (its
    hand-out and what it saw). The update then finds no read (``no``) or only the re-read
    holding "pen" (``yes``), and the record says it forgot: 409 (it overwrote, or took
    the stale cart for the request's own object: 200, and "pen" dropped)."""
    status, stored = await race_with_pen(app_for, f"/many/{reread}/book")
    assert status == 409 or "pen" in stored, (status, stored)


@pytest.mark.parametrize("how", ["client", "store", "host and port", "no database"])
async def test_redis_backends_over_one_server_share_their_reads(how: str) -> None:
    """ "This request read" counts reads through any backend over the same store. The
    verifier's backend is made from a URL; the routes' from a client of the same server
    and prefix, or as ``StoreBackend(RedisStore(...))``, or from ``Redis(host, port)``
    while the verifier's URL names no database (redis-py leaves its defaults out of the
    pool's settings). Keyed by how each was made, the update found no read and
    overwrote: 200, "pen" lost. (A URL naming the server differently, ``localhost`` for
    ``127.0.0.1``, is another server to it.)"""
    from typed_sessions import RedisStore

    from .redis_server import delete_prefix_sync, require_redis, unique_prefix

    url = require_redis()
    prefix = unique_prefix()
    client = Redis.from_url(url)
    if how in ("host and port", "no database"):
        pool = client.connection_pool.connection_kwargs
        host, port = pool.get("host", "localhost"), pool.get("port", 6379)
        await client.aclose()
        url = f"redis://{host}:{port}"  # no database: the verifier's pool leaves db out
        client = (
            Redis(host=host, port=port) if how == "host and port" else Redis.from_url(url + "/0")
        )
    verifiers = RedisBackend[UUID, Cart](url, prefix=prefix)
    routes: StoreBackend[UUID, Cart]
    if how == "client":
        routes = RedisBackend[UUID, Cart](client, prefix=prefix)
    else:
        routes = StoreBackend[UUID, Cart](RedisStore(client, Cart, prefix=prefix))
    try:
        status, stored = await race_with_pen(app_for, "/add-gated/book", routes, verifiers)
    finally:
        await verifiers.aclose()
        await client.aclose()
        delete_prefix_sync(url, prefix)
    assert status == 409 or "pen" in stored, (status, stored)
