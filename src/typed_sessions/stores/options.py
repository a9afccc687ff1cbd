"""The options the shared stores have in common, checked once for all of them."""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["OnCorrupt", "check_store_options"]

OnCorrupt: TypeAlias = Literal["raise", "discard"]
"""What a shared store does with a stored record it cannot read: raise
``StoreCorruptError`` (``"raise"``), or delete it and read it as no session (``"discard"``)."""


def check_store_options(
    timeout: float | None, on_corrupt: object, max_per_subject: int | None
) -> None:
    """Raise ``ValueError`` for a ``timeout``, ``on_corrupt`` or ``max_per_subject`` out of
    its range (a positive number of seconds or ``None``; an :data:`OnCorrupt`; at least 1
    or ``None``)."""
    if timeout is not None and not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds or None")
    if on_corrupt not in ("raise", "discard"):
        raise ValueError(f"on_corrupt must be 'raise' or 'discard', not {on_corrupt!r}")
    if max_per_subject is not None and max_per_subject < 1:
        raise ValueError("max_per_subject must be at least 1 or None")
