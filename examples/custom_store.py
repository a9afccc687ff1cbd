"""A store of your own: any class with async load/save/delete is a SessionStore.

This one keeps JSON in a plain dict, the way a store over any key-value service would:
it honours the versioned compare-and-set and the record's expiry.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Generic, TypeVar

from typed_sessions import (
    Conflict,
    Err,
    Ok,
    Result,
    Session,
    SessionCodec,
    SessionId,
    SessionStore,
    StoreCorruptError,
)

T = TypeVar("T")


class DictStore(Generic[T]):
    """Sessions in a dict of JSON bytes, with their versions. One process only."""

    def __init__(self, data_type: type[T]) -> None:
        self.codec: SessionCodec[T] = SessionCodec(data_type)
        self.rows: dict[SessionId, tuple[int, datetime, bytes]] = {}

    async def load(self, session_id: SessionId) -> Session[T] | None:
        row = self.rows.get(session_id)
        if row is None or row[1] <= datetime.now(UTC):
            return None
        match self.codec.decode(row[2]):
            case Ok(session):
                return session
            case Err(error):
                raise StoreCorruptError(error.reason)  # never "no session"

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        row = self.rows.get(session.id)
        found = None if row is None or row[1] <= datetime.now(UTC) else row[0]
        if found != (session.version or None):  # new records (version 0) must be absent
            return Err(Conflict(expected=session.version, found=found))
        saved = dataclasses.replace(session, version=session.version + 1)
        self.rows[session.id] = (saved.version, saved.expires_at, self.codec.encode(saved))
        return Ok(saved)

    async def delete(self, session_id: SessionId) -> None:
        self.rows.pop(session_id, None)


def as_store(store: DictStore[T]) -> SessionStore[T]:
    """mypy checks here that DictStore satisfies the protocol, without inheriting."""
    return store
