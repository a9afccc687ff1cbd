"""Purging a :class:`~typed_sessions.stores.sql.SqlStore`'s expired rows: bounded
batches through the expiry index, once or in a background task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import Delete, Table, bindparam, delete, select

from typed_sessions.stores.protocol import StoreError
from typed_sessions.stores.sql_calls import SqlCalls

__all__ = ["purge_expired", "purge_statement", "purging"]

_logger = logging.getLogger("typed_sessions.stores.sql")


async def purge_expired(
    calls: SqlCalls, table: Table, now: Callable[[], int], *, batch: int
) -> int:
    """Delete ``table``'s expired rows, ``batch`` at most per statement; return how many.

    Raises:
        ValueError: ``batch`` is less than 1.
        StoreUnavailableError: the database cannot be reached in time or failed.
    """
    check_batch(batch)
    statement = purge_statement(table, calls.engine.dialect.name, batch)
    total = 0
    while True:
        deleted = await calls.write(statement, {"b_now": now()}, retry_stale=True)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let the requests of this process in between


@asynccontextmanager
async def purging(
    purge: Callable[..., Awaitable[int]], every: timedelta, *, batch: int
) -> AsyncGenerator[asyncio.Task[None], None]:
    """Run ``purge(batch=batch)`` every ``every`` in a background task for the block."""
    if every <= timedelta(0):
        raise ValueError("every must be positive")
    check_batch(batch)  # here, not in the task, where it would end the task unseen
    task = asyncio.create_task(_purge_forever(purge, every, batch))
    try:
        yield task
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise


async def _purge_forever(
    purge: Callable[..., Awaitable[int]], every: timedelta, batch: int
) -> None:
    while True:
        try:
            purged = await purge(batch=batch)
        except StoreError as exc:
            _logger.warning("purging expired sessions failed (%s)", type(exc).__name__)
        except Exception:  # a bug: say so at every turn, never die unseen
            _logger.exception("purging expired sessions failed")
        else:
            _logger.debug("purged %d expired sessions", purged)
        await asyncio.sleep(every.total_seconds())


def check_batch(batch: int) -> None:
    """Raise ``ValueError`` unless ``batch`` is at least 1."""
    if batch < 1:
        raise ValueError("batch must be at least 1")


def purge_statement(t: Table, dialect: str, batch: int) -> Delete:
    """One bounded batch: ``batch`` expired rows at most, found through the expiry index."""
    expired = t.c.expires_at <= bindparam("b_now")
    if dialect in ("mysql", "mariadb"):  # no LIMIT in a subquery there; DELETE takes one
        return delete(t).where(expired).with_dialect_options(mysql_limit=batch)
    oldest = select(t.c.key).where(expired).order_by(t.c.expires_at).limit(batch)
    if dialect == "postgresql":  # two purgers at once share the work instead of waiting
        oldest = oldest.with_for_update(skip_locked=True)
    return delete(t).where(t.c.key.in_(oldest.scalar_subquery()), expired)
