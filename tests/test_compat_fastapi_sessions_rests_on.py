"""The fastapi-sessions shim's update compares with the read its data rests on (found by a
review): the verifier's read however often the session was read since, a model built from
it, and two Redis backends of one URL. An update that answered 200 never drops another
request's change; if the data it rests on changed, 409 and nothing written."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from fastapi import Depends, FastAPI

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

    # the verifier's cart; the page's widgets each read the session (9 reads, in tasks
    # of their own); the cart the verifier gave is then changed in place and updated
    @app.post("/add-widgets/{item}")
    async def add_widgets(
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        assert gate is not None
        await gate.wait()
        await asyncio.gather(*(backend.read(session_id) for _ in range(9)))
        cart.items.append(item)
        await backend.update(session_id, cart)

    # the verifier's cart; a helper reads the session once more; the route builds a new
    # model from the verifier's cart (model_copy, or Cart(items=cart.items + [x]))
    @app.post("/add-copy/{how}/{item}")
    async def add_copy(
        how: str,
        item: str,
        session_id: UUID = Depends(cookie),  # noqa: B008
        cart: Cart = Depends(verifier),  # noqa: B008
    ) -> None:
        assert gate is not None
        await gate.wait()
        assert await backend.read(session_id) is not None  # e.g. a helper checks it
        if how == "model_copy":
            new = cart.model_copy(update={"items": [*cart.items, item]})
        else:
            new = Cart(items=[*cart.items, item])
        await backend.update(session_id, new)

    return app


async def test_after_nine_more_reads_the_verifiers_read_still_decides() -> None:
    """An update compares with the read that handed out the very object it saves,
    however often the session was read since: the first read is always kept (with 8
    kept in all, it was evicted, and the update compared with the latest read, which
    already held "pen": 200, and "pen" gone)."""
    status, stored = await race_with_pen(app_for, "/add-widgets/book")
    assert status == 409 or "pen" in stored, (status, stored)


@pytest.mark.parametrize("how", ["model_copy", "new_model"])
async def test_a_model_built_from_the_verifiers_cart_after_a_reread_is_refused(
    how: str,
) -> None:
    """The route builds a new Cart from the verifier's (stale) cart, after a helper read
    the session again (already with "pen"). The new object was never handed out: it
    compares with the first read, and the reads must agree (compared with the latest
    read, it answered 200 and dropped the other request's acknowledged "pen")."""
    status, stored = await race_with_pen(app_for, f"/add-copy/{how}/book")
    assert status == 409 or "pen" in stored, (status, stored)


async def test_two_redis_backends_of_one_url_share_their_reads() -> None:
    """ "This request read" counts reads through any backend over the same store. The
    verifier module and the routes module each made ``RedisBackend[UUID, Cart](URL)``
    (the same server and prefix: the same sessions), each with a store object of its
    own; keyed by that object, the route's update found no read and overwrote: 200,
    "pen" lost."""
    from .redis_server import delete_prefix_sync, require_redis, unique_prefix

    url = require_redis()
    prefix = unique_prefix()
    routes = RedisBackend[UUID, Cart](url, prefix=prefix)
    verifiers = RedisBackend[UUID, Cart](url, prefix=prefix)
    try:
        status, stored = await race_with_pen(app_for, "/add-gated/book", routes, verifiers)
    finally:
        await routes.aclose()
        await verifiers.aclose()
        delete_prefix_sync(url, prefix)
    assert status == 409 or "pen" in stored, (status, stored)
