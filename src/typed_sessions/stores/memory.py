"""The embedded store: one process's memory, bounded, least recently used first out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.codec import SessionCodec
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import (
    Device,
    SessionInfo,
    check_subject,
    checked_subject,
    session_handle,
)
from typed_sessions.stores.protocol import Conflict, StoreCorruptError

__all__ = ["MemoryStore"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry:
    version: int
    created_at: datetime
    last_active: datetime
    expires_at: datetime
    data: bytes  # JSON: what a caller loads is always its own copy
    subject: str | None
    auth_time: datetime | None
    device: Device | None  # frozen: shared safely
    handle: str | None  # session_handle(id), kept for sessions with a subject


class MemoryStore(Generic[T]):
    """Sessions in this process's memory: for one worker, tests and the demo.

    Records are kept as JSON bytes, so what a caller loads is always its own copy. At most
    ``max_sessions`` live at once; saving one more evicts the least recently used. Expired
    records are never returned and are swept out at most every ``sweep_interval``.
    Operations never await, so they are atomic between asyncio tasks; a lock also makes
    them safe across threads. Sessions are lost when the process ends; use
    ``RedisStore`` to share them between processes.

    It keeps a subject index (:class:`~typed_sessions.SubjectIndex`): sessions saved
    with a ``subject`` are listed and ended by subject, in O(1) per session. With
    ``max_per_subject``, saving a subject's session beyond that many live ones ends the
    subject's oldest (by ``created_at``; never the one being saved).
    """

    @overload
    def __init__(
        self: MemoryStore[T],
        data_type: type[T],
        *,
        max_sessions: int = ...,
        clock: Clock = ...,
        sweep_interval: timedelta = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self: MemoryStore[Any],
        data_type: Any,
        *,
        max_sessions: int = ...,
        clock: Clock = ...,
        sweep_interval: timedelta = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        data_type: Any,
        *,
        max_sessions: int = 10_000,
        clock: Clock = utc_now,
        sweep_interval: timedelta = timedelta(seconds=60),
        max_per_subject: int | None = None,
    ) -> None:
        """Make an empty store for sessions holding ``data_type``.

        Raises:
            ValueError: ``max_sessions`` or ``max_per_subject`` is less than 1, or
                ``clock`` gives naive times.
        """
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if max_per_subject is not None and max_per_subject < 1:
            raise ValueError("max_per_subject must be at least 1 or None")
        self.max_per_subject = max_per_subject
        self.codec: SessionCodec[T] = SessionCodec(data_type)
        self.max_sessions = max_sessions
        self._clock = checked_clock(clock)
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._entries: OrderedDict[SessionId, _Entry] = OrderedDict()
        # The subject index: subject -> handle -> ID, for the live records with a subject.
        self._subjects: dict[str, dict[str, SessionId]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many records the store holds (expired ones not yet swept included)."""
        return len(self._entries)

    async def load(self, session_id: SessionId) -> Session[T] | None:
        """Return a fresh copy of the live session ``session_id``, or ``None``."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                return None
            if now >= entry.expires_at:
                self._remove(session_id)
                return None
            self._entries.move_to_end(session_id)
        match self.codec.decode_data(entry.data):
            case Ok(data):
                return Session(
                    session_id,
                    data,
                    entry.created_at,
                    entry.last_active,
                    entry.expires_at,
                    entry.version,
                    entry.subject,
                    entry.auth_time,
                    entry.device,
                )
            case Err(error):  # pragma: no cover - we wrote these bytes ourselves
                raise StoreCorruptError(error.reason)

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Compare-and-set ``session`` on its version; evict the oldest when full.

        Raises:
            SessionEncodeError: the data is not JSON-serializable (nothing changes).
            ValueError: the session's ``subject`` is not a valid subject (likewise).
        """
        data = self.codec.encode_data(session.data)  # raises before anything changes
        if session.subject is not None:
            checked_subject(session.subject)  # likewise
        version = session.version + 1
        now = self._clock()
        with self._lock:
            entry = self._entries.get(session.id)
            if entry is not None and now >= entry.expires_at:
                self._remove(session.id)
                entry = None
            found = None if entry is None else entry.version
            if found != (session.version or None):
                return Err(Conflict(expected=session.version, found=found))
            if now >= session.expires_at:  # already over: storing it would be a zombie
                self._remove(session.id)
            else:
                self._put(session, version, data, entry)
                self._evict(now)
                if session.subject is not None:
                    self._cap(session.subject, session.id, now)
        return Ok(
            Session(
                session.id,
                session.data,
                session.created_at,
                session.last_active,
                session.expires_at,
                version,
                session.subject,
                session.auth_time,
                session.device,
            )
        )

    async def delete(self, session_id: SessionId) -> None:
        """Remove ``session_id``; a missing one is fine."""
        with self._lock:
            self._remove(session_id)

    # -- the subject index (see SubjectIndex) ---------------------------------------------

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        """Return ``subject``'s live sessions, oldest first; drop the expired ones found.

        O(k) for a subject with k sessions. Listing is not a use: it moves no session
        forward in the eviction order.
        """
        check_subject(subject)
        now = self._clock()
        infos: list[SessionInfo] = []
        with self._lock:
            for handle, session_id in list(self._subjects.get(subject, {}).items()):
                entry = self._entries[session_id]
                if now >= entry.expires_at:
                    self._remove(session_id)
                    continue
                infos.append(
                    SessionInfo(
                        handle,
                        subject,
                        entry.created_at,
                        entry.last_active,
                        entry.expires_at,
                        entry.auth_time,
                        entry.device,
                    )
                )
        infos.sort(key=lambda info: info.created_at)
        return infos

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        """End ``subject``'s live session with public handle ``handle``, if any. O(1)."""
        check_subject(subject)
        now = self._clock()
        with self._lock:
            session_id = self._subjects.get(subject, {}).get(handle)
            if session_id is None:
                return False
            entry = self._remove(session_id)
        return entry is not None and now < entry.expires_at

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End all of ``subject``'s sessions but ``keep``; return how many were live. O(k)."""
        check_subject(subject)
        now = self._clock()
        with self._lock:
            doomed = [i for i in self._subjects.get(subject, {}).values() if i != keep]
            return self._remove_live(doomed, now)

    async def end_all(self) -> int:
        """End every session that has a subject; return how many were live.

        O(n) in the sessions with a subject, under the store's lock (other calls wait).
        Sessions without a subject are kept.
        """
        now = self._clock()
        with self._lock:
            doomed = [i for handles in self._subjects.values() for i in handles.values()]
            return self._remove_live(doomed, now)

    # -- bookkeeping: every record added or removed goes through these -----------------

    def _put(self, session: Session[T], version: int, data: bytes, old: _Entry | None) -> None:
        subject = session.subject
        if old is not None and old.subject is not None and old.subject != subject:
            self._unindex(old)  # the same ID, saved for another subject (or none)
        handle = None
        if subject is not None:
            handle = old.handle if old is not None and old.subject == subject else None
            handle = handle or session_handle(session.id)
            self._subjects.setdefault(subject, {})[handle] = session.id
        self._entries[session.id] = _Entry(
            version,
            session.created_at,
            session.last_active,
            session.expires_at,
            data,
            subject,
            session.auth_time,
            session.device,
            handle,
        )
        self._entries.move_to_end(session.id)

    def _remove(self, session_id: SessionId) -> _Entry | None:
        entry = self._entries.pop(session_id, None)
        if entry is not None:
            self._unindex(entry)
        return entry

    def _remove_live(self, session_ids: list[SessionId], now: datetime) -> int:
        ended = 0
        for session_id in session_ids:
            entry = self._remove(session_id)
            ended += entry is not None and now < entry.expires_at
        return ended

    def _unindex(self, entry: _Entry) -> None:
        if entry.subject is None or entry.handle is None:
            return
        handles = self._subjects.get(entry.subject)
        if handles is not None:
            handles.pop(entry.handle, None)
            if not handles:
                del self._subjects[entry.subject]

    def _cap(self, subject: str, saved: SessionId, now: datetime) -> None:
        """End ``subject``'s oldest sessions (never ``saved``) beyond ``max_per_subject``."""
        cap = self.max_per_subject
        handles = self._subjects.get(subject, {})
        if cap is None or len(handles) <= cap:
            return
        for session_id in [i for i in handles.values() if now >= self._entries[i].expires_at]:
            self._remove(session_id)
        others = sorted(
            (i for i in handles.values() if i != saved),
            key=lambda i: self._entries[i].created_at,
        )
        for session_id in others[: max(len(handles) - cap, 0)]:
            self._remove(session_id)

    def _evict(self, now: datetime) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            for key in [k for k, e in self._entries.items() if now >= e.expires_at]:
                self._remove(key)
        while len(self._entries) > self.max_sessions:
            _, entry = self._entries.popitem(last=False)
            self._unindex(entry)
