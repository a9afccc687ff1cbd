"""The records lane: a store's sessions as stored, for the middleware's fast path.

:class:`~typed_sessions.stores.protocol.SessionStore` hands out typed ``Session``
records: their data decoded and validated, their times aware ``datetime`` objects. The
middleware's common request reads a record and saves it back changed, or not at all;
a store that also offers :class:`RecordLane` lets it do that on the stored form itself:
integer times and the data's JSON text. Everything else (a conflict, a regeneration, a
sign-in) goes through the typed protocol, from :meth:`RecordLane.session_of`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session
from typed_sessions.stores.protocol import Conflict

__all__ = ["InstantLane", "RecordLane", "StoredRecord"]


class StoredRecord(NamedTuple):
    """A live record as stored: its times in microseconds since the Unix epoch, and the
    store's own bytes of it, where the data's JSON (UTF-8) starts at ``data_at``;
    ``place``: where the store found it, a hint for its own ``save_record`` (opaque)."""

    version: int
    created: int
    last: int
    expires: int
    raw: bytes
    data_at: int
    place: object = None


class RecordLane(Protocol):
    """What a store offers the middleware's fast path, beside :class:`SessionStore`."""

    async def load_record(self, session_id: SessionId) -> StoredRecord | None:
        """The live record of ``session_id`` as stored, or ``None`` (as ``load``)."""
        ...

    async def save_record(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        """Compare-and-set: replace ``loaded``, if it is still the stored record, with the
        next version holding ``data`` (JSON checked by the caller; ``None``: the same
        data) and these times; else change nothing and return the :class:`Conflict`.
        A deadline already past removes the record."""
        ...

    def session_of(self, session_id: SessionId, stored: StoredRecord) -> Session[Any]:
        """The typed record ``load`` would have returned for ``stored``.

        Raises:
            StoreCorruptError: its data does not decode.
        """
        ...


class InstantLane(RecordLane, Protocol):
    """A lane whose records are in this process: its calls never suspend, and it offers
    them as plain methods too. The middleware then calls them without a coroutine, and
    need not queue the saves of one session before the first attempt (no other task can
    run during one)."""

    def load_record_now(self, session_id: SessionId) -> StoredRecord | None:
        """:meth:`load_record`, as a plain call."""
        ...

    def save_record_now(
        self, session_id: SessionId, loaded: StoredRecord, data: bytes | None, last: int,
        expires: int,
    ) -> Conflict | None:  # fmt: skip
        """:meth:`save_record`, as a plain call."""
        ...
