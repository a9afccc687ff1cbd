"""A user's sessions, for apps: list them, end one, end all others, end all.

A dependency made by ``make_cookie_dependency`` (or ``make_header_dependency``) is also a
:class:`UserSessions` when its store keeps a subject index (every built-in store does)::

    @app.get("/sessions")
    async def mine(session: Annotated[Session[User], Depends(current)]) -> list[SessionInfo]:
        return await current.sessions_of(session)  # the current one marked

Sessions are found through their subject only: a session never lists or ends another
subject's, and a session is named by its public handle, never by its ID.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Generic, TypeVar

from typed_sessions.core.session import Session
from typed_sessions.core.subjects import SessionInfo, session_handle
from typed_sessions.stores.protocol import SessionStore
from typed_sessions.stores.subjects import SubjectIndex, subject_index

__all__ = ["UserSessions"]

T = TypeVar("T")


class UserSessions(Generic[T]):
    """Listing and ending a subject's sessions through the dependency's own store."""

    store: SessionStore[T]

    def _index(self) -> SubjectIndex:
        index = subject_index(self.store)
        if index is None:
            raise TypeError(
                f"{type(self.store).__name__} keeps no subject index: it has no "
                "list_subject/end_subject_session/end_subject/end_all methods"
            )
        return index

    @staticmethod
    def _subject(session: Session[T]) -> str:
        if session.subject is None:
            raise ValueError("this session has no subject: sign in with subject= first")
        return session.subject

    async def sessions_of(self, session: Session[T]) -> list[SessionInfo]:
        """The live sessions of ``session``'s subject, oldest first, ``session``'s own
        marked ``current``.

        Raises:
            ValueError: ``session`` has no subject.
            TypeError: the store keeps no subject index.
            StoreError: the store failed.
        """
        mine = session_handle(session.id)
        listed = await self._index().list_subject(self._subject(session))
        return [replace(info, current=True) if info.handle == mine else info for info in listed]

    async def end_one(self, session: Session[T], handle: str) -> bool:
        """End the session of ``session``'s subject with public handle ``handle``.

        ``False`` (nothing ended) for a handle that is not one of its subject's live
        sessions: guessed, already ended, another user's, or listed before its session
        moved to a new ID (a sign-in, a re-authentication): list the sessions again.
        """
        return await self._index().end_subject_session(self._subject(session), handle)

    async def end_others(self, session: Session[T]) -> int:
        """End every other session of ``session``'s subject ("sign out everywhere
        else", after a password change); returns how many ended."""
        return await self._index().end_subject(self._subject(session), keep=session.id)

    async def end_all_of(self, subject: str) -> int:
        """End every session of ``subject`` (an account disabled or deleted, an admin's
        action); returns how many ended."""
        return await self._index().end_subject(subject)

    async def end_every_session(self) -> int:
        """End every session of every subject (see ``SubjectIndex.end_all`` for its cost
        on each store, and key rotation as the cheap alternative)."""
        return await self._index().end_all()
