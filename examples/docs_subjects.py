"""A user's sessions, at the store level: sign in on several devices, list them, end one,
end all the others, end them all.

Works with any store that keeps a subject index (``MemoryStore``, ``RedisStore``).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from typed_sessions import (
    Expiry,
    Ok,
    Session,
    SessionId,
    SessionInfo,
    SessionStore,
    SubjectIndex,
    device_from,
    new_session,
    session_handle,
    subject_index,
    utc_now,
)

EXPIRY = Expiry(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
Store = SessionStore[dict[str, Any]]


def index_of(store: Store) -> SubjectIndex:
    index = subject_index(store)  # a structural check: the four methods are there
    if index is None:
        raise RuntimeError(f"{type(store).__name__} keeps no subject index")
    return index


async def sign_in(
    store: Store, user_id: str, user_agent: str | None, address: str | None
) -> Session[dict[str, Any]]:
    """Start a session of ``user_id`` (after checking the password, say)."""
    now = utc_now()
    session = new_session(
        {"theme": "dark"},
        EXPIRY,
        now=now,
        subject=user_id,  # whose session it is: the user's ID as text
        auth_time=now,  # when they proved it
        device=device_from(user_agent, address, keep_address=True),  # "203.0.113.0/24"
    )
    saved = await store.save(session)
    assert isinstance(saved, Ok)
    return saved.value


async def my_sessions(store: Store, user_id: str, current: SessionId) -> list[SessionInfo]:
    """The "your sessions" page: oldest first, the one asking marked."""
    mine = session_handle(current)
    return [
        dataclasses.replace(info, current=info.handle == mine)
        for info in await index_of(store).list_subject(user_id)
    ]


async def sign_out_device(store: Store, user_id: str, handle: str) -> bool:
    """The "end" button: the handle comes from the page, so from the user; a handle
    that is not one of ``user_id``'s own sessions ends nothing."""
    return await index_of(store).end_subject_session(user_id, handle)


async def sign_out_everywhere_else(store: Store, user_id: str, current: SessionId) -> int:
    """After a password change: every other session of the user ends."""
    return await index_of(store).end_subject(user_id, keep=current)


async def disable_account(store: Store, user_id: str) -> int:
    """An account disabled or deleted: all of its sessions end."""
    return await index_of(store).end_subject(user_id)
