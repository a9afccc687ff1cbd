"""Building named tuples on the hot path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["new_tuple"]

new_tuple: Final[Callable[..., Any]] = tuple.__new__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
"""``tuple.__new__``: ``new_tuple(Point, (x, y))`` is ``Point(x, y)`` for a named tuple
``Point``, without the Python frame of its generated ``__new__`` (about twice the cost)."""
