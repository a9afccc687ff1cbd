"""The subject index: a second, optional store protocol beside ``SessionStore``.

A store that implements it finds sessions by their subject (the user's ID as text), not
only by ID: it lists a subject's live sessions, ends one of them by its public handle,
ends all of them (optionally keeping one), and ends every session of every subject.
Nothing ever crosses subjects: a handle acts only within the subject it is given with.

Adapters find out whether a store has the index with :func:`subject_index`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from typed_sessions.core.ids import SessionId
from typed_sessions.core.subjects import SessionInfo
from typed_sessions.stores.protocol import StoreError

__all__ = ["ENDING_PASSES", "SubjectIndex", "kept_rotating", "subject_index"]

ENDING_PASSES = 8
"""How many passes a built-in store's ``end_subject`` makes, at most: each ends what
rotated to a new ID during the one before (see :func:`kept_rotating`)."""


def kept_rotating(subject_sessions: str) -> StoreError:
    """The error of an ending that found sessions left after each of its
    :data:`ENDING_PASSES` passes (sessions moving to new IDs all along: a client signing
    in again and again): it cannot say they have ended, so it says they may not have."""
    return StoreError(
        f"{subject_sessions} kept moving to new IDs while they were ended: after "
        f"{ENDING_PASSES} passes some may be live; try again"
    )


@runtime_checkable
class SubjectIndex(Protocol):
    """Any object with these four async methods keeps a subject index.

    Only sessions saved with a ``subject`` are indexed. Expired and ended sessions are
    never listed, and their index entries are dropped when found (so the index does not
    grow with dead sessions). Failures raise :class:`~typed_sessions.StoreError`.

    Built-in stores take ``max_per_subject`` (default ``None``: no cap): when a saved
    session of a subject leaves it with more live sessions than that, its oldest ones
    (by ``created_at``) are ended, never the one being saved. A session moved to a new ID
    keeps its ``created_at``, and its two records count once until the old one ends (see
    :func:`~typed_sessions.core.subjects.beyond_cap`). GitLab caps a user's sessions at 100.
    """

    async def list_subject(self, subject: str) -> list[SessionInfo]:
        """Return ``subject``'s live sessions, oldest (``created_at``) first."""
        ...

    async def end_subject_session(self, subject: str, handle: str) -> bool:
        """End ``subject``'s session with public handle ``handle``.

        Returns ``True`` when such a session was live and has ended; ``False`` when
        ``subject`` has no live session with that handle (a guessed handle, another
        subject's, or one already ended), in which case nothing changes.
        """
        ...

    async def end_subject(self, subject: str, *, keep: SessionId | None = None) -> int:
        """End all of ``subject``'s sessions except ``keep``; return how many ended.

        ``keep`` is a session ID (the current request's), kept only when it is one of
        ``subject``'s sessions. Use it for "sign out everywhere else" after a password
        change; without it, for a disabled or deleted account. A session that moves to a
        new ID meanwhile is ended too, or this raises :class:`~typed_sessions.StoreError`
        (the built-in stores: when one keeps moving through :data:`ENDING_PASSES` passes).
        """
        ...

    async def end_all(self) -> int:
        """End every session of every subject; return how many ended.

        Sessions without a subject are kept. The cost grows with the number of sessions
        (each store documents its own). Rotating the signing keys instead (a ``Keyring``
        without any old key) invalidates every token at once for nothing, sessions
        without a subject included, while the records expire by themselves.
        """
        ...


def subject_index(store: object) -> SubjectIndex | None:
    """Return ``store`` as a :class:`SubjectIndex` when it has the index, else ``None``.

    A structural check (the four methods, callable), for adapters that offer the
    subject features only on stores that can do them.
    """
    return store if isinstance(store, SubjectIndex) else None
