"""Time as an argument: the clock type and the default UTC clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

__all__ = ["EPOCH", "MICROSECOND", "Clock", "checked_clock", "utc_now"]

Clock: TypeAlias = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware ``datetime``."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch: times kept as integers count microseconds from it."""

MICROSECOND: Final = timedelta(microseconds=1)
"""``EPOCH + MICROSECOND * n`` is the ``datetime`` of ``n``; ``(t - EPOCH) // MICROSECOND``
the integer of ``t`` (exact both ways)."""


def utc_now() -> datetime:
    """Return the current time as an aware UTC ``datetime`` (the default clock)."""
    return datetime.now(UTC)


def checked_clock(clock: Clock) -> Clock:
    """Return ``clock`` after one call shows it gives an aware ``datetime``.

    Called where a clock is configured, so a naive one (``datetime.now``) fails at
    start-up instead of on every request.

    Raises:
        ValueError: the clock returned something other than an aware ``datetime``.
    """
    now = clock()
    if not isinstance(now, datetime) or now.utcoffset() is None:  # type: ignore[redundant-expr]  # any value at run time
        raise ValueError(
            f"clock must return an aware datetime (like typed_sessions.utc_now), not {now!r}"
        )
    return clock
