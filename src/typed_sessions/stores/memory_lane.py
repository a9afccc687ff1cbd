"""The memory store's :class:`~typed_sessions.stores.lane.RecordLane`, and its ``load``.

A mixin of :class:`~typed_sessions.stores.memory.MemoryStore`: its records read and
written as stored (see :mod:`.memory_records`), without datetimes or a decode.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Final, Generic, TypeAlias, TypeVar

from typed_sessions.core.codec import SessionCodec
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok
from typed_sessions.core.session import Session
from typed_sessions.core.tuples import new_tuple
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory_records import (
    EPOCH,
    HEAD,
    MASK,
    TAIL,
    US,
    from_us,
    record_expires,
    record_fields,
    record_version,
    rewrite_record,
)
from typed_sessions.stores.memory_table import Key, Shard, Slot, Table
from typed_sessions.stores.protocol import Conflict, StoreCorruptError

__all__ = ["Loaded", "MemoryLane"]

T = TypeVar("T")
_HEAD: Final = HEAD.unpack_from
Loaded: TypeAlias = tuple[datetime, int, datetime, int, datetime, int]
"""The datetimes the last load made, each with its microseconds."""


class MemoryLane(Generic[T]):
    """Loading and saving records as stored (see :class:`MemoryStore`): an
    :class:`~typed_sessions.stores.lane.InstantLane`."""

    if TYPE_CHECKING:
        codec: SessionCodec[T]
        _lock: threading.Lock
        _entries: Table
        _next_sweep: int
        _default_clock: bool
        _own_load_record: bool
        _loaded: Loaded
        _now: Callable[[], int]
        _last_key: tuple[str, tuple[int, bytes] | None]

        def _purge_some(self, now: int) -> None: ...
        def _drop(self, shard: Shard, key: Key, record: bytes) -> None: ...
        def _id_key(self, session_id: str) -> tuple[int, bytes] | None: ...

    async def load(self, session_id: SessionId) -> Session[T] | None:
        """Return a fresh copy of the live session ``session_id``, or ``None``."""
        if self._own_load_record:  # a subclass's
            stored = await self.load_record(session_id)
        else:
            stored = self.load_record_now(session_id)
        return None if stored is None else self.session_of(session_id, stored)

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        """The live record of ``session_id`` as stored, or ``None``; now its shard's most
        recently used."""
        return self.load_record_now(session_id)

    def load_record_now(self, session_id: SessionId) -> StoredRecord | None:
        """:meth:`load_record`, as a plain call."""
        now = _time_ns() // 1_000 if self._default_clock else self._now()
        lock = self._lock  # acquire/release: half the cost of a ``with`` block here
        lock.acquire()
        try:
            if now >= self._next_sweep:  # a sweep due, or under way
                self._purge_some(now)
            last_id, found = self._last_key  # _id_key's memory, read without the call
            if last_id is not session_id:
                found = self._id_key(session_id)
            shard, key, record = self._entries.locate(session_id, found)
            if record is None:
                return None
            expires, flags, low, high = _HEAD(record, TAIL)
            if now >= expires:
                self._drop(shard, key, record)
                return None
            del shard[key]  # now its shard's most recently used
            shard[key] = record
        finally:
            lock.release()
        if flags:
            created, last, _, version, _, _, _, data_at = record_fields(record)
        else:  # the usual record (see record_fields), read here without a call
            created, last = expires - (low & MASK), expires - (low >> 40 | (high & 0xFFFF) << 24)
            version, data_at = high >> 16, TAIL + 21
        stored: StoredRecord = new_tuple(
            StoredRecord, (version, created, last, expires, record, data_at, (shard, key, record))
        )
        return stored

    def session_of(self, session_id: SessionId, stored: StoredRecord) -> Session[T]:
        """The ``Session`` of ``stored``, its data decoded (a fresh copy).

        Raises:
            StoreCorruptError: the data does not decode.
        """
        record = stored.raw
        subject = auth_time = device = None
        if record[TAIL + 8]:
            _, _, _, _, subject, auth_time, device, _ = record_fields(record)
        decoded = self.codec.decode_data(record[stored.data_at :])
        if type(decoded) is not Ok:  # pragma: no cover - we wrote these bytes ourselves
            assert isinstance(decoded, Err)
            raise StoreCorruptError(decoded.error.reason)
        created, last, expires = stored.created, stored.last, stored.expires
        # The last load's datetimes, reused where the microseconds match (a session
        # loaded again): a datetime from microseconds costs more than the whole check.
        made = self._loaded
        created_at = made[0] if created == made[1] else EPOCH + US * created
        if last == created:
            last_active = created_at
        else:
            last_active = made[2] if last == made[3] else EPOCH + US * last
        expires_at = made[4] if expires == made[5] else EPOCH + US * expires
        # Their microseconds, for a save of these very objects (see _times).
        self._loaded = (created_at, created, last_active, last, expires_at, expires)
        return Session(
            session_id, decoded.value, created_at, last_active, expires_at, stored.version,
            subject, None if auth_time is None else from_us(auth_time), device,
        )  # fmt: skip

    async def save_record(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        """:meth:`save_record_now`, as a coroutine (the lane protocol's)."""
        return self.save_record_now(session_id, loaded, data, last, expires)

    def save_record_now(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        """Compare-and-set: ``loaded`` replaced, if still stored, by its next version with
        ``data`` (``None``: its own) and these times; else the :class:`Conflict`.

        Raises:
            SessionTooLargeError: ``data`` is over the store's ``max_data_bytes``
                (nothing changes).
        """
        version, created, _, loaded_expires, record, data_at, hint = loaded  # (one unpack)
        if data is None:
            data = record[data_at:]
        else:
            limit = self.codec.max_data_bytes
            if limit is not None and len(data) > limit:  # escapes counted: measure as stored
                data = self.codec.encode_data(json.loads(data))
        new = rewrite_record(record, data_at, version + 1, created, last, expires, data)
        now = _time_ns() // 1_000 if self._default_clock else self._now()
        lock = self._lock
        lock.acquire()
        try:
            if now >= self._next_sweep:  # a sweep due, or under way
                self._purge_some(now)
            place: Slot | None = hint  # type: ignore[assignment]  # load_record's slot
            if place is not None and place[0].get(place[1]) is record:  # still there
                shard, key, found = place
            else:
                last_id, id_key = self._last_key  # as in load_record
                if last_id is not session_id:
                    id_key = self._id_key(session_id)
                shard, key, found = self._entries.locate(session_id, id_key)
            if found is not record:  # saved, ended or replaced since it was loaded
                return self._lost(shard, key, found, version, now)
            if now >= loaded_expires:
                self._drop(shard, key, record)
                return Conflict(version, None)
            if now < expires:
                del shard[key]  # its shard's most recently used
                shard[key] = new
            else:  # already over: storing it would be a zombie
                self._drop(shard, key, record)
        finally:
            lock.release()
        return None

    def _lost(
        self, shard: Shard, key: Key, found: bytes | None, version: int, now: int
    ) -> Conflict:
        """The :class:`Conflict` of a save of ``version`` that found ``found`` stored in
        its place (dropped if expired), under the lock."""
        if found is None:
            return Conflict(version, None)
        if now >= record_expires(found):
            self._drop(shard, key, found)
            return Conflict(version, None)
        return Conflict(version, record_version(found))
