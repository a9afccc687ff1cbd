"""The stored session a request loaded: read through the store's lane when it has one.

With a :class:`~typed_sessions.stores.lane.RecordLane` the record stays as stored
(integer times, the data's JSON) and its data is decoded as JSON once; a ``Session`` is
built from it only for the rarer writes that need one (a regeneration, a lost race).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session
from typed_sessions.stores.lane import RecordLane, StoredRecord

__all__ = ["Loaded", "load_session"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_scan: Final[Callable[[str, int], tuple[Any, int]]] = vars(json.JSONDecoder())["scan_once"]


class Loaded:
    """A live stored session: its ``id``, its ``data`` as loaded (never changed: handlers
    get a copy), and its record as the lane gave it (``stored``, with the request's time
    ``micros``, in microseconds) or as a ``Session``."""

    __slots__ = ("data", "id", "lane", "micros", "record", "stored")

    def __init__(
        self,
        session_id: SessionId,
        data: dict[str, Any],
        record: Session[dict[str, Any]] | None,
        stored: StoredRecord | None = None,
        lane: RecordLane | None = None,
        micros: int = 0,
    ) -> None:
        self.id = session_id
        self.data = data
        self.record = record
        self.stored = stored
        self.lane = lane
        self.micros = micros

    def session(self) -> Session[dict[str, Any]]:
        """The record as a ``Session`` (built from the stored form once).

        Raises:
            StoreCorruptError: its data does not decode.
        """
        record = self.record
        if record is None:
            assert self.stored is not None  # the record is one or the other
            assert self.lane is not None
            record = self.record = self.lane.session_of(self.id, self.stored)
        return record


async def load_session(
    settings: SessionSettings, session_id: SessionId, now: datetime
) -> Loaded | None:
    """Load the live session ``session_id`` (as seen at ``now``), or ``None``.

    Raises:
        StoreError: the store failed, or holds a record that does not decode.
    """
    lane = settings.lane
    if lane is None:
        record = await settings.store.load(session_id)
        if record is None or record.id != session_id or now >= record.expires_at:
            return None  # none, not ours, or expired by this request's clock
        return Loaded(session_id, record.data, record)
    stored = await lane.load_record(session_id)
    micros = (now - _EPOCH) // _US
    if stored is None or micros >= stored.expires:
        return None  # none, or expired by this request's clock
    data: Any
    try:
        data = _scan(stored.raw[stored.data_at :].decode(), 0)[0]
    except (ValueError, RecursionError):
        data = None
    if type(data) is not dict:  # as the store's codec decodes it, or StoreCorruptError
        record = lane.session_of(session_id, stored)
        return Loaded(session_id, record.data, record, stored, lane, micros)
    return Loaded(session_id, cast("dict[str, Any]", data), None, stored, lane, micros)
