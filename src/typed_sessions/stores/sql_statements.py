"""The statements of :class:`~typed_sessions.stores.sql.SqlStore`, built once per table.

Each is a single statement; the store runs it in autocommit mode. Parameters are bound
by name (``b_key``: the row key, ``b_now``: the current time in microseconds,
``b_expected``: the version the caller loaded, and the new values).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Delete, Insert, Select, Table, Update, bindparam, delete, select

__all__ = ["Statements", "purge_statement"]


@dataclass(frozen=True, slots=True)
class Statements:
    """The store's statements, built once (SQLAlchemy caches their compiled form)."""

    load: Select[tuple[int, str, int, int, int]]
    version: Select[tuple[int]]
    insert: Insert
    update: Update
    end: Delete
    delete: Delete
    drop_expired: Delete
    drop_corrupt: Delete

    @classmethod
    def build(cls, t: Table) -> Statements:
        key = t.c.key == bindparam("b_key")
        now = bindparam("b_now", type_=BigInteger)
        live = t.c.expires_at > now
        same = t.c.version == bindparam("b_expected")
        columns = (t.c.version, t.c.data, t.c.created_at, t.c.last_active, t.c.expires_at)
        return cls(
            load=select(*columns).where(key, live),
            version=select(t.c.version).where(key, live),
            insert=t.insert(),
            update=t.update()
            .where(key, same, live)
            .values(
                version=bindparam("b_version"),
                data=bindparam("b_data"),
                last_active=bindparam("b_last_active"),
                expires_at=bindparam("b_expires_at"),
            ),
            end=delete(t).where(key, same, live),
            delete=delete(t).where(key),
            drop_expired=delete(t).where(key, t.c.expires_at <= now),
            drop_corrupt=delete(t).where(key, same),
        )


def purge_statement(t: Table, dialect: str, batch: int) -> Delete:
    """One bounded batch: ``batch`` expired rows at most, found through the expiry index."""
    expired = t.c.expires_at <= bindparam("b_now")
    if dialect in ("mysql", "mariadb"):  # no LIMIT in a subquery there; DELETE takes one
        return delete(t).where(expired).with_dialect_options(mysql_limit=batch)
    oldest = select(t.c.key).where(expired).order_by(t.c.expires_at).limit(batch)
    if dialect == "postgresql":  # two purgers at once share the work instead of waiting
        oldest = oldest.with_for_update(skip_locked=True)
    return delete(t).where(t.c.key.in_(oldest.scalar_subquery()), expired)
