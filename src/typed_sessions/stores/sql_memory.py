"""SQLite in memory that outlives a connection, for :meth:`SqlStore.from_url`.

An in-memory SQLite database lives in its connection: when a call is cancelled midway
(by its timeout, say), SQLAlchemy closes that connection, and every session with it.
:func:`lasting_engine` therefore turns a URL for SQLite in memory into a named in-memory
database with a shared cache, which a plain ``sqlite3`` connection (the keeper, idle)
holds open until :func:`release`; the engine's one connection can then be replaced
without losing anything. Its pool lends that connection to one call at a time (a
queue of one, not a ``StaticPool`` shared by every task): a call cancelled midway closes
the connection it alone was using, and the calls waiting get a new one. Other URLs get
a plain engine.
"""

from __future__ import annotations

import sqlite3
import uuid
import weakref
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

__all__ = ["lasting_engine", "release"]

# Each keeper is closed by release(), or else when its engine is collected.
_KEEPERS: WeakKeyDictionary[AsyncEngine, weakref.finalize[Any, Any]] = WeakKeyDictionary()


def lasting_engine(url: str, **engine_options: Any) -> AsyncEngine:
    """``create_async_engine(url, **engine_options)``, SQLite in memory kept open."""
    made = make_url(url)
    if made.get_backend_name() != "sqlite" or made.database not in (None, "", ":memory:"):
        return create_async_engine(url, **engine_options)
    name = f"file:typed_sessions_{uuid.uuid4().hex}"
    keeper = sqlite3.connect(f"{name}?mode=memory&cache=shared", uri=True, check_same_thread=False)
    query = {**made.query, "mode": "memory", "cache": "shared", "uri": "true"}
    if "poolclass" not in engine_options:  # one connection, lent to one call at a time
        engine_options.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0)
    engine = create_async_engine(made.set(database=name, query=query), **engine_options)
    _KEEPERS[engine] = weakref.finalize(engine, keeper.close)
    return engine


def release(engine: AsyncEngine) -> None:
    """Close the keeper of ``engine``'s in-memory database, if it has one (it is gone)."""
    close = _KEEPERS.pop(engine, None)
    if close is not None:
        close()
