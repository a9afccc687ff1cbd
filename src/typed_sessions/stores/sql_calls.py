"""How :class:`~typed_sessions.stores.sql.SqlStore` runs a statement: on a pooled
connection in autocommit mode, bounded in time, failures mapped to ``StoreError``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, NoReturn, TypeAlias, TypeVar

from sqlalchemy import (
    CursorResult,
    Delete,
    Engine,
    Executable,
    Insert,
    Select,
    Update,
    make_url,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.util import greenlet_spawn

from typed_sessions.stores.deadlines import CallLimit
from typed_sessions.stores.protocol import StoreCorruptError, StoreUnavailableError

__all__ = ["Query", "SqlCalls", "driver_limits", "unavailable"]

Query: TypeAlias = "Select[*tuple[Any, ...]]"
"""A ``SELECT`` of any columns (SQLAlchemy 2.1 types a ``Select`` by its column types)."""


def driver_limits(url: str, timeout: float | None, options: dict[str, Any]) -> None:
    """Bound the server's or driver's own waits by ``timeout`` as well, in the engine
    ``options`` of a URL (:meth:`SqlStore.from_url`): a call cancelled at its timeout
    stops waiting, but a statement the server is still running (waiting for a row lock)
    would otherwise commit later, and SQLite's busy wait (5 s by default) would hold the
    connection that long.

    - MySQL/MariaDB: ``innodb_lock_wait_timeout`` of each connection, in whole seconds
      and at least 1: a second less than ``timeout``, rounded up, so that the server
      gives a lock wait up before the client does (rounded up, it could commit after
      the 503; a ``timeout`` of a second or less keeps a short window);
    - SQLite: the driver's busy ``timeout``.

    Options already given are kept."""
    if timeout is None:
        return
    backend = make_url(url).get_backend_name()
    connect_args: dict[str, Any] = options.setdefault("connect_args", {})
    if backend in ("mysql", "mariadb"):
        seconds = max(1, math.ceil(timeout) - 1)
        connect_args.setdefault("init_command", f"SET SESSION innodb_lock_wait_timeout = {seconds}")
    elif backend == "sqlite":
        connect_args.setdefault("timeout", timeout)


class SqlCalls:
    """Runs one statement per call on ``engine``'s pool, within ``timeout`` seconds.

    On an engine in autocommit mode (``isolation_level="AUTOCOMMIT"``, as
    :meth:`SqlStore.from_url` makes its own) each statement commits itself; on any other,
    each runs in a transaction of its own, committed at once (one ``COMMIT`` more).
    """

    __slots__ = ("_commit", "_limit", "_loop", "_sync", "_whole", "engine")

    def __init__(self, engine: AsyncEngine, timeout: float | None) -> None:
        """Run calls on ``engine``, each bounded by ``timeout`` seconds (``None``: not)."""
        self.engine: AsyncEngine = engine
        self._limit = CallLimit(timeout)
        self._loop: asyncio.AbstractEventLoop | None = None  # the pool's connections' loop
        made = getattr(engine.dialect, "_on_connect_isolation_level", None)  # no public name
        # The level in effect: execution_options(isolation_level=...) may set another.
        level = engine.get_execution_options().get("isolation_level", made)
        self._commit = level != "AUTOCOMMIT"
        self._sync = engine.sync_engine
        # One connection for the whole pool (in-memory SQLite: it is the database), or a
        # transaction to end: a call is never cut off midway (see _whole).
        self._whole = self._commit or isinstance(engine.pool, _SOLE)

    async def ddl(self, run: Callable[..., Any], *, attempts: int = 1) -> None:
        """Run ``run(connection, checkfirst=True)`` (``Table.create`` or ``drop``) in a
        transaction of its own, within ``timeout``; again on a failure, up to
        ``attempts`` times in all (what another worker created meanwhile is then found)."""
        await self._same_loop()
        for attempt in range(1, attempts + 1):
            try:
                with self._limit():
                    async with self.engine.begin() as conn:
                        await conn.run_sync(run, checkfirst=True)
                return
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                if attempt == attempts:
                    unavailable(exc)

    async def _same_loop(self) -> None:
        """Drop the pool's connections when called on another event loop than before (a
        second ``asyncio.run``, a test client's own loop): theirs is gone with its loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # (Not a pool of one connection: in-memory SQLite's database lives in it.)
            if self._loop is not None and not isinstance(self.engine.pool, _SOLE):
                await self.engine.dispose(close=False)
            self._loop = loop

    async def fetch(
        self, statement: Query, params: Mapping[str, Any], *, retry_stale: bool = True
    ) -> tuple[Any, ...] | None:
        """Run a query and return its first row, or ``None``."""
        rows = await self._run(_first_row, statement, params, retry_stale=retry_stale)
        return rows[0] if rows else None

    async def fetch_all(
        self, statement: Query, params: Mapping[str, Any], *, retry_stale: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run a query and return its rows.

        ``retry_stale``: run it again once on a connection the pool found dead (a query
        may run twice)."""
        return await self._run(_all_rows, statement, params, retry_stale=retry_stale)

    async def write(
        self,
        statement: Insert | Update | Delete,
        params: Mapping[str, Any],
        *,
        retry_stale: bool = False,
    ) -> int:
        """Run a write and return its row count; ``IntegrityError`` passes through.

        ``retry_stale``: run it again once on a connection the pool found dead (only for
        writes that may run twice: deletes)."""
        return await self._run(_row_count, statement, params, retry_stale=retry_stale)

    async def _run(
        self,
        consume: Callable[[CursorResult[Any]], _R],
        statement: Executable,
        params: Mapping[str, Any],
        *,
        retry_stale: bool,
    ) -> _R:
        """Check out a connection, run ``statement``, ``consume`` its result, check the
        connection in: all of it in one hop to SQLAlchemy's synchronous core (where
        ``async with engine.connect()`` and ``execute`` would take three, a shielded
        task and about a quarter more time per statement)."""
        if asyncio.get_running_loop() is not self._loop:  # not on the first loop's pool
            await self._same_loop()
        try:
            with self._limit():
                for attempt in (1, 2):
                    try:
                        call = greenlet_spawn(
                            _execute, self._sync, consume, statement, params, self._commit
                        )
                        return await (_whole(call) if self._whole else call)
                    except IntegrityError:
                        raise
                    except DBAPIError as exc:
                        if not (retry_stale and attempt == 1 and exc.connection_invalidated):
                            raise
        except IntegrityError:
            raise
        except (SQLAlchemyError, OSError, TimeoutError, UnicodeError) as exc:
            # (UnicodeError: a driver that could not encode a value in its connection's
            # charset, aiomysql's with charset=latin1, raises it as it is.)
            if isinstance(exc, DBAPIError) and _NOT_UTF8 in str(exc.orig):
                # SQLite keeps any bytes as TEXT, and its driver cannot read them back.
                raise StoreCorruptError("a text column of the row is not UTF-8") from exc
            unavailable(exc)
        raise AssertionError("unreachable")  # pragma: no cover


_R = TypeVar("_R")
_SOLE: Final = (StaticPool, SingletonThreadPool)  # pools of one connection
_NOT_UTF8: Final = "Could not decode to UTF-8"


async def _whole(call: Coroutine[Any, Any, _R]) -> _R:
    """Await ``call`` to its end, even when the caller is cancelled (or times out): a
    call cut off midway may leave its connection checked out for good, or closed, and
    with it an in-memory SQLite database, which lives in the pool's one connection. The
    caller is told at once; the call ends by itself and gives its connection back."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_retrieved)
        raise


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark the outcome of a call nobody awaits any more as seen (no "never retrieved")."""
    if not task.cancelled():
        task.exception()


def _execute(
    engine: Engine,
    consume: Callable[[CursorResult[Any]], _R],
    statement: Executable,
    params: Mapping[str, Any],
    commit: bool,
) -> _R:
    """Run in SQLAlchemy's greenlet: the driver's I/O still awaits on the event loop."""
    with engine.connect() as conn:
        result = consume(conn.execute(statement, params))
        if commit:
            conn.commit()
        return result


def _first_row(result: CursorResult[Any]) -> list[tuple[Any, ...]]:
    row = result.first()
    return [] if row is None else [tuple(row)]


def _all_rows(result: CursorResult[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in result]


def _row_count(result: CursorResult[Any]) -> int:
    return int(result.rowcount)


def unavailable(exc: BaseException) -> NoReturn:
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, DBAPIError) and exc.orig is not None:
        reason = f"{type(exc.orig).__name__}: {str(exc.orig)[:200]}"
    else:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    raise StoreUnavailableError(f"SQL database unavailable ({reason})") from exc
