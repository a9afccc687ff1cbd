"""The compare-and-set writes of :class:`~typed_sessions.stores.sql.SqlStore`'s ``save``.

A save is one conditional statement: an ``UPDATE`` (or, for an ended record, a
``DELETE``) on the key and the expected version, or an ``INSERT`` of a new record that
the primary key refuses when the ID exists. Only a refused write costs a second
statement: a ``SELECT`` of the stored version, reported in ``Conflict.found``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Delete, Update
from sqlalchemy.exc import IntegrityError

from typed_sessions.stores.protocol import Conflict, StoreCorruptError, StoreUnavailableError
from typed_sessions.stores.sql_calls import SqlCalls
from typed_sessions.stores.sql_statements import Statements

__all__ = ["SqlWrites"]

_ATTEMPTS: Final = 3  # a save refused, then the version read equals the expected: retry


class SqlWrites:
    """The conditional writes of a save; each returns ``None`` (done) or the conflict.

    ``params`` carry ``b_key``, ``b_now`` (microseconds) and ``b_expected`` (the version
    the caller read), and for an update the new values.
    """

    __slots__ = ("_calls", "_sql")

    def __init__(self, calls: SqlCalls, sql: Statements) -> None:
        self._calls = calls
        self._sql = sql

    async def update(self, params: Mapping[str, Any]) -> Conflict | None:
        """Write a new version over the expected one."""
        return await self._compare_and_set(self._sql.update, params)

    async def end(self, params: Mapping[str, Any]) -> Conflict | None:
        """Save an ended record: a compare-and-set delete (version 0: nothing to delete)."""
        if params["b_expected"] != 0:
            return await self._compare_and_set(self._sql.end, params)
        found = await self._found(params)
        return None if found is None else Conflict(expected=0, found=found)

    async def insert(self, params: Mapping[str, Any], row: dict[str, Any]) -> Conflict | None:
        """Insert a new record; the primary key refuses it when the ID is taken."""
        for _ in range(_ATTEMPTS):
            try:
                await self._calls.write(self._sql.insert, row)
            except IntegrityError:
                found = await self._found(params)
                if found is not None:
                    return Conflict(expected=0, found=found)
                # An expired row not purged yet holds the key: drop it, then insert again.
                await self._calls.write(self._sql.drop_expired, params)
            else:
                return None
        raise StoreUnavailableError("could not insert a new session record (key kept busy)")

    async def _compare_and_set(
        self, statement: Update | Delete, params: Mapping[str, Any]
    ) -> Conflict | None:
        """Run a conditional write; on no row, read the stored version for the conflict."""
        expected: int = params["b_expected"]
        found = None
        for _ in range(_ATTEMPTS):
            if await self._calls.write(statement, params) == 1:
                return None
            found = await self._found(params)
            if found != expected:  # the usual case: a newer version, or no live record
                break
            # The row was at our version when read again (re-created in between): retry.
        return Conflict(expected=expected, found=found)

    async def _found(self, params: Mapping[str, Any]) -> int | None:
        row = await self._calls.fetch(
            self._sql.version,
            {"b_key": params["b_key"], "b_now": params["b_now"]},
            retry_stale=True,
        )
        if row is None:
            return None
        if type(found := row[0]) is not int:  # SQLite keeps what it is given
            raise StoreCorruptError("the row's version is not an integer")
        return found
