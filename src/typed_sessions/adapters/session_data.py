"""The dict-like session the middleware hands to handlers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from typed_sessions.adapters.errors import SessionUsageError

__all__ = ["SessionData"]


class SessionData(dict[str, Any]):
    """The session: a ``dict`` of JSON values (str keys; str, int, float, bool, None,
    lists and dicts of them). Tuples are stored as lists.

    Reads are plain ``dict`` reads. Writes check that the key is a ``str`` and that the
    session can still be written (see :class:`SessionClosedError` and
    :class:`WebSocketSessionError`). Nested changes need no special call: they are found
    by comparing JSON when the response starts.
    """

    __slots__ = ("_blocked",)

    _blocked: Callable[[], SessionUsageError] | None

    def __init__(self, data: Mapping[str, Any] | None = None, /) -> None:
        """Make a session holding a shallow copy of ``data``."""
        super().__init__(() if data is None else data)
        self._blocked = None

    def block(self, error: Callable[[], SessionUsageError]) -> None:
        """Refuse every later write with ``error()``: the middleware calls it when the
        session can no longer be saved (the response started) or started (a WebSocket)."""
        self._blocked = error

    def _check(self) -> None:
        if self._blocked is not None:
            raise self._blocked()

    def __setitem__(self, key: str, value: Any) -> None:
        if self._blocked is not None:
            raise self._blocked()
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)

    def clear(self) -> None:
        """Remove every key."""
        self._check()
        super().clear()

    def pop(self, key: str, /, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``)."""
        self._check()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item."""
        self._check()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """Return ``self[key]``, first setting it to ``default`` when missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every key of ``other`` and ``kwargs`` (checked like ``self[key] = value``)."""
        pairs: Iterable[tuple[Any, Any]]
        if isinstance(other, Mapping):
            pairs = other.items()
        elif hasattr(other, "keys"):
            pairs = ((key, other[key]) for key in other.keys())  # noqa: SIM118 - the dict.update protocol
        else:
            pairs = other
        for key, value in pairs:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __ior__(self, other: Any) -> SessionData:  # type: ignore[override,misc]  # dict.__ior__ returns Self; ours is the same object
        self.update(other)
        return self
