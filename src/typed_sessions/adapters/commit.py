"""Carrying out a request's :class:`~typed_sessions.adapters.outcome.Outcome`: the writes.

The only I/O of the middleware's session handling besides the load. Conflicts are left
to the stores layer's operations (:mod:`typed_sessions.stores.operations`), entered only
after a real conflict: the common save is one ``store.save``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Final, NamedTuple

from typed_sessions.adapters.errors import ConcurrentChangeError, SessionConflictError
from typed_sessions.adapters.outcome import (
    Create,
    Outcome,
    Reads,
    Record,
    Regenerate,
    Resave,
    Snapshot,
    Touch,
    Update,
    changed,
)
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.core.changes import KeyChanges, apply_changes, diff_data, lost_reads
from typed_sessions.core.clock import EPOCH, MICROSECOND
from typed_sessions.core.cookies import render_set_cookie
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Ok, Result
from typed_sessions.core.session import new_session, replace_data, touch_session, used_with_data
from typed_sessions.core.signing import sign_session_id
from typed_sessions.core.tuples import new_tuple
from typed_sessions.stores.operations import (
    SessionNotFound,
    TooManyConflicts,
    UpdateError,
    move_session,
    retry_rebasing,
)
from typed_sessions.stores.protocol import Conflict

__all__ = ["Settled", "carry_out"]


class Settled(NamedTuple):
    """What carrying out an outcome left: the ``Set-Cookie`` value to send (if any), the
    stored session the client holds afterwards (if any), the record an update saved, and
    the JSON of its data when known (``text``)."""

    cookie: str | None
    session_id: SessionId | None
    saved: Record | None = None
    text: str | None = None


_NO_COOKIE: Final = Settled(None, None)


async def carry_out(
    outcome: Outcome, settings: SessionSettings, newest: Record | None = None
) -> Settled:
    """Write what ``outcome`` says: delete, then save; return the cookie to send.

    ``newest``: the newest record of the session this worker knows of (one it saved
    itself a moment ago). An update that loaded an older version is then merged into it
    (or refused) without a failed save and a reload.

    Raises:
        StoreError: the store failed, or the session kept changing
            (:class:`SessionConflictError`); the client gets 503 and no cookie.
        ConcurrentChangeError: another request changed what this one read; nothing of
            this request was saved (the client gets 409).
    """
    if outcome.delete is not None:
        await settings.store.delete(outcome.delete)
        settings.log(logging.INFO, "session invalidated", outcome.delete)
    write = outcome.write
    if type(write) is Resave:  # the usual write: _resave's first try, without the call
        lane, session_id, stored = settings.lane, write.session_id, write.stored
        assert lane is not None  # the record came from it
        conflict: Conflict | None = None
        if newest is None or newest.version <= stored.version:
            text = write.text
            data = None if text is None else text.encode()
            conflict = await lane.save_record(session_id, stored, data, write.last, write.expires)
            if conflict is None:
                settled: Settled = new_tuple(Settled, (None, session_id, None, None))
                return settled
        return await _resave(write, settings, newest, conflict)
    if type(write) is Update:
        saved = await _save_changes(write, settings, outcome.now, newest)
        # Saved as planned (not merged into newer data): its JSON is the planned one.
        return Settled(
            None, write.record.id, saved, write.text if saved.data is write.data else None
        )
    if type(write) is Touch:
        return await _touch(write.record, settings)
    if type(write) is Create:
        return await _create(write, settings, outcome.now)
    if type(write) is Regenerate:
        return await _regenerate(write, settings, outcome.now)
    return Settled(settings.clear_cookie, None) if outcome.clear_cookie else _NO_COOKIE


async def _resave(
    write: Resave, settings: SessionSettings, newest: Record | None, conflict: Conflict | None
) -> Settled:
    """A record loaded as stored (see :class:`Resave`) lost a race (``conflict``), or
    ``newest`` shows it lost one: merge as :func:`_save_changes` does, from its
    ``Session``; a touch is dropped (the other save slid the expiry too)."""
    session_id, lane = write.session_id, settings.lane
    assert lane is not None  # the record came from it
    if write.data is None:
        settings.log(logging.DEBUG, "expiry not extended: record changed", session_id)
        return Settled(None, session_id)
    assert write.before is not None  # given with the changed data
    now = EPOCH + MICROSECOND * write.last  # the request's time
    record = lane.session_of(session_id, write.stored)
    update = Update(record, write.data, write.before, write.reads)
    saved = await _save_changes(update, settings, now, newest, conflict)
    return Settled(None, session_id, saved)


async def _touch(record: Record, settings: SessionSettings) -> Settled:
    result = await settings.store.save(record)
    if not isinstance(result, Ok):  # saved meanwhile (which slid the expiry too) or ended
        settings.log(logging.DEBUG, "expiry not extended: record changed", record.id)
    return Settled(None, record.id)


async def _create(write: Create, settings: SessionSettings, now: datetime) -> Settled:
    session_id = write.session_id or new_session_id()
    signed_in = write.signed_in
    session = new_session(
        write.data, settings.expiry, now=now, session_id=session_id,
        subject=None if signed_in is None else signed_in.subject,
        auth_time=None if signed_in is None else now,
        device=None if signed_in is None else signed_in.device,
    )  # fmt: skip
    result = await settings.store.save(session)
    if not isinstance(result, Ok):  # a fresh 256-bit ID already taken: never expected
        settings.log(logging.WARNING, "a new session ID collided with a stored one")
        raise SessionConflictError("a new session ID collided with a stored one")
    settings.log(logging.INFO, "session saved under a new ID", session_id)
    return Settled(_cookie(session_id, settings, now), session_id)


def _cookie(session_id: SessionId, settings: SessionSettings, now: datetime) -> str:
    return render_set_cookie(
        settings.cookie, sign_session_id(session_id, settings.keyring, now=now)
    )


class _Merge:
    """Replays this request's key changes onto newer data, unless another writer changed
    something this request read: then it raises :class:`ConcurrentChangeError`."""

    __slots__ = ("_before", "_changes", "_data", "_reads")

    def __init__(self, before: Snapshot | None, data: dict[str, Any] | None, reads: Reads) -> None:
        self._before = before
        self._data = data
        self._reads = reads
        self._changes: tuple[dict[str, Any], KeyChanges] | None = None

    def __call__(self, newest: dict[str, Any]) -> dict[str, Any]:
        if self._data is None or self._before is None:  # the request changed nothing
            return newest
        if self._changes is None:  # found once, when first needed
            before = (
                json.loads(self._before) if isinstance(self._before, str) else dict(self._before)
            )
            self._changes = before, diff_data(before, self._data)
        before, changes = self._changes
        lost = lost_reads(before, newest, self._reads.reads())
        if lost:
            raise ConcurrentChangeError(lost)
        return apply_changes(newest, changes)


async def _save_changes(
    write: Update,
    settings: SessionSettings,
    now: datetime,
    newest: Record | None,
    conflict: Conflict | None = None,
) -> Record:
    """Save the request's data; on a conflict, merge its changes into the newest record.
    (``conflict``: the first save was tried already, and met this.)

    Returns the saved record.

    Raises:
        ConcurrentChangeError: another request changed what this one read, or the
            session ended meanwhile (invalidated, regenerated or expired elsewhere): it
            is never brought back, and this request's changes are refused (409), not
            silently dropped.
    """
    record = write.record
    if newest is None or newest.version <= record.version:
        candidate = used_with_data(record, write.data, settings.expiry, now=now)
        if conflict is None:
            first = await settings.store.save(candidate)
            if isinstance(first, Ok):  # the common case: no merge machinery at all
                return first.value
            conflict = first.error
        result = await _merge(write, settings, now, candidate, conflict)
    else:  # known to be stale: straight to the merge, from the newest record known
        result = await _merge(write, settings, now, None, newest)
    if isinstance(result, Ok):
        settings.log(logging.DEBUG, "session saved after a merge", record.id)
        return result.value
    if isinstance(result.error, SessionNotFound):
        settings.log(logging.INFO, "session ended meanwhile; changes refused", record.id)
        raise ConcurrentChangeError(frozenset(write.data), ended=True)
    raise _gave_up(result.error, record.id, settings)


async def _merge(
    write: Update,
    settings: SessionSettings,
    now: datetime,
    refused: Record | None,
    known: Conflict | Record,
) -> Result[Record, UpdateError]:
    """Merge the request's changes into the newest record, or refuse: after ``refused``
    met a conflict (``known`` is the :class:`Conflict`), or from the newest record
    (``known``) when it is known already."""
    expiry, store = settings.expiry, settings.store
    merge = _Merge(write.before, write.data, write.reads)

    async def rebase(newest: Record) -> Record:
        settings.log(logging.DEBUG, "session changed meanwhile; merging", newest.id)
        return replace_data(touch_session(newest, expiry, now=now), merge(newest.data), now=now)

    attempts = settings.save_attempts  # merges, each saved
    if isinstance(known, Conflict):
        assert refused is not None
        conflict = known
        attempts += 1  # retry_rebasing counts the refused save, which merged nothing
    else:
        refused = await rebase(known)
        first = await store.save(refused)
        if isinstance(first, Ok):
            return first
        conflict = first.error
    return await retry_rebasing(
        store, refused, conflict, rebase, attempts=attempts, clock=lambda: now
    )


def _gave_up(
    error: TooManyConflicts, session_id: SessionId, settings: SessionSettings
) -> SessionConflictError:
    """The error for a session that kept changing (logged once, at WARNING)."""
    settings.log(logging.WARNING, "session kept changing; not saved", session_id)
    return SessionConflictError(f"session still stale after {error.attempts} attempts")


async def _regenerate(write: Regenerate, settings: SessionSettings, now: datetime) -> Settled:
    """Move the session to its new ID: save the new record, then end the old one.

    In that order, a store failure at any step leaves the old session working (the new
    record is removed again, best effort) and the client gets 503 without a cookie.
    Changes other requests saved meanwhile are carried to the new record before the
    old one ends. If the old session ended meanwhile (a logout elsewhere, or another
    request's new ID), it is not brought back: the new record is removed and no cookie
    is sent; a request that changed the data or signed a user in is then refused.

    Raises:
        ConcurrentChangeError: the session ended meanwhile, and this request changed
            its data or signed a user in (409: nothing of it was saved).
    """
    record = write.record
    merge = _Merge(write.before, write.data, write.reads)
    result = await move_session(
        settings.store,
        record,
        record.data if write.data is None else write.data,
        merge,
        expiry=settings.expiry,
        attempts=settings.save_attempts,
        clock=lambda: now,
        new_id=write.new_id,
        signed_in=None if write.signed_in is None else write.signed_in.subject,
        device=None if write.signed_in is None else write.signed_in.device,
        on_orphan=lambda orphan: settings.log(
            logging.WARNING, "could not remove an unannounced record", orphan
        ),
    )
    if isinstance(result, Ok):
        settings.log(logging.INFO, "session regenerated; old record ended", record.id)
        return Settled(_cookie(write.new_id, settings, now), write.new_id)
    if isinstance(result.error, SessionNotFound):
        settings.log(logging.INFO, "session ended meanwhile; not regenerated", record.id)
        changes = _changes_of(write)
        if changes is not None:  # nothing of it was saved: no 2xx for it either
            raise ConcurrentChangeError(changes, ended=True)
        return _NO_COOKIE
    raise _gave_up(result.error, record.id, settings)


def _changes_of(write: Regenerate) -> frozenset[str] | None:
    """The keys a regeneration changed, if it changed any or signed a user in (then its
    loss is refused, not answered 2xx); ``None`` for a bare new ID."""
    data, before = write.data, write.before
    written = data is not None and before is not None and changed(data, before, written=True)
    if write.signed_in is None and not written:
        return None
    return frozenset(() if data is None else data)
