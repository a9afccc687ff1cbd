"""The records a middleware's commits saved, kept a moment for the session's next commits.

A request that loaded a version its worker has since replaced can be merged into the
record that replaced it, or refused, without a failed compare-and-set and a reload (see
``SessionMiddleware._commit``). The records are only hints to the merge: the store's
compare-and-set decides every save. They are bounded in number and in time, and copied
through their JSON when kept, so that nothing a handler still holds (a nested list a
background task changes after the response started) can reach a later save.
"""

from __future__ import annotations

import json
from time import monotonic
from typing import Final

from typed_sessions.adapters.outcome import Record
from typed_sessions.core.ids import SessionId
from typed_sessions.core.jsondata import encode_json
from typed_sessions.core.session import replace_data

__all__ = ["KEPT_SECONDS", "KEPT_SESSIONS", "KeptRecords"]

KEPT_SESSIONS: Final = 64
"""How many sessions' last saved record a middleware keeps (the least recently saved
goes first)."""

KEPT_SECONDS: Final = 1.0
"""How long a saved record is kept: the requests it helps are those in flight when it
was saved."""


class KeptRecords:
    """The last record saved of each of the sessions a worker saved most recently."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        """Keep nothing yet."""
        # session ID -> (the record, kept until this monotonic time), oldest save first
        self.records: dict[SessionId, tuple[Record, float]] = {}

    def get(self, session_id: SessionId) -> Record | None:
        """The record last saved of ``session_id``, while it is kept."""
        kept = self.records.get(session_id)
        if kept is None:
            return None
        if monotonic() < kept[1]:
            return kept[0]
        del self.records[session_id]
        return None

    def keep(self, session_id: SessionId, record: Record) -> None:
        """Keep a copy of ``record``, just saved, for :data:`KEPT_SECONDS`; forget the
        records kept too long, and the oldest beyond :data:`KEPT_SESSIONS`."""
        records = self.records
        records.pop(session_id, None)  # to the end: the order is the order of saves
        now = monotonic()
        while records:
            oldest = next(iter(records))
            if records[oldest][1] > now and len(records) < KEPT_SESSIONS:
                break
            del records[oldest]
        try:  # the saved data was JSON a moment ago; a copy of its own, through JSON
            data = json.loads(encode_json(record.data))
        except (TypeError, ValueError, RecursionError):  # pragma: no cover - changed since
            return
        copy = replace_data(record, data, now=record.last_active)
        records[session_id] = (copy, now + KEPT_SECONDS)

    def drop(self, session_id: SessionId) -> None:
        """Forget the record kept of ``session_id``, if any."""
        self.records.pop(session_id, None)
