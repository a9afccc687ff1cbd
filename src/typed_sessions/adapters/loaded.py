"""The stored session a request loaded: read through the store's lane when it has one.

With a :class:`~typed_sessions.stores.lane.RecordLane` the record stays as stored
(integer times, the data's JSON) and its data is decoded as JSON once; a ``Session`` is
built from it only for the rarer writes that need one (a regeneration, a lost race).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, NamedTuple

from typed_sessions.adapters.outcome import (
    NOTHING,
    SignIn,
    Snapshot,
    Write,
    plan_write,
)
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session, replace_data
from typed_sessions.core.tuples import new_tuple
from typed_sessions.stores.lane import RecordLane, StoredRecord

__all__ = ["Loaded", "adopt", "load_session", "plan_for"]

_scan: Final[Callable[[str, int], tuple[Any, int]]] = vars(json.JSONDecoder())["scan_once"]


class Loaded(NamedTuple):
    """A live stored session: its ``id``, its ``data`` as loaded (never changed: handlers
    get a copy), and its record as the lane gave it (``stored``, with the ``lane``) or as
    a ``Session`` (``record``).

    A named tuple: one is built per request that loads a session."""

    id: SessionId
    data: dict[str, Any]
    record: Session[dict[str, Any]] | None
    stored: StoredRecord | None = None
    lane: RecordLane | None = None

    def session(self) -> Session[dict[str, Any]]:
        """The record as a ``Session`` (built from the stored form when loaded as stored).

        Raises:
            StoreCorruptError: its data does not decode.
        """
        record = self.record
        if record is None:
            assert self.stored is not None  # the record is one or the other
            assert self.lane is not None
            record = self.lane.session_of(self.id, self.stored)
        return record


def plan_for(
    found: Loaded | None,
    data: SessionData | None,
    snapshot: Snapshot | None,
    new_id: SessionId | None,
    signed_in: SignIn | None,
    settings: SessionSettings,
    now: Callable[[], datetime],
) -> tuple[Write | None, datetime]:
    """The write a request's session needs (see :func:`plan_write`), and the request's
    time for it (``now()``), for a session not loaded as stored or moved to a new ID
    (one loaded as stored, and staying, is planned by :func:`plan_resave`).

    Raises:
        SessionEncodeError: ``data`` is not JSON the store could hold.
    """
    moment = now()
    record = None if found is None else found.record
    if record is not None and type(snapshot) is str:
        # The handler's copy of the store's record shared its nested values: changed in
        # place and then put back as loaded, they would reach a touch or a bare move.
        record = replace_data(record, json.loads(snapshot), now=record.last_active)
    elif found is not None:
        record = found.session()
    write = plan_write(
        record, data, snapshot, new_id, NOTHING if data is None else data,
        expiry=settings.expiry, now=moment, signed_in=signed_in,
        written=data is None or data.written,
    )  # fmt: skip
    return write, moment


async def load_session(
    settings: SessionSettings, session_id: SessionId, micros: int, now: Callable[[], datetime]
) -> Loaded | None:
    """Load the live session ``session_id`` (as seen at the request's time: ``micros``
    since the Unix epoch, and ``now()`` as a ``datetime``), or ``None``.

    Raises:
        StoreError: the store failed, or holds a record that does not decode.
    """
    lane = settings.lane
    if lane is None:
        record = await settings.store.load(session_id)
        if record is None or record.id != session_id or now() >= record.expires_at:
            _not_adopted(settings)  # none, not ours, or expired by the request's clock
            return None
        return Loaded(session_id, record.data, record)
    return adopt(settings, lane, session_id, await lane.load_record(session_id), micros)


def adopt(
    settings: SessionSettings,
    lane: RecordLane,
    session_id: SessionId,
    stored: StoredRecord | None,
    micros: int,
) -> Loaded | None:
    """The session of ``stored``, the record ``lane`` holds of ``session_id``, if it is
    live at the request's time (``micros``); its data decoded as JSON once.

    Raises:
        StoreError: the record does not decode.
    """
    if stored is None:
        _not_adopted(settings)
        return None
    _, _, _, expires, raw, data_at, _ = stored  # (one unpack)
    if micros >= expires:
        _not_adopted(settings)  # expired by this request's clock
        return None
    data: Any
    try:
        data = _scan(raw[data_at:].decode(), 0)[0]
    except (ValueError, RecursionError):
        data = None
    if data.__class__ is not dict:  # as the store's codec decodes it, or StoreCorruptError
        record = lane.session_of(session_id, stored)
        return Loaded(session_id, record.data, record, stored, lane)
    loaded: Loaded = new_tuple(Loaded, (session_id, data, None, stored, lane))
    return loaded


def _not_adopted(settings: SessionSettings) -> None:
    settings.log(logging.INFO, "cookie names no live session; not adopted")
