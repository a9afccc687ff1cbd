"""What a session store is: a structural protocol, its conflict value and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Result
from typed_sessions.core.session import Session

__all__ = [
    "Conflict",
    "SessionStore",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "check_store",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Conflict:
    """A save refused because the stored record is not the version the caller loaded.

    ``expected`` is the version the caller's record carried; ``found`` is the version in
    the store (``None`` when the record is gone, for example deleted or expired).
    """

    expected: int
    found: int | None


class StoreError(Exception):
    """The store could not do what was asked. Adapters answer 503; never "no session"."""


class StoreUnavailableError(StoreError):
    """The store could not be reached in time (connection refused, timeout, server error)."""


class StoreCorruptError(StoreError):
    """The store holds a record that is not a valid session for this data type."""


class SessionStore(Protocol[T]):
    """Any object with these three async methods is a session store.

    ``load`` returns ``None`` for a missing or expired session. ``save`` is a
    compare-and-set on ``Session.version``: it writes only when the stored version equals
    the record's (or the record is new, version ``0``, and absent), and returns the saved
    record with the next version; otherwise ``Err(Conflict)`` and nothing changes. The
    record's ``expires_at`` is its time to live. ``delete`` of a missing ID is not an
    error. Failures raise :class:`StoreError`.
    """

    async def load(self, session_id: SessionId) -> Session[T] | None:
        """Return the live session stored under ``session_id``, or ``None``."""
        ...

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Store ``session`` if its version is current; return it with the next version."""
        ...

    async def delete(self, session_id: SessionId) -> None:
        """Remove the session stored under ``session_id``, if any."""
        ...


_STORE_METHODS: Final = ("load", "save", "delete")


def check_store(store: object) -> None:
    """Refuse, when it is given, an object that is not a :class:`SessionStore` (from an
    untyped app, or written to another library's interface): its first save would fail.

    Raises:
        TypeError: ``store`` lacks one of ``load``, ``save`` and ``delete``.
    """
    missing = [name for name in _STORE_METHODS if not callable(getattr(store, name, None))]
    if missing:
        raise TypeError(
            f"{type(store).__name__} is not a session store: it has no "
            f"{', '.join(missing)} (a SessionStore has async load, save and delete; "
            "use MemoryStore, RedisStore or SqlStore, or write those three)"
        )
