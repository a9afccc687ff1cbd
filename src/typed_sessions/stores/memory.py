"""The embedded store: one process's memory, compact, bounded, purged a little at a time.

Each session is one ``bytes`` record under an ``int`` key (see :mod:`.memory_records`),
in shards of about a thousand (see :mod:`.memory_table`): about as much memory per
session as a plain dict of ID to JSON, every call O(1), and no call that stalls the
event loop to sweep a large store.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import timedelta
from time import time_ns as _time_ns
from typing import Any, Final, TypeVar, overload

from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.codec import DEFAULT_MAX_DATA_BYTES, SessionCodec, Upgrade
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import (
    SessionInfo,
    beyond_cap,
    check_subject,
    checked_subject,
    session_handle,
)
from typed_sessions.stores.memory_lane import Loaded, MemoryLane
from typed_sessions.stores.memory_purge import PURGE_BUDGET, SWEEPING, Purge
from typed_sessions.stores.memory_records import (
    EPOCH,
    EXPIRES,
    HEAD,
    SUBJECT,
    TAIL,
    US,
    WIDE_FORM,
    encode_times,
    from_us,
    id_key,
    id_of,
    now_us,
    record_expires,
    record_fields,
    record_subject,
    record_version,
    to_us,
)
from typed_sessions.stores.memory_table import Key, Shard, Table
from typed_sessions.stores.protocol import Conflict

__all__ = ["PURGE_BUDGET", "MemoryStore"]

T = TypeVar("T")
_EXPIRES: Final = EXPIRES.unpack_from
_HEAD: Final = HEAD.unpack_from


class MemoryStore(MemoryLane[T]):
    """Sessions in this process's memory: for one worker, tests and the demo.

    Records are kept as bytes (the data as JSON), so what a caller loads is always its own
    copy; the datetimes of a loaded record are UTC (equal to the ones saved, whatever
    their time zone: the same instants). At most ``max_sessions`` live at once: saving
    one more evicts the least recently used (loaded or saved) of the saved session's
    shard, about 1,024 sessions (a store of at most 1,024 evicts exactly the least
    recently used; a larger one, approximately: the sessions the middleware saved in the
    last second are kept apart, and go back among the others when an eviction finds them
    idle). Expired records are never returned.
    Every ``sweep_interval`` a purge of them starts, done a little in each ``load`` and
    ``save``: at most :data:`PURGE_BUDGET` records looked at per call.
    Every call is O(1) in the number of sessions. Operations never await, so they are
    atomic between asyncio tasks; a lock also makes them safe across threads. Sessions
    are lost when the process ends; use ``RedisStore`` to share them between processes.

    It keeps a subject index (:class:`~typed_sessions.SubjectIndex`): sessions saved
    with a ``subject`` are listed and ended by subject, in O(1) per session. With
    ``max_per_subject``, saving a subject's session beyond that many live ones ends the
    subject's oldest (by ``created_at``; never the one being saved, nor one signed in
    after it).
    """

    @overload
    def __init__(
        self,
        data_type: type[T],
        *,
        max_sessions: int = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        sweep_interval: timedelta = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        data_type: object,
        *,
        max_sessions: int = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        sweep_interval: timedelta = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        data_type: Any,
        *,
        max_sessions: int = 10_000,
        clock: Clock = utc_now,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
        sweep_interval: timedelta = timedelta(seconds=60),
        max_per_subject: int | None = None,
    ) -> None:
        """Make an empty store for sessions holding ``data_type``.

        ``max_data_bytes`` bounds each session's data, in bytes of JSON (default 64 KiB,
        ``None``: no limit): a larger save raises ``SessionTooLargeError`` and writes
        nothing. ``upgrade`` reads data stored for an older model (see ``SessionCodec``).

        Raises:
            ValueError: ``max_sessions`` or ``max_per_subject`` is less than 1,
                ``max_data_bytes`` is not a positive ``int`` or ``None``, or ``clock``
                gives naive times.
        """
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if max_per_subject is not None and max_per_subject < 1:
            raise ValueError("max_per_subject must be at least 1 or None")
        self.max_per_subject = max_per_subject
        self.codec: SessionCodec[T] = SessionCodec(
            data_type, max_data_bytes=max_data_bytes, upgrade=upgrade
        )
        self.max_sessions = max_sessions
        self._data_limit = math.inf if max_data_bytes is None else max_data_bytes
        self._clock = checked_clock(clock)
        # The time in microseconds; for the default clock, without building a datetime.
        self._now: Callable[[], int] = now_us if clock is utc_now else lambda: to_us(clock())
        self._default_clock = clock is utc_now  # then the time is read without a call
        # load() reads without a coroutine, unless a subclass has its own load_record.
        self._own_load_record = type(self).load_record is not vars(MemoryLane)["load_record"]
        # The datetimes the last load made, each with its microseconds (see _times).
        self._loaded: Loaded = (EPOCH, 0, EPOCH, 0, EPOCH, 0)
        self._sweep_interval = sweep_interval // timedelta(microseconds=1)
        self._next_sweep = to_us(clock()) + self._sweep_interval
        self._purge = Purge()
        self._entries = Table(max_sessions)
        self._start_front(max_sessions)
        self._last_key: tuple[str, tuple[int, bytes] | None] = ("", None)
        # The subject index: subject -> handle -> ID, for the live records with a subject.
        self._subjects: dict[str, dict[str, SessionId]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many records the store holds (expired ones not yet purged included)."""
        return self._entries.size + len(self._front)

    async def ping(self) -> None:
        """Readiness, as the shared stores offer it: always ready (it lives in this process)."""

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Compare-and-set ``session`` on its version; evict the oldest when full.

        Raises:
            SessionEncodeError: the data is not JSON-serializable (nothing changes).
            ValueError: the session's ``subject`` is not a valid subject (likewise).
            TypeError: one of the session's datetimes is naive (likewise).
        """
        data = self.codec.encode_data(session.data)  # raises before anything changes
        subject = session.subject
        if subject is not None:
            checked_subject(subject)  # likewise
        version = session.version + 1
        created, last, expires = self._times(session)
        found_key = self._id_key(session.id)
        tail = None if found_key is None else found_key[1]
        new = encode_times(tail, session, version, data, created, last, expires)
        now = _time_ns() // 1_000 if self._default_clock else self._now()
        with self._lock:
            if now >= self._next_sweep:  # a sweep due, or under way
                self._purge_some(now)
            self._cool(session.id)
            shard, key, record = self._entries.locate(session.id, found_key)
            found, flags = None, 0
            if record is not None:
                held, flags, _, high = _HEAD(record, TAIL)
                if now >= held:
                    self._drop(shard, key, record)  # the key stays right for the new record
                    record, flags = None, 0
                else:
                    found = record_version(record) if flags & WIDE_FORM else high >> 16
            if found != (session.version or None):
                return Err(Conflict(expected=session.version, found=found))
            if now < expires:
                self._entries.put(shard, key, new, new=record is None)
                if subject is not None or flags & SUBJECT:
                    self._reindex(record, session, now)
                if self._entries.size + len(self._front) > self.max_sessions:
                    self._evict(shard, key, now)
            elif record is not None:  # already over: storing it would be a zombie
                self._drop(shard, key, record)
        saved = Session(
            session.id, session.data, session.created_at, session.last_active,
            session.expires_at, version, subject, session.auth_time, session.device,
        )  # fmt: skip
        return Ok(saved)

    def _reindex(self, record: bytes | None, session: Session[T], now: int) -> None:
        """Keep the subject index right for ``session``, saved in place of ``record``, and
        cap its subject's sessions."""
        subject = session.subject
        old_subject = None if record is None else record_subject(record)
        if old_subject != subject:
            if old_subject is not None:  # the same ID, saved for another subject
                self._unindex(old_subject, session.id)
            if subject is not None:
                handles = self._subjects.setdefault(subject, {})
                handles[session_handle(session.id)] = session.id
        if subject is not None:
            self._cap(subject, session.id, now)

    async def delete(self, session_id: SessionId) -> None:
        """Remove ``session_id``; a missing one is fine."""
        with self._lock:
            if self._front.pop(session_id, None) is None:
                self._remove(session_id)

    # -- the subject index (see SubjectIndex) ---------------------------------------------

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        """Return ``subject``'s live sessions, oldest first; drop the expired ones found.

        O(k) for a subject with k sessions. Listing is not a use: it moves no session
        forward in the eviction order.
        """
        check_subject(subject)
        now = self._now()
        infos: list[SessionInfo] = []
        with self._lock:
            for handle, session_id in list(self._subjects.get(subject, {}).items()):
                shard, key, record = self._entries.locate(session_id, id_key(session_id))
                assert record is not None  # the index lists only stored records
                created, last, expires, _, _, auth_time, device, _ = record_fields(record)
                if now >= expires:
                    self._drop(shard, key, record)
                    continue
                auth = None if auth_time is None else from_us(auth_time)
                times = from_us(created), from_us(last), from_us(expires)
                infos.append(SessionInfo(handle, subject, *times, auth, device))
        infos.sort(key=lambda info: info.created_at)
        return infos

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        """End ``subject``'s live session with public handle ``handle``, if any. O(1)."""
        check_subject(subject)
        now = self._now()
        with self._lock:
            session_id = self._subjects.get(subject, {}).get(handle)
            if session_id is None:
                return False
            record = self._remove(session_id)
        return record is not None and now < record_expires(record)

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End all of ``subject``'s sessions but ``keep``; return how many were live. O(k)."""
        check_subject(subject)
        now = self._now()
        with self._lock:
            doomed = [i for i in self._subjects.get(subject, {}).values() if i != keep]
            return self._remove_live(doomed, now)

    async def end_all(self) -> int:
        """End every session that has a subject; return how many were live.

        O(n) in the sessions with a subject, under the store's lock (other calls wait).
        Sessions without a subject are kept.
        """
        now = self._now()
        with self._lock:
            doomed = [i for handles in self._subjects.values() for i in handles.values()]
            return self._remove_live(doomed, now)

    # -- bookkeeping: every record removed goes through _drop ---------------------------

    def _id_key(self, session_id: str) -> tuple[int, bytes] | None:
        """``id_key(session_id)``, remembered for the last ID (a request's load and save
        pass the same ``str``)."""
        last_id, found = self._last_key
        if last_id is not session_id:
            found = id_key(session_id)
            self._last_key = (session_id, found)
        return found

    def _times(self, session: Session[T]) -> tuple[int, int, int]:
        """``to_us`` of ``session``'s ``created_at``, ``last_active`` and ``expires_at``;
        for the datetimes the last load made, the microseconds it made them from."""
        created_at, created, last_active, last, expires_at, expires = self._loaded
        if session.created_at is not created_at:
            created = (session.created_at - EPOCH) // US
        if session.last_active is not last_active:
            last = (session.last_active - EPOCH) // US
        if session.expires_at is not expires_at:
            expires = (session.expires_at - EPOCH) // US
        return created, last, expires

    def _drop(self, shard: Shard, key: Key, record: bytes) -> None:
        self._entries.pop(shard, key)
        subject = record_subject(record)
        if subject is not None:
            self._unindex(subject, id_of(key, record))

    def _remove(self, session_id: SessionId) -> bytes | None:
        shard, key, record = self._entries.locate(session_id, id_key(session_id))
        if record is not None:
            self._drop(shard, key, record)
        return record

    def _remove_live(self, session_ids: list[SessionId], now: int) -> int:
        ended = 0
        for session_id in session_ids:
            record = self._remove(session_id)
            ended += record is not None and now < record_expires(record)
        return ended

    def _unindex(self, subject: str, session_id: SessionId) -> None:
        handles = self._subjects.get(subject)
        if handles is not None:
            handles.pop(session_handle(session_id), None)
            if not handles:
                del self._subjects[subject]

    def _started(self, session_id: SessionId) -> tuple[int, int | None]:
        """The record's ``created_at`` and ``auth_time``, in microseconds."""
        record = self._entries.locate(session_id, id_key(session_id))[2]
        assert record is not None  # the index lists only stored records
        fields = record_fields(record)
        return fields[0], fields[5]

    def _cap(self, subject: str, saved: SessionId, now: int) -> None:
        """End ``subject``'s sessions beyond ``max_per_subject`` (see ``beyond_cap``)."""
        cap = self.max_per_subject
        handles = self._subjects.get(subject, {})
        if cap is None or len(handles) <= cap:
            return
        for session_id in list(handles.values()):
            shard, key, record = self._entries.locate(session_id, id_key(session_id))
            if record is not None and now >= record_expires(record):
                self._drop(shard, key, record)
        others = [(i, *self._started(i)) for i in handles.values() if i != saved]
        for session_id in beyond_cap(others, *self._started(saved), cap):
            self._remove(session_id)

    def _evict(self, shard: Shard, saved: Key, now: int) -> None:
        """Evict least recently used records (never ``saved``) beyond ``max_sessions``."""
        self._clear_front(now)  # its idle records compete with the table's
        table = self._entries
        while table.size + len(self._front) > self.max_sessions:
            victim = table.victim(shard, saved)
            if victim is None:
                return
            other, key = victim
            self._drop(other, key, other[key])

    def _purge_some(self, now: int) -> None:
        """Go on with the purge under way, or start one (see :class:`.memory_purge.Purge`)."""
        done = self._purge.step(self._entries, now, self._drop)
        if done:  # and the front's, once per sweep
            self._sweep_front(now)
        self._next_sweep = now + self._sweep_interval if done else SWEEPING
