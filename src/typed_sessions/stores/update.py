"""Conflict-aware updates: apply a pure function to a stored session, losing no write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.retry import retry_delay
from typed_sessions.core.session import Expiry, Session, is_expired, replace_data, touch_session
from typed_sessions.stores.protocol import Conflict, SessionStore

__all__ = ["SessionNotFound", "TooManyConflicts", "UpdateError", "update_session"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SessionNotFound:
    """There is no live session under the ID (never created, ended or expired)."""


@dataclass(frozen=True, slots=True)
class TooManyConflicts:
    """Every attempt lost a race with another writer; ``last`` is the final conflict."""

    attempts: int
    last: Conflict


UpdateError: TypeAlias = SessionNotFound | TooManyConflicts
"""Why :func:`update_session` gave up: the session is gone, or it kept changing."""


async def update_session(
    store: SessionStore[T],
    session: SessionId | Session[T],
    fn: Callable[[T], T],
    *,
    expiry: Expiry | None = None,
    attempts: int = 20,
    clock: Clock = utc_now,
) -> Result[Session[T], UpdateError]:
    """Replace the data of a stored session with ``fn(data)``, retrying on conflict.

    Each attempt takes the newest record, applies ``fn`` to its data and saves with the
    store's compare-and-set; when another writer saved first, it waits a short random
    time and starts again, up to ``attempts`` times. So ``fn`` may run more than once and
    must have no side effects beyond its argument. ``session`` is an ID, or a record
    already loaded (say, by the session dependency): the first attempt then starts from
    that record, saving a store round trip, and ``fn`` gets that record's data object.
    With ``expiry``, the update also slides the idle deadline.

    Returns the saved record, ``Err(SessionNotFound())`` when there is no live session,
    or ``Err(TooManyConflicts(...))``. Store failures raise ``StoreError``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    session_id = session if isinstance(session, str) else session.id
    known = None if isinstance(session, str) else session
    last = Conflict(expected=0, found=None)
    for attempt in range(attempts):
        current = known if known is not None else await store.load(session_id)
        known = None
        now = clock()
        if current is None or is_expired(current, now=now):
            return Err(SessionNotFound())
        changed = replace_data(current, fn(current.data), now=now)
        if expiry is not None:
            changed = touch_session(changed, expiry, now=now)
        match await store.save(changed):
            case Ok(saved):
                return Ok(saved)
            case Err(conflict):
                last = conflict
                if conflict.found is None:  # deleted (or expired) under us
                    return Err(SessionNotFound())
        await asyncio.sleep(retry_delay(attempt))
    return Err(TooManyConflicts(attempts, last))
