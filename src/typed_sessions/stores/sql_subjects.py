"""The subject index of :class:`~typed_sessions.stores.sql.SqlStore`: the ``subject``
column (indexed) and the ``handle`` column of the session table.

Listing a subject is one ``SELECT`` through the subject index; ending one session is
one ``DELETE``; ending a subject's sessions, or every subject's, the same ``DELETE``
twice (the second ends what a rotation racing the first moved to a new row). Only
live rows are listed, ended and counted; expired ones are left to
:meth:`~typed_sessions.stores.sql.SqlStore.purge_expired`. With ``max_per_subject``,
saving a *new* record of a subject (a sign-in, which starts or rotates to a new ID)
costs one more ``SELECT`` of the subject's other live rows (their keys and starts), and
a ``DELETE`` of those beyond the cap when there are any.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Delete, Table

from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import SessionInfo, beyond_cap, check_subject, is_handle
from typed_sessions.stores.protocol import StoreCorruptError
from typed_sessions.stores.sql_calls import Query, SqlCalls
from typed_sessions.stores.sql_rows import decode_info
from typed_sessions.stores.sql_statements import Statements, drop_keys
from typed_sessions.stores.sql_table import to_micros
from typed_sessions.stores.subjects import ENDING_PASSES, kept_rotating

__all__ = ["SqlSubjects"]

_logger = logging.getLogger("typed_sessions.stores.sql")


class SqlSubjects:
    """The four :class:`~typed_sessions.SubjectIndex` calls, and the cap, over one table."""

    __slots__ = ("_calls", "_now", "_sql", "cap", "discard", "table")

    def __init__(
        self,
        calls: SqlCalls,
        sql: Statements,
        table: Table,
        now: Callable[[], int],
        *,
        cap: int | None,
        discard: bool,
    ) -> None:
        self._calls = calls
        self._sql = sql
        self._now = now
        self.table: Table = table
        self.cap: int | None = cap
        self.discard: bool = discard

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        check_subject(subject)
        params = {"b_subject": subject, "b_now": self._now()}
        infos: list[SessionInfo] = []
        for row in await self._calls.fetch_all(self._sql.list_subject, params):
            match decode_info(subject, row):
                case Ok(info):
                    infos.append(info)
                case Err(error):
                    if not self.discard:
                        raise StoreCorruptError(f"unreadable session record in SQL: {error.reason}")
                    _logger.warning("not listing an unreadable session record: %s", error.reason)
        return infos

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        check_subject(subject)
        if not is_handle(handle):
            return False  # no handle looks like that: nothing to ask the database
        params = {"b_subject": subject, "b_handle": handle, "b_now": self._now()}
        return await self._calls.write(self._sql.end_subject_session, params) > 0

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        check_subject(subject)
        kept = "" if keep is None else _key(keep)  # "" is no row's key
        params = {"b_subject": subject, "b_keep": kept, "b_now": self._now()}
        sql = self._sql
        return await self._until_none_left(
            sql.end_subject, sql.left_of_subject, params, "the subject's"
        )

    async def end_all(self) -> int:
        params = {"b_now": self._now()}
        return await self._until_none_left(
            self._sql.end_all, self._sql.left_of_all, params, "every"
        )

    async def _until_none_left(
        self, ending: Delete, left: Query, params: dict[str, Any], whose: str
    ) -> int:
        """Run ``ending`` until ``left`` finds no session it should have ended: two round
        trips, unless sessions rotate meanwhile. A rotation inserts its new row before
        it ends the old one, so a query sees one of the two live. A ``DELETE`` may not:
        its snapshot predates the new row, and it skips the old one, ended while it
        waited for the row (PostgreSQL).

        Raises:
            StoreError: some still rotated after :data:`ENDING_PASSES` passes.
        """
        ended = 0
        for _ in range(ENDING_PASSES):
            ended += await self._calls.write(ending, params)
            if not await self._calls.fetch_all(left, params):
                return ended
        raise kept_rotating(f"{whose} sessions")

    async def enforce_cap(self, saved: Session[Any], now: int) -> None:
        """End the sessions of ``saved``'s subject beyond the cap (see ``beyond_cap``)."""
        if self._sql.over_cap is None or saved.subject is None:
            return
        params = {"b_subject": saved.subject, "b_now": now, "b_saved": _key(saved.id)}
        rows = await self._calls.fetch_all(self._sql.over_cap, params)
        # A start that is not an integer (a row edited by hand, on SQLite) counts as oldest.
        others = [
            (row[0], row[1] if type(row[1]) is int else _OLDEST, _int_or_none(row[2]))
            for row in rows
        ]
        auth = None if saved.auth_time is None else to_micros(saved.auth_time)
        doomed = beyond_cap(others, to_micros(saved.created_at), auth, self.cap or 0)
        if doomed:
            await self._calls.write(drop_keys(self.table, doomed), params)


_OLDEST: Final = -(2**63)


def _int_or_none(value: object) -> int | None:
    """An ``auth_time`` as read: ``None`` unless an integer (a row edited by hand)."""
    return value if type(value) is int else None


def _key(session_id: SessionId) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
