"""Writing a session against concurrent writers: every retry and every ID move, once.

A store's ``save`` is a compare-and-set, so a writer that loaded an older version is
refused with ``Err(Conflict)``. Three algorithms build on that, and everything else in
the library (``update_session``, the lifecycle helpers, the middleware) calls them:

- :func:`save_rebasing`: save, and on a conflict load the newest record, rebuild the
  candidate from it (the caller says how) and try again, with jittered waits;
- :func:`update_session`: the same with a pure function of the data;
- :func:`move_session`: save the session under a new ID, then end the old record with a
  compare-and-set, carrying any concurrent change to the new record first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final, TypeAlias, TypeVar

from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.defaults import DEFAULT_ATTEMPTS
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.retry import retry_delay
from typed_sessions.core.session import (
    Expiry,
    Session,
    expire_session,
    is_expired,
    replace_data,
    touch_session,
)
from typed_sessions.core.subjects import Device
from typed_sessions.stores.protocol import Conflict, SessionStore, StoreError

__all__ = [
    "SessionNotFound",
    "TooManyConflicts",
    "UpdateError",
    "discard",
    "move_session",
    "retry_rebasing",
    "save_rebasing",
    "update_session",
]

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
"""Why a write gave up: the session is gone, or it kept changing."""

_NOT_FOUND: Final[Err[SessionNotFound]] = Err(SessionNotFound())

Rebase: TypeAlias = Callable[[Session[T]], Awaitable[Session[T]]]
"""Rebuilds the candidate from the newest stored record after a conflict."""


def _check_attempts(attempts: int) -> None:
    if attempts < 1:
        raise ValueError("attempts must be at least 1")


async def save_rebasing(
    store: SessionStore[T],
    candidate: Session[T],
    rebase: Rebase[T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Clock = utc_now,
) -> Result[Session[T], UpdateError]:
    """Save ``candidate``; on a conflict, rebase it on the newest record and try again.

    After a refused save it waits a short random time (so colliding writers spread out),
    loads the newest record and saves ``await rebase(newest)``, up to ``attempts`` saves
    in all. Stops at once when the record is gone or expired. Returns the saved record,
    ``Err(SessionNotFound())`` or ``Err(TooManyConflicts(...))``.

    Raises:
        StoreError: the store failed.
        ValueError: ``attempts`` is less than 1.
    """
    _check_attempts(attempts)
    result = await store.save(candidate)
    if isinstance(result, Ok):
        return result
    return await retry_rebasing(
        store, candidate, result.error, rebase, attempts=attempts, clock=clock
    )


async def retry_rebasing(
    store: SessionStore[T],
    refused: Session[T],
    conflict: Conflict,
    rebase: Rebase[T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Clock = utc_now,
) -> Result[Session[T], UpdateError]:
    """:func:`save_rebasing` after its first save, ``refused``, met ``conflict``: for
    callers that make the first save themselves and enter this only after a conflict."""
    candidate = refused
    for attempt in range(attempts - 1):
        if conflict.found is None:  # deleted or expired under us
            return _NOT_FOUND
        await asyncio.sleep(retry_delay(attempt))
        latest = await store.load(candidate.id)
        if latest is None or is_expired(latest, now=clock()):
            return _NOT_FOUND
        candidate = await rebase(latest)
        result = await store.save(candidate)
        if isinstance(result, Ok):
            return result
        conflict = result.error
    if conflict.found is None:
        return _NOT_FOUND
    return Err(TooManyConflicts(attempts, conflict))


async def update_session(
    store: SessionStore[T],
    session: SessionId | Session[T],
    fn: Callable[[T], T],
    *,
    expiry: Expiry | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
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
    _check_attempts(attempts)
    current = await store.load(session) if isinstance(session, str) else session
    if current is None or is_expired(current, now=clock()):
        return _NOT_FOUND

    async def changed(record: Session[T]) -> Session[T]:
        now = clock()
        new = replace_data(record, fn(record.data), now=now)
        return new if expiry is None else touch_session(new, expiry, now=now)

    return await save_rebasing(
        store, await changed(current), changed, attempts=attempts, clock=clock
    )


class _EndedWithTheOld(Exception):
    """The new record expired with the old one while moving (they share a deadline)."""


async def move_session(
    store: SessionStore[T],
    session: Session[T],
    data: T,
    rebase_data: Callable[[T], T],
    *,
    expiry: Expiry,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Clock = utc_now,
    new_id: SessionId | None = None,
    on_orphan: Callable[[SessionId], object] | None = None,
    signed_in: str | None = None,
    device: Device | None = None,
) -> Result[Session[T], UpdateError]:
    """Move ``session`` to a new ID holding ``data``, then end the old record.

    The new record keeps the old one's lifetime and is saved first. The old record is then
    ended with a compare-and-set; when another request saved it meanwhile, ``rebase_data``
    (no side effects: it may run more than once) turns the newest data into the new
    record's, which is saved, and the ending tried again. Nothing is lost, and whatever
    fails, fails while the old session still stands.

    Returns the new record; ``Err(SessionNotFound())`` when the old session had ended (the
    new record is removed, the old never brought back); ``Err(TooManyConflicts(...))``
    when it kept changing (the new record removed, the old left as it was).
    ``signed_in``: a subject that has just authenticated: the new record is its, with
    ``auth_time`` now (and ``device``, when given); the old session is read first, so
    that a sign-in of a session already ended saves nothing (with ``max_per_subject``,
    that save would end the subject's oldest sessions). ``on_orphan`` is told the ID of a new
    record that could not be removed again (it expires by itself; nobody holds its token).

    Raises:
        StoreError: the store failed, or held the fresh ID already; the old session is
            left as it was and the new record removed (best effort).
        Exception: whatever ``rebase_data`` raised, with the old session left as it was.
    """
    _check_attempts(attempts)
    now = clock()
    if signed_in is not None:  # its save may end the subject's oldest sessions (a cap):
        current = await store.load(session.id)  # so not for a session already ended
        if current is None or is_expired(current, now=now):
            return _NOT_FOUND
    fresh = replace(replace_data(session, data, now=now), id=new_id or new_session_id(), version=0)
    if signed_in is not None:
        fresh = replace(fresh, subject=signed_in, auth_time=now, device=device or fresh.device)
    saved = await store.save(touch_session(fresh, expiry, now=now))
    if not isinstance(saved, Ok):  # a fresh 256-bit ID already taken: never expected
        raise StoreError("the store already holds a freshly generated session ID")
    return await _end_moved(store, session, saved.value, rebase_data, attempts, clock, on_orphan)


async def _end_moved(
    store: SessionStore[T],
    session: Session[T],
    moved: Session[T],
    rebase_data: Callable[[T], T],
    attempts: int,
    clock: Clock,
    on_orphan: Callable[[SessionId], object] | None,
) -> Result[Session[T], UpdateError]:
    """End ``session``, carrying what others saved to it meanwhile into ``moved``."""

    async def carry(latest: Session[T]) -> Session[T]:
        nonlocal moved
        result = await store.save(replace_data(moved, rebase_data(latest.data), now=clock()))
        if isinstance(result, Ok):
            moved = result.value
        elif result.error.found is None:
            raise _EndedWithTheOld
        else:  # nobody else knows the new ID: not expected
            raise StoreError("the new session record changed while moving")
        return expire_session(latest)

    try:
        ended = await save_rebasing(
            store, expire_session(session), carry, attempts=attempts, clock=clock
        )
    except _EndedWithTheOld:
        ended = _NOT_FOUND
    except BaseException:
        # Shielded: a cancellation that comes again (anyio's does, until the scope
        # ends) would cancel the removal too, and leave a record nobody holds a token for.
        await asyncio.shield(_remove(store, moved.id, on_orphan))
        raise
    if isinstance(ended, Err):
        await _remove(store, moved.id, on_orphan)
        return ended
    return Ok(moved)


async def _remove(
    store: SessionStore[T], session_id: SessionId, on_orphan: Callable[[SessionId], object] | None
) -> None:
    if not await discard(store, session_id) and on_orphan is not None:
        on_orphan(session_id)


async def discard(store: SessionStore[T], session_id: SessionId) -> bool:
    """Delete a record no client holds a token for; ``False`` when the store failed
    (the orphan then expires by itself)."""
    try:
        await store.delete(session_id)
    except StoreError:
        return False
    return True
