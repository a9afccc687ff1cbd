"""The SQL store: sessions in the relational database the application already runs.

Install it with the extra ``typed-sessions[sql]`` (SQLAlchemy 2's asyncio Core) and the
driver of your database: ``asyncpg`` (PostgreSQL), ``aiomysql`` or ``asyncmy``
(MariaDB/MySQL), ``aiosqlite`` (SQLite). One implementation serves all three.

Round trips
-----------
Every statement runs on its own in autocommit mode: no transaction is held across a
request, or even across two statements. ``load`` is one ``SELECT``; ``delete`` one
``DELETE``; ``save`` one conditional ``UPDATE ... WHERE key = ? AND version = ? AND
expires_at > now`` (or one ``INSERT`` for a new record, refused by the primary key when
the ID exists), whose row count decides ``Ok`` or ``Err(Conflict)``. Only a refused save
costs a second statement: a ``SELECT`` of the stored version, to report it in
``Conflict.found`` (``None`` when the record is gone). Saving an ended record is one
conditional ``DELETE`` (a compare-and-set delete); these writes are in
:mod:`typed_sessions.stores.sql_save`. The table layout is in
:mod:`typed_sessions.stores.sql_table`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.codec import DEFAULT_MAX_DATA_BYTES, SessionCodec, Upgrade
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import SessionInfo, checked_subject
from typed_sessions.stores.options import OnCorrupt, check_store_options
from typed_sessions.stores.protocol import Conflict, StoreCorruptError
from typed_sessions.stores.sql_calls import SqlCalls, driver_limits
from typed_sessions.stores.sql_memory import lasting_engine, release
from typed_sessions.stores.sql_purge import purge_expired, purging
from typed_sessions.stores.sql_rows import decode_record, inserted_row, updated_values
from typed_sessions.stores.sql_save import SqlWrites
from typed_sessions.stores.sql_statements import Statements
from typed_sessions.stores.sql_subjects import SqlSubjects
from typed_sessions.stores.sql_table import create_with_indexes, session_table, to_micros

__all__ = ["DEFAULT_SQL_TIMEOUT", "OnCorrupt", "SqlStore"]

T = TypeVar("T")
_D = TypeVar("_D")  # from_url's data type: the class's T is unknown in a classmethod

DEFAULT_SQL_TIMEOUT = 5.0
"""Seconds one store call may take before it fails with ``StoreUnavailableError``."""

_logger = logging.getLogger(__name__)


class SqlStore(Generic[T]):
    """Sessions in a SQL database (PostgreSQL, MariaDB/MySQL, SQLite), shared by every
    process that uses it.

    Build it from an ``AsyncEngine`` you own or with :meth:`from_url`, which makes and
    owns one. It satisfies :class:`~typed_sessions.SessionStore` structurally. The table
    is ``table`` (default: :func:`~typed_sessions.session_table` on a ``MetaData`` of its
    own); put it on your ``MetaData`` for your migrations, or call :meth:`create_table`.
    Statements run in autocommit mode (the store asks the engine for it); see the module
    documentation for what each call sends.

    Expired rows are never returned, and :meth:`purge_expired` (or the background task of
    :meth:`purging`) deletes them in bounded batches through the expiry index.

    Timeouts: every statement is bounded by ``timeout`` seconds (waiting for a pooled
    connection included; a call of several, such as a refused save, may take that long
    for each), plus the driver's close of a connection cut off midway (asyncpg's takes up
    to 2 s). After a timed-out ``save`` the write may or may not have happened: ``load``
    tells once the server gave the statement up (:meth:`from_url` bounds its lock
    waits). A failed save leaves the row as it was: each save is one statement (with
    ``max_per_subject``, a new subject's row is inserted before the sessions over the cap
    end; if that step fails, the new row stays and the others end at the next sign-in).

    Failures: an unreachable database, a timeout, a connection lost mid-call or a server
    error raise :class:`~typed_sessions.StoreUnavailableError`; a row that is not a valid
    record for ``data_type`` (garbage, a record written for an older data model that
    ``upgrade``, if given, does not turn into a valid one) raises
    :class:`~typed_sessions.StoreCorruptError`. Both are
    :class:`~typed_sessions.StoreError`; no SQLAlchemy or driver exception escapes and a
    failure never reads as "no session". The pool reconnects by itself, so service
    resumes when the database is back, with the same store. ``on_corrupt="discard"``
    instead treats an unreadable row as no session: ``load`` deletes it (one extra
    statement), logs a warning with the ID's short digest (never the ID), returns ``None``.
    """

    @overload
    def __init__(
        self,
        engine: AsyncEngine,
        data_type: type[T],
        *,
        table: Table | None = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        engine: AsyncEngine,
        data_type: object,
        *,
        table: Table | None = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        engine: AsyncEngine,
        data_type: Any,
        *,
        table: Table | None = None,
        timeout: float | None = DEFAULT_SQL_TIMEOUT,
        clock: Clock = utc_now,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
        on_corrupt: OnCorrupt = "raise",
        max_per_subject: int | None = None,
    ) -> None:
        """Make a store over ``engine`` for sessions holding ``data_type``.

        ``timeout`` is in seconds per round trip; ``None`` leaves calls unbounded (not
        recommended). ``clock`` gives the time expiry is checked against.
        ``max_data_bytes`` bounds each session's data, in bytes of JSON (default 64 KiB,
        ``None``: no limit): a larger save raises ``SessionTooLargeError`` before any
        statement is sent. ``upgrade`` reads data stored for an older model: it is given
        the stored JSON value when it does not validate, and the record is written in the
        current shape on its next save (see ``SessionCodec``). ``max_per_subject`` caps a
        subject's live sessions (see :class:`~typed_sessions.SubjectIndex`; ``None``: no
        cap).

        Raises:
            ValueError: ``timeout`` or ``max_data_bytes`` is not positive, ``on_corrupt``
                is unknown, or ``max_per_subject`` is less than 1.
        """
        check_store_options(timeout, on_corrupt, max_per_subject)
        self.engine = engine
        self.table: Table = session_table() if table is None else table
        self.codec: SessionCodec[T] = SessionCodec(
            data_type, max_data_bytes=max_data_bytes, upgrade=upgrade
        )
        self.timeout = timeout
        self.on_corrupt: OnCorrupt = on_corrupt
        self._clock = checked_clock(clock)
        self.max_per_subject = max_per_subject
        self._sql = Statements.build(self.table, cap=max_per_subject)
        self.owns_engine = False
        """Whether :meth:`aclose` disposes of the engine (:meth:`from_url` sets it)."""
        self._calls = SqlCalls(engine, timeout)
        self._writes = SqlWrites(self._calls, self._sql)
        self._subjects = SqlSubjects(
            self._calls, self._sql, self.table, self._now, cap=max_per_subject,
            discard=on_corrupt == "discard",
        )  # fmt: skip

    @overload
    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: type[_D],
        *,
        table: Table | None = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
        **engine_options: Any,
    ) -> SqlStore[_D]: ...

    @overload
    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: object,
        *,
        table: Table | None = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
        **engine_options: Any,
        # _D comes from the context, as in `store: SqlStore[A | B] = SqlStore.from_url(...)`
    ) -> SqlStore[_D]: ...  # pyright: ignore[reportInvalidTypeVarUse]

    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: Any,
        *,
        table: Table | None = None,
        timeout: float | None = DEFAULT_SQL_TIMEOUT,
        clock: Clock = utc_now,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
        on_corrupt: OnCorrupt = "raise",
        max_per_subject: int | None = None,
        **engine_options: Any,
    ) -> SqlStore[Any]:
        """Make a store with its own engine for ``url`` (for example
        ``postgresql+asyncpg://user@host/db``, ``mysql+aiomysql://...``,
        ``sqlite+aiosqlite:///sessions.db``); close it with :meth:`aclose` or ``async with``.

        The engine runs in autocommit mode; ``engine_options`` (the keyword arguments that
        are not the constructor's) go to ``create_async_engine``. No connection is made
        until the first call. The server's lock waits and SQLite's busy wait are bounded
        by ``timeout`` too (see :func:`~.sql_calls.driver_limits`).
        """
        engine_options.setdefault("isolation_level", "AUTOCOMMIT")
        engine_options.setdefault("skip_autocommit_rollback", True)
        driver_limits(url, timeout, engine_options)  # the server's lock waits too
        engine = lasting_engine(url, **engine_options)  # SQLite in memory: kept open
        store: SqlStore[Any] = cls(
            engine, data_type, table=table, timeout=timeout, clock=clock,
            max_data_bytes=max_data_bytes, upgrade=upgrade, on_corrupt=on_corrupt,
            max_per_subject=max_per_subject,
        )  # fmt: skip
        store.owns_engine = True
        return store

    async def aclose(self) -> None:
        """Dispose of the engine if this store made it (:meth:`from_url`)."""
        if self.owns_engine:
            await self.engine.dispose()
            release(self.engine)

    async def __aenter__(self) -> SqlStore[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def create_table(self) -> None:
        """Create the table and its indexes unless they exist (a quick start; use
        migrations in production). Workers starting at once may all call it: a try fails
        only when another worker made one of the parts meanwhile; one more try per part."""
        parts = 1 + len(self.table.indexes)  # each may fail once, made by another worker
        await self._calls.ddl(create_with_indexes(self.table), attempts=1 + parts)

    async def drop_table(self) -> None:
        """Drop the table if it exists (for tests), with every session in it."""
        await self._calls.ddl(self.table.drop)

    @staticmethod
    def key_for(session_id: SessionId | str) -> str:
        """Return the row key of ``session_id``: its SHA-256 as 64 hex digits."""
        return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()

    async def ping(self) -> None:
        """Check that the database answers and holds the table (for readiness probes):
        one ``SELECT`` of no row through the primary key; raise ``StoreUnavailableError``."""
        await self._calls.fetch(self._sql.version, {"b_key": "", "b_now": 0}, retry_stale=True)

    async def load(self, session_id: SessionId) -> Session[T] | None:
        """Return the live session ``session_id`` (a fresh copy), or ``None``: one ``SELECT``.

        Raises:
            StoreUnavailableError: the database cannot be reached in time or failed.
            StoreCorruptError: the row is not a valid record (unless discarding).
        """
        key = self.key_for(session_id)
        params = {"b_key": key, "b_now": to_micros(self._clock())}
        try:
            row = await self._calls.fetch(self._sql.load, params, retry_stale=True)
        except StoreCorruptError as exc:  # a column the driver cannot read (see SqlCalls)
            found = await self._calls.fetch(self._sql.version, params, retry_stale=True)
            return None if found is None else await self._corrupt(key, found[0], str(exc))
        if row is None:
            return None
        match decode_record(self.codec, session_id, row):
            case Ok(session):
                return session
            case Err(error):
                return await self._corrupt(key, row[0], error.reason)

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Compare-and-set ``session`` on its version: one statement, two when refused.

        A record whose ``expires_at`` has passed is deleted instead of written (after the
        same version check). Returns the saved record with the next version, or
        ``Err(Conflict)`` with the stored version (``None``: no live record) and nothing
        changed.

        Raises:
            SessionEncodeError: the data is not JSON-serializable (before any I/O).
            ValueError: the subject is not a valid subject (before any I/O).
            StoreUnavailableError: the database cannot be reached in time or failed.
        """
        data = self.codec.encode_data(session.data).decode()
        if session.subject is not None:
            checked_subject(session.subject)  # a bad one raises ValueError before any write
        version = session.version + 1
        saved = replace(session, version=version)
        key = self.key_for(session.id)
        now = to_micros(self._clock())
        params: dict[str, Any] = {"b_key": key, "b_now": now, "b_expected": session.version}
        if to_micros(session.expires_at) <= now:
            done = await self._writes.end(params)
        elif session.version == 0:
            done = await self._writes.insert(params, inserted_row(key, saved, data))
            if done is None and saved.subject is not None:
                await self._subjects.enforce_cap(saved, now)
        else:
            params |= updated_values(saved, data)
            done = await self._writes.update(params)
        return Ok(saved) if done is None else Err(done)

    async def delete(self, session_id: SessionId) -> None:
        """Remove ``session_id``; a missing one is fine. One ``DELETE``.

        Raises:
            StoreUnavailableError: the database cannot be reached in time or failed.
        """
        await self._calls.write(
            self._sql.delete, {"b_key": self.key_for(session_id)}, retry_stale=True
        )

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        """Return ``subject``'s live sessions, oldest first: one ``SELECT``.

        Raises:
            ValueError: ``subject`` is not a valid subject.
            StoreUnavailableError: the database cannot be reached in time or failed.
            StoreCorruptError: a row is not valid (unless discarding: then not listed).
        """
        return await self._subjects.list_subject(subject)

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        """End ``subject``'s live session with public ``handle``: one ``DELETE``."""
        return await self._subjects.end_subject_session(subject, handle)

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End ``subject``'s live sessions but ``keep``; return how many: a ``DELETE``, then
        a check that none is left (again if one moved to a new ID meanwhile)."""
        return await self._subjects.end_subject(subject, keep=keep)

    async def end_all(self) -> int:
        """End every live session that has a subject; return how many: as :meth:`end_subject`,
        over the rows with a subject (through its index), until none signed in before is left."""
        return await self._subjects.end_all()

    async def purge_expired(self, *, batch: int = 1000) -> int:
        """Delete every expired row, at most ``batch`` per statement; return how many.

        Each batch is one short ``DELETE`` through the expiry index (no table-wide lock,
        no transaction across batches), so reads and writes go on meanwhile.

        Raises:
            ValueError: ``batch`` is less than 1.
            StoreUnavailableError: the database cannot be reached in time or failed.
        """
        return await purge_expired(self._calls, self.table, self._now, batch=batch)

    @asynccontextmanager
    async def purging(
        self, every: timedelta = timedelta(minutes=5), *, batch: int = 1000
    ) -> AsyncGenerator[asyncio.Task[None], None]:
        """Run :meth:`purge_expired` every ``every`` in a background task while the block
        runs (for an app's lifespan); a failed purge is logged and tried again later."""
        async with purging(self.purge_expired, every, batch=batch) as task:
            yield task

    def _now(self) -> int:
        return to_micros(self._clock())

    async def _corrupt(self, key: str, version: int, reason: str) -> Session[T] | None:
        """Raise ``StoreCorruptError`` or, when discarding, delete the row and return None."""
        if self.on_corrupt == "raise":
            raise StoreCorruptError(f"unreadable session record in SQL: {reason}")
        # The key is the ID's SHA-256: its first 12 digits are the ID's usual digest.
        _logger.warning("discarding unreadable session record: %s [sid#%s]", reason, key[:12])
        await self._calls.write(self._sql.drop_corrupt, {"b_key": key, "b_expected": version})
        return None
