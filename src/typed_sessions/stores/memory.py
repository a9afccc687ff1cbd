"""The embedded store: one process's memory, bounded, least recently used first out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.codec import DEFAULT_MAX_DATA_BYTES, SessionCodec, Upgrade
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
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


class MemoryStore(Generic[T]):
    """Sessions in this process's memory: for one worker, tests and the demo.

    Records are kept as JSON bytes, so what a caller loads is always its own copy. At most
    ``max_sessions`` live at once; saving one more evicts the least recently used. Expired
    records are never returned and are swept out at most every ``sweep_interval``.
    Operations never await, so they are atomic between asyncio tasks; a lock also makes
    them safe across threads. Sessions are lost when the process ends; use
    ``RedisStore`` to share them between processes.
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
    ) -> None:
        """Make an empty store for sessions holding ``data_type``.

        ``max_data_bytes`` bounds each session's data, in bytes of JSON (default 64 KiB,
        ``None``: no limit): a larger save raises ``SessionTooLargeError`` and writes
        nothing. ``upgrade`` reads data stored for an older model (see ``SessionCodec``).

        Raises:
            ValueError: ``max_sessions`` is less than 1, ``max_data_bytes`` is not a
                positive ``int`` or ``None``, or ``clock`` gives naive times.
        """
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.codec: SessionCodec[T] = SessionCodec(
            data_type, max_data_bytes=max_data_bytes, upgrade=upgrade
        )
        self.max_sessions = max_sessions
        self._clock = checked_clock(clock)
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        self._entries: OrderedDict[SessionId, _Entry] = OrderedDict()
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
                del self._entries[session_id]
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
                )
            case Err(error):  # pragma: no cover - we wrote these bytes ourselves
                raise StoreCorruptError(error.reason)

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Compare-and-set ``session`` on its version; evict the oldest when full."""
        data = self.codec.encode_data(session.data)  # raises before anything changes
        version = session.version + 1
        now = self._clock()
        with self._lock:
            entry = self._entries.get(session.id)
            if entry is not None and now >= entry.expires_at:
                del self._entries[session.id]
                entry = None
            found = None if entry is None else entry.version
            if found != (session.version or None):
                return Err(Conflict(expected=session.version, found=found))
            if now >= session.expires_at:  # already over: storing it would be a zombie
                self._entries.pop(session.id, None)
            else:
                self._entries[session.id] = _Entry(
                    version, session.created_at, session.last_active, session.expires_at, data
                )
                self._entries.move_to_end(session.id)
                self._evict(now)
        return Ok(
            Session(
                session.id,
                session.data,
                session.created_at,
                session.last_active,
                session.expires_at,
                version,
            )
        )

    async def delete(self, session_id: SessionId) -> None:
        """Remove ``session_id``; a missing one is fine."""
        with self._lock:
            self._entries.pop(session_id, None)

    def _evict(self, now: datetime) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            for key in [k for k, e in self._entries.items() if now >= e.expires_at]:
                del self._entries[key]
        while len(self._entries) > self.max_sessions:
            self._entries.popitem(last=False)
