"""Time as an argument: the clock type and the default UTC clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeAlias

__all__ = ["Clock", "utc_now"]

Clock: TypeAlias = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware ``datetime``."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC ``datetime`` (the default clock)."""
    return datetime.now(UTC)
