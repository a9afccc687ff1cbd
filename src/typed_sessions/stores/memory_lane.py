"""The memory store's :class:`~typed_sessions.stores.lane.RecordLane`, and its ``load``.

A mixin of :class:`~typed_sessions.stores.memory.MemoryStore`: its records read and
written as stored (see :mod:`.memory_records`), without datetimes or a decode.

The front: a record the lane saves, when it has no subject, ``auth_time`` or device (the
usual record), is kept unpacked, as the :class:`StoredRecord` the next load hands out,
in a small dict of its own (at most :data:`FRONT_RECORDS`; none in a store of at most
``SHARD_SIZE`` records, which evicts exactly the least recently used) instead of the
table, so that a session used again is read and written without packing its bytes. A
record is in the front or in the table, never both. Beyond the bound, the least recently
saved goes back to the table, packed as it would have been there: its bytes are then
equal to the ones a load from the table would have handed out, and a save compares them
by value, so a move never looks like a change. Before an eviction, the records not saved
for :data:`FRONT_WINDOW` go back too (see :meth:`MemoryLane._clear_front`). Every other
call takes a record out of the front first (:meth:`MemoryLane._cool`).
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
    id_key,
    plain_record,
    record_expires,
    record_fields,
    record_version,
    rewrite_record,
)
from typed_sessions.stores.memory_table import SHARD_SIZE, Key, Shard, Slot, Table
from typed_sessions.stores.protocol import Conflict, StoreCorruptError

__all__ = ["FRONT_RECORDS", "FRONT_WINDOW", "Loaded", "MemoryLane"]

T = TypeVar("T")
_HEAD: Final = HEAD.unpack_from
FRONT_RECORDS: Final = 256
"""The most records the front keeps unpacked (see the module docs)."""
FRONT_WINDOW: Final = 1_000_000
"""Microseconds: a full front takes a record in place of its oldest only when that one
entered (or was saved) longer ago."""
_Kept: TypeAlias = tuple[int, int, int, int, bytes, int, int]
_DATA_AT: Final = TAIL + 21  # where the data starts in the usual record
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
        _front: dict[str, StoredRecord]
        _front_limit: int
        _front_shut: int
        _data_limit: float

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
            front = self._front.get(session_id)
            if front is not None:  # saved by the lane lately: handed out as kept
                if now >= front.expires:
                    del self._front[session_id]
                    return None
                return front
            last_id, found = self._last_key  # _slot's, inlined: its memory read without a call
            if last_id is not session_id:
                found = self._id_key(session_id)
            shard, key, record = self._entries.locate(session_id, found)
            if record is None:
                return None
            expires, flags, low, high = _HEAD(record, TAIL)
            if now >= expires:
                self._drop(shard, key, record)
                return None
            # The usual record's last use, read without a call (see record_fields; a record
            # with flags is read by it, below).
            last = expires - (low >> 40 | (high & 0xFFFF) << 24)
            if (
                not flags  # the usual record, in use lately: to the front?
                and now - last < FRONT_WINDOW
                and now >= self._front_shut
                and self._admitted(now)
            ):
                self._entries.pop(shard, key)
                fields = (high >> 16, expires - (low & MASK), last, expires, record[_DATA_AT:])
                return self._to_front(session_id, (*fields, 0, now))
            del shard[key]  # now its shard's most recently used
            shard[key] = record
        finally:
            lock.release()
        if flags:
            created, last, _, version, _, _, _, data_at = record_fields(record)
        else:  # the usual record
            created, version, data_at = expires - (low & MASK), high >> 16, _DATA_AT
        stored: StoredRecord = new_tuple(
            StoredRecord, (version, created, last, expires, record, data_at, (shard, key, record))
        )
        return stored

    def session_of(self, session_id: SessionId, stored: StoredRecord) -> Session[T]:
        """The ``Session`` of ``stored``, its data decoded (a fresh copy).

        Raises:
            StoreCorruptError: the data does not decode.
        """
        version, created, last, expires, record, data_at, _ = stored  # (one unpack)
        subject = auth_time = device = None
        if data_at and record[TAIL + 8]:  # (the front's records have no extras)
            _, _, _, _, subject, auth_time, device, _ = record_fields(record)
        decoded = self.codec.decode_data(record[data_at:] if data_at else record)
        if type(decoded) is not Ok:  # pragma: no cover - we wrote these bytes ourselves
            assert isinstance(decoded, Err)
            raise StoreCorruptError(decoded.error.reason)
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
            session_id, decoded.value, created_at, last_active, expires_at, version,
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
        version, _, _, _, record, data_at, _ = loaded  # (one unpack)
        if data is None:
            data = record[data_at:]
        elif len(data) * 8 > self._data_limit * 5:
            # Near the limit: measured by the codec, whose JSON is at most 1.6 times as
            # long (it writes a float of exponent -5 or -6 in full: 5e-06 as 0.000005).
            data = self.codec.encode_data(json.loads(data))
        now = _time_ns() // 1_000 if self._default_clock else self._now()
        lock = self._lock
        lock.acquire()
        try:
            if now >= self._next_sweep:  # a sweep due, or under way
                self._purge_some(now)
            kept = self._front.get(session_id) if not data_at else None
            if kept is not None:  # a record of the front: saved there
                same = kept is loaded or kept[:6] == loaded[:6]
                return self._resave_front(session_id, kept, version, same, data, last, expires, now)
            return self._resave_table(session_id, loaded, data, last, expires, now)
        finally:
            lock.release()

    def _resave_table(
        self, session_id: str, loaded: StoredRecord, data: bytes, last: int, expires: int,
        now: int,
    ) -> Conflict | None:  # fmt: skip
        """:meth:`save_record_now` of a record not in the front, under the lock."""
        version, created, used, loaded_expires, record, data_at, hint = loaded  # (one unpack)
        if not data_at:  # back in the table since (the front was full): saved there
            record, hint = _packed(session_id, loaded), None
            data_at = len(record) - len(loaded.raw)
        place: Slot | None = hint  # type: ignore[assignment]  # load_record's slot
        if place is not None and place[0].get(place[1]) is record:  # still there
            shard, key, found = place
        else:
            shard, key, found = self._slot(session_id)
        # Saved, ended or replaced since it was loaded? (A record moved between the front
        # and the table is packed alike: equal bytes, the same record.)
        if found is not record and found != record:
            kept = None if found is not None else self._front.get(session_id)
            if kept is None:
                return self._lost(shard, key, found, version, now)
            same = kept[:4] == loaded[:4] and kept.raw == record[data_at:]  # moved by a load
            return self._resave_front(session_id, kept, version, same, data, last, expires, now)
        if now >= loaded_expires or now >= expires:  # ended, or a zombie if stored
            self._drop(shard, key, record)
            return None if now < loaded_expires else Conflict(version, None)
        if (
            not record[TAIL + 8]  # the usual record, in use lately: to the front?
            and now - used < FRONT_WINDOW
            and now >= self._front_shut
            and self._admitted(now)
        ):
            self._entries.pop(shard, key)
            self._to_front(session_id, (version + 1, created, last, expires, data, 0, now))
        else:
            del shard[key]  # its shard's most recently used
            shard[key] = rewrite_record(record, data_at, version + 1, created, last, expires, data)
        return None

    def _slot(self, session_id: str) -> Slot:
        """The table's slot of ``session_id`` (its ``id_key`` remembered for the last ID:
        a request's load and save pass the same ``str``)."""
        last_id, found = self._last_key  # _id_key's memory, read without the call
        if last_id is not session_id:
            found = self._id_key(session_id)
        return self._entries.locate(session_id, found)

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

    # -- the front ---------------------------------------------------------------------

    def _start_front(self, max_sessions: int) -> None:
        """An empty front for a store of ``max_sessions``; none for a store of at most
        :data:`SHARD_SIZE` records, whose eviction takes exactly the least recently used
        (the front keeps no order of use)."""
        self._front = {}
        self._front_limit = FRONT_RECORDS if max_sessions > SHARD_SIZE else 0
        self._front_shut = 0  # until when a full front takes no record (see _admitted)

    def _resave_front(
        self, session_id: str, kept: StoredRecord, version: int, same: bool, data: bytes,
        last: int, expires: int, now: int,
    ) -> Conflict | None:  # fmt: skip
        """:meth:`save_record_now` of ``version``, whose record is in the front as
        ``kept`` (``same``: still the one it loaded), under the lock."""
        front = self._front
        if now >= kept.expires:  # ended meanwhile: dropped
            del front[session_id]
            return Conflict(version, None)
        if not same:  # saved since it was loaded
            return Conflict(version, kept.version)
        del front[session_id]  # its most recently saved
        if now < expires:  # (else already over: storing it would be a zombie)
            self._to_front(session_id, (version + 1, kept.created, last, expires, data, 0, now))
        return None

    def _to_front(self, session_id: str, fields: _Kept) -> StoredRecord:
        """Keep this record in the front, as its newest, under the lock (``place``: when
        it entered, or was saved there last)."""
        kept: StoredRecord = new_tuple(StoredRecord, fields)
        self._front[session_id] = kept
        return kept

    def _admitted(self, now: int) -> bool:
        """Whether the front takes one more record now, under the lock. A full front
        makes room only when its oldest entered over :data:`FRONT_WINDOW` ago: with more
        sessions in use than it holds, records stay in the table (as without a front)
        instead of going back and forth."""
        front = self._front
        if len(front) < self._front_limit:
            return True
        if not front or now < self._front_shut:  # no front (max_sessions is 1), or shut
            return False
        oldest = next(iter(front))
        entered: int = front[oldest].place  # type: ignore[assignment]
        if now - entered < FRONT_WINDOW:  # full: no asking again until it may have room
            self._front_shut = entered + FRONT_WINDOW
            return False
        self._demote(oldest, front.pop(oldest))
        return True

    def _demote(self, session_id: str, kept: StoredRecord) -> None:
        """Put ``kept``, just taken out of the front, back in the table, under the lock."""
        table = self._entries
        # (Not through _slot: this is not the ID its memory is for. Not in the table.)
        shard, key, _ = table.locate(session_id, id_key(session_id))
        table.put(shard, key, _packed(session_id, kept), new=True)

    def _cool(self, session_id: str) -> None:
        """Move ``session_id``'s record from the front to the table, if it is there
        (under the lock): every call but the lane's reads and writes the table only."""
        kept = self._front.pop(session_id, None)
        if kept is not None:
            self._demote(session_id, kept)

    def _sweep_front(self, now: int) -> None:
        """Drop the expired records of the front (at most :data:`FRONT_RECORDS`)."""
        front = self._front
        for session_id in [i for i, kept in front.items() if now >= kept.expires]:
            del front[session_id]

    def _clear_front(self, now: int) -> None:
        """Before an eviction, under the lock: the front's records not saved for
        :data:`FRONT_WINDOW` go back to the table (the expired ones are dropped), so
        that an idle session is never kept while one in use is evicted. The front is in
        the order of its saves: this stops at the first record saved lately."""
        front = self._front
        while front:
            oldest = next(iter(front))
            kept = front[oldest]
            entered: int = kept.place  # type: ignore[assignment]  # (see _to_front)
            if now - entered < FRONT_WINDOW:
                return
            del front[oldest]
            if now < kept.expires:
                self._demote(oldest, kept)


def _packed(session_id: str, kept: StoredRecord) -> bytes:
    """The table's record of ``kept``, a record of the front, as the table packs it."""
    found = id_key(session_id)
    version, created, last, expires, data, _, _ = kept
    return plain_record(None if found is None else found[1], version, created, last, expires, data)
