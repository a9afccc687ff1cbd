"""The records a middleware's commits saved, kept a moment for the session's next commits.

A request that loaded a version its worker has since replaced can be merged into the
record that replaced it, or refused, without a failed compare-and-set and a reload (see
``SessionMiddleware._commit``). The records are only hints to the merge: the store's
compare-and-set decides every save. They are bounded in number and in time, and kept as
their data's JSON (the text the save's change check made, when there is one), decoded
afresh for each use: nothing a handler still holds (a nested list a background task
changes after the response started) can reach a later save.
"""

from __future__ import annotations

import json
from time import monotonic
from typing import Final

from typed_sessions.adapters.outcome import Record
from typed_sessions.core.ids import SessionId
from typed_sessions.core.jsondata import encode_json
from typed_sessions.core.session import Session, replace_data

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
        # session ID -> (the record without its data, the data's JSON, kept until this
        # monotonic time), oldest save first
        self.records: dict[SessionId, tuple[Session[None], str, float]] = {}

    def get(self, session_id: SessionId) -> Record | None:
        """A copy of the record last saved of ``session_id``, while it is kept."""
        kept = self.records.get(session_id)
        if kept is None:
            return None
        record, text, until = kept
        if monotonic() < until:
            return replace_data(record, json.loads(text), now=record.last_active)
        del self.records[session_id]
        return None

    def keep(self, session_id: SessionId, record: Record, text: str | None) -> None:
        """Keep ``record``, just saved, for :data:`KEPT_SECONDS`, as its data's JSON
        (``text``, if known); forget the records kept too long, and the oldest beyond
        :data:`KEPT_SESSIONS`."""
        records = self.records
        records.pop(session_id, None)  # to the end: the order is the order of saves
        now = monotonic()
        while records:
            oldest = next(iter(records))
            if records[oldest][2] > now and len(records) < KEPT_SESSIONS:
                break
            del records[oldest]
        if text is None:
            try:  # the saved data was JSON a moment ago
                text = encode_json(record.data)
            except (TypeError, ValueError, RecursionError):  # pragma: no cover - changed since
                return
        bare = replace_data(record, None, now=record.last_active)
        records[session_id] = (bare, text, now + KEPT_SECONDS)

    def drop(self, session_id: SessionId) -> None:
        """Forget the record kept of ``session_id``, if any."""
        self.records.pop(session_id, None)
