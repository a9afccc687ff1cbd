"""The session table of :class:`~typed_sessions.stores.sql.SqlStore`, as a SQLAlchemy ``Table``.

One row per session, keyed by the SHA-256 of the session ID (never the ID itself), so
reading the table (a dump, a replica, a log of statements) reveals no session ID:

=============  ============================  =============================================
column         type                          holds
=============  ============================  =============================================
key            VARCHAR(64), primary key      ``sha256(session_id).hexdigest()``
version        BIGINT                        the compare-and-set version (1 and up)
data           TEXT (LONGTEXT on MySQL)      the session data as JSON (pydantic)
created_at     BIGINT                        microseconds since the Unix epoch, UTC
last_active    BIGINT                        microseconds since the Unix epoch, UTC
expires_at     BIGINT, indexed               microseconds since the Unix epoch, UTC
subject        VARCHAR(256), indexed, null   who the session belongs to (a user ID)
handle         VARCHAR(22)                   the session's public handle (subject index)
auth_time      BIGINT, null                  when the subject last authenticated
device         TEXT, null                    the device it started from, as JSON
=============  ============================  =============================================

``subject`` and ``handle`` are compared exactly, case and trailing spaces included: on
MariaDB and MySQL, whose default collations ignore both, they are declared with
``COLLATE utf8mb4_nopad_bin`` (MariaDB) or ``utf8mb4_0900_bin`` (MySQL), so that "ada"
never matches "Ada" or "ada ".

Times are whole microseconds since the epoch: exact on every database (MySQL's DATETIME
drops microseconds unless declared otherwise, SQLite has no time type) and compared as
integers by the expiry index.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Dialect,
    Index,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

from typed_sessions.core.subjects import HANDLE_LENGTH, MAX_SUBJECT_LENGTH

__all__ = [
    "DEFAULT_TABLE_NAME",
    "create_with_indexes",
    "from_micros",
    "session_table",
    "to_micros",
]

DEFAULT_TABLE_NAME: Final = "typed_sessions"
"""The table name :func:`session_table` uses unless given another."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
_MYSQL: Final = frozenset({"mysql", "mariadb"})


class _ExactText(TypeDecorator[str]):
    """Text compared exactly, case and trailing spaces included: ``VARCHAR(length)``, with
    a binary no-pad collation on MariaDB and MySQL (whose default collations ignore both)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        length = self.length
        if dialect.name in _MYSQL:
            exact = (
                "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
            )
            return dialect.type_descriptor(mysql.VARCHAR(length, collation=exact))
        return dialect.type_descriptor(String(length))


def session_table(
    metadata: MetaData | None = None, *, name: str = DEFAULT_TABLE_NAME, schema: str | None = None
) -> Table:
    """Return the session table, defined on ``metadata`` (a new ``MetaData`` if ``None``).

    Pass your application's ``MetaData`` so that Alembic's autogenerate sees the table and
    writes its migration; the indexes are named after the table (``ix_<name>_expires_at``,
    ``ix_<name>_subject``).
    """
    return Table(
        name,
        MetaData() if metadata is None else metadata,
        Column("key", String(64), primary_key=True),
        Column("version", BigInteger, nullable=False),
        Column("data", _LONG_TEXT, nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("last_active", BigInteger, nullable=False),
        Column("expires_at", BigInteger, nullable=False),
        Column("subject", _ExactText(MAX_SUBJECT_LENGTH), nullable=True),
        Column("handle", _ExactText(HANDLE_LENGTH), nullable=False),
        Column("auth_time", BigInteger, nullable=True),
        Column("device", Text, nullable=True),
        Index(f"ix_{name}_expires_at", "expires_at"),
        Index(f"ix_{name}_subject", "subject"),
        schema=schema,
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )


def create_with_indexes(table: Table) -> Callable[..., None]:
    """``run(connection, checkfirst=...)``: create ``table`` unless it exists, then each of
    its indexes unless it exists (so a table whose indexes were cut off gets them)."""

    def create(connection: Connection, checkfirst: bool = True) -> None:
        table.create(connection, checkfirst=checkfirst)
        for index in table.indexes:
            index.create(connection, checkfirst=checkfirst)

    return create


def to_micros(moment: datetime) -> int:
    """Return the aware ``moment`` as whole microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Return the UTC time ``micros`` microseconds after the Unix epoch.

    Raises:
        OverflowError: out of ``datetime``'s range (a corrupt row).
    """
    return _EPOCH + timedelta(microseconds=micros)
