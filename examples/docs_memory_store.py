"""The embedded store: bounded, in this process's memory."""

from __future__ import annotations

from pydantic import BaseModel

from typed_sessions import MemoryStore


class SessionData(BaseModel):
    username: str


# At most 10,000 sessions; saving one more evicts the least recently used.
store = MemoryStore(SessionData, max_sessions=10_000)
