"""The session table on your application's MetaData, so that Alembic's autogenerate
writes its migration like any other table's (``target_metadata = Base.metadata`` in
``alembic/env.py``), and a store over the engine the application already has."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase

from typed_sessions import SqlStore, session_table


class Base(DeclarativeBase):
    """The application's models' base: its ``metadata`` is what Alembic compares."""


sessions = session_table(Base.metadata, name="sessions")


def make_store(engine: AsyncEngine) -> SqlStore[dict[str, Any]]:
    """A store over the application's own engine (the application disposes of it)."""
    return SqlStore(engine, dict[str, Any], table=sessions)
