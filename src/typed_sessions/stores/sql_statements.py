"""The statements of :class:`~typed_sessions.stores.sql.SqlStore`, built once per table.

Each is a single statement; the store runs it in autocommit mode. Parameters are bound
by name (``b_key``: the row key, ``b_now``: the current time in microseconds,
``b_expected``: the version the caller loaded, and the new values).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Delete,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    or_,
    select,
)

from typed_sessions.stores.sql_calls import Query

__all__ = ["Statements", "drop_keys"]


@dataclass(frozen=True, slots=True)
class Statements:
    """The store's statements, built once (SQLAlchemy caches their compiled form)."""

    load: Query
    version: Select[int]
    insert: Insert
    update: Update
    end: Delete
    delete: Delete
    drop_expired: Delete
    drop_corrupt: Delete
    list_subject: Query
    end_subject_session: Delete
    end_subject: Delete
    left_of_subject: Query
    end_all: Delete
    left_of_all: Query
    over_cap: Query | None

    @classmethod
    def build(cls, t: Table, *, cap: int | None) -> Statements:
        """The statements over ``t``; ``cap``: the store's ``max_per_subject``."""
        key = t.c.key == bindparam("b_key")
        now = bindparam("b_now", type_=BigInteger)
        live = t.c.expires_at > now
        same = t.c.version == bindparam("b_expected")
        subject = t.c.subject == bindparam("b_subject")
        times = (t.c.created_at, t.c.last_active, t.c.expires_at)
        return cls(
            load=select(
                t.c.version, t.c.data, *times, t.c.subject, t.c.auth_time, t.c.device
            ).where(key, live),
            version=select(t.c.version).where(key, live),
            insert=t.insert(),
            update=t.update()
            .where(key, same, live)
            .values({name: bindparam(f"b_{name}") for name in _UPDATED}),
            end=delete(t).where(key, same, live),
            delete=delete(t).where(key),
            drop_expired=delete(t).where(key, t.c.expires_at <= now),
            drop_corrupt=delete(t).where(key, same),
            list_subject=select(t.c.handle, *times, t.c.auth_time, t.c.device)
            .where(subject, live)
            .order_by(t.c.created_at, t.c.key),
            end_subject_session=delete(t).where(subject, t.c.handle == bindparam("b_handle"), live),
            end_subject=delete(t).where(subject, t.c.key != bindparam("b_keep"), live),
            left_of_subject=select(t.c.key)
            .where(subject, t.c.key != bindparam("b_keep"), live)
            .limit(1),
            end_all=delete(t).where(t.c.subject.is_not(None), live),
            left_of_all=select(t.c.key)  # (one signed in since is not left over)
            .where(
                t.c.subject.is_not(None), live, or_(t.c.auth_time.is_(None), t.c.auth_time < now)
            )
            .limit(1),
            over_cap=None
            if cap is None
            else select(t.c.key, t.c.created_at, t.c.auth_time).where(
                subject, live, t.c.key != bindparam("b_saved")
            ),
        )


_UPDATED = ("version", "data", "last_active", "expires_at", "subject", "auth_time", "device")


def drop_keys(t: Table, keys: list[str]) -> Delete:
    """Delete the rows of ``keys`` that still belong to the subject ``b_subject``."""
    return delete(t).where(t.c.key.in_(keys), t.c.subject == bindparam("b_subject"))
