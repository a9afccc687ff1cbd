"""The memory store's table: compact records in shards of about a thousand, in use order.

Each shard is a ``dict`` from a key (see :mod:`.memory_records`) to a record, kept in
order of last use: a use moves the record to its shard's end, so a shard's first record
is its least recently used. The number of shards is fixed when the table is made, from
the most records it will hold, so that a full table has about :data:`SHARD_SIZE` records
in each (up to :data:`MAX_SHARDS` shards: 16 million records; beyond, shards grow): work
bounded by a shard's size (finding the record to evict; copying a shard's keys for the
purge) is bounded whatever the table holds. Dicts this size are also near their densest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

from typed_sessions.core.ids import SessionId
from typed_sessions.core.subjects import Device, session_handle
from typed_sessions.stores.memory_records import (
    from_us,
    id_key,
    id_of,
    record_fields,
)

__all__ = ["MAX_SHARDS", "SHARD_SIZE", "Key", "Shard", "Slot", "StoredEntry", "Table"]

SHARD_SIZE: Final = 1024
"""About how many records each shard of a full table holds."""

MAX_SHARDS: Final = 16_384
"""The most shards a table has (an empty one costs 64 bytes)."""

Key: TypeAlias = int | str
Shard: TypeAlias = dict[Key, bytes]


Slot: TypeAlias = tuple[Shard, Key, bytes | None]
"""Where a session ID's record is, or would go: its shard, its key, the record if any."""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A stored record read back whole (for inspection: the store itself reads less)."""

    version: int
    created_at: datetime
    last_active: datetime
    expires_at: datetime
    data: bytes  # the data's JSON
    subject: str | None
    auth_time: datetime | None
    device: Device | None
    handle: str | None  # session_handle(id), for records with a subject


class Table:
    """The records of one memory store, in ``len(shards)`` shards."""

    __slots__ = ("evict_from", "shards", "size")

    def __init__(self, capacity: int) -> None:
        """Make an empty table sized to hold ``capacity`` records."""
        count = min(max(1, -(-capacity // SHARD_SIZE)), MAX_SHARDS)
        self.shards: list[Shard] = [{} for _ in range(count)]
        self.size: int = 0
        self.evict_from: int = 0  # where the search for a victim goes on, when its shard has none

    def locate(self, session_id: str, found: tuple[int, bytes] | None) -> Slot:
        """Find ``session_id``'s record, given its ``id_key``: one dict lookup for an ID
        that is present."""
        shards = self.shards
        if found is None:
            shard = shards[hash(session_id) % len(shards)]
            return shard, session_id, shard.get(session_id)
        key, tail = found
        shard = shards[key % len(shards)]
        record = shard.get(key)
        if record is not None and record.startswith(tail):
            return shard, key, record
        # Not under its int key: absent, or kept under its text because another ID's
        # record held that int key when it was saved (a 60-bit coincidence).
        other = shard.get(session_id)
        if other is not None or record is not None:
            return shard, session_id, other
        return shard, key, None

    def put(self, shard: Shard, key: Key, record: bytes, *, new: bool) -> None:
        """Store ``record`` under ``key``, as its shard's most recently used; ``new``: no
        record was there."""
        if new:
            self.size += 1
        else:
            del shard[key]
        shard[key] = record

    def touch(self, shard: Shard, key: Key, record: bytes) -> None:
        """Mark a record as its shard's most recently used."""
        del shard[key]
        shard[key] = record

    def pop(self, shard: Shard, key: Key) -> bytes | None:
        """Remove and return the record under ``key``, if any."""
        record = shard.pop(key, None)
        if record is not None:
            self.size -= 1
        return record

    def victim(self, shard: Shard, spare: Key) -> tuple[Shard, Key] | None:
        """The least recently used record of ``shard`` but ``spare``, or of the next
        shard with one (``None`` when the table holds only ``spare``)."""
        for key in shard:
            if key != spare:
                return shard, key
            break
        shards = self.shards
        for _ in range(len(shards)):
            self.evict_from = (self.evict_from + 1) % len(shards)
            other = shards[self.evict_from]
            for key in other:
                if other is not shard or key != spare:
                    return other, key
        return None

    # -- inspection ------------------------------------------------------------------

    def get(self, session_id: str) -> StoredEntry | None:
        """The record stored under ``session_id``, read back whole (expired or not)."""
        _, key, record = self.locate(session_id, id_key(session_id))
        return None if record is None else _entry(key, record)

    def items(self) -> Iterator[tuple[SessionId, StoredEntry]]:
        """Every stored record, with its ID."""
        for shard in self.shards:
            for key, record in list(shard.items()):
                yield id_of(key, record), _entry(key, record)


def _entry(key: Key, record: bytes) -> StoredEntry:
    created, last, expires, version, subject, auth_time, device, data_at = record_fields(record)
    return StoredEntry(
        version,
        from_us(created),
        from_us(last),
        from_us(expires),
        record[data_at:],
        subject,
        None if auth_time is None else from_us(auth_time),
        device,
        None if subject is None else session_handle(id_of(key, record)),
    )
