"""The dict-like session the middleware hands to handlers, recording what they read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from typing_extensions import TypeIs

from typed_sessions.adapters.errors import SessionUsageError
from typed_sessions.core.changes import NOTHING_READ, ReadSet

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

__all__ = ["SessionData"]

# dict's own methods, typed once (pyright sees the bare class's as dict[Unknown, Unknown]):
# the hot reads and writes call them without super().
_getitem: Callable[[dict[str, Any], str], Any] = dict.__getitem__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_get: Callable[[dict[str, Any], str, Any], Any] = dict.get  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_contains: Callable[[dict[str, Any], object], bool] = dict.__contains__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_setitem: Callable[[dict[str, Any], str, Any], None] = dict.__setitem__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_update: Callable[[dict[str, Any], Mapping[str, Any]], None] = dict.update  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


class SessionData(dict[str, Any]):
    """The session: a ``dict`` of JSON values (str keys; str, int, float, bool, None,
    lists and dicts of them). Tuples are stored as lists.

    Writes check that the key is a ``str`` and that the session can still be written
    (see :class:`SessionClosedError` and :class:`WebSocketSessionError`). Nested changes
    need no special call: they are found by comparing JSON when the response starts.

    Reads of a stored session are recorded (:meth:`reads`): each key read or tested with
    ``in``, the key set when iterated or measured, everything when copied, compared or
    listed with ``items()``/``values()``. When another request saved the session
    meanwhile, a request whose changes rest on a value that changed is refused instead
    of overwriting it (see the concurrency guide).
    """

    __slots__ = ("_blocked", "_everything", "_key_set", "_keys", "_seen", "_written")

    _blocked: Callable[[], SessionUsageError] | None
    _keys: set[str] | None
    _seen: set[str] | None

    def __init__(self, data: Mapping[str, Any] | None = None, track: bool = False) -> None:
        """Make a session holding a shallow copy of ``data``; with ``track``, its reads
        recorded from the start (as after :meth:`track`)."""
        if data is not None:
            _update(self, data)
        self._blocked = None
        self._keys = set() if track else None
        self._seen = None
        self._key_set = False
        self._everything = False
        self._written = False

    # --- the middleware's controls ------------------------------------------------------

    @property
    def written(self) -> bool:
        """Whether a write method was called (a set, delete, ``pop``, ``clear``...), even
        one that changed nothing. Changes inside nested values are not writes."""
        return self._written

    def track(self) -> None:
        """Start recording reads (the middleware does, for a stored session)."""
        self._keys = set()

    def reads(self) -> ReadSet:
        """What was read while reads were recorded (nothing, if they never were)."""
        keys = self._keys if self._seen is None else self._seen
        if keys is None:
            return NOTHING_READ
        return ReadSet(frozenset(keys), self._key_set, self._everything)

    def block(self, error: Callable[[], SessionUsageError]) -> None:
        """Refuse every later write with ``error()`` and stop recording reads: the
        middleware calls it when the session can no longer be saved (the response
        started) or started (a WebSocket)."""
        self._blocked = error
        if self._keys is not None:
            self._seen, self._keys = self._keys, None

    def _check(self) -> None:
        if self._blocked is not None:
            raise self._blocked()
        self._written = True

    def _read_everything(self) -> None:
        if self._keys is not None:
            self._everything = True

    def _read_key_set(self) -> None:
        if self._keys is not None:
            self._key_set = True

    # --- reads ----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        keys = self._keys
        if keys is not None:
            keys.add(key)
        return _getitem(self, key)

    def get(self, key: str, default: Any = None, /) -> Any:
        """Return ``self[key]``, or ``default`` when missing."""
        keys = self._keys
        if keys is not None:
            keys.add(key)
        return _get(self, key, default)

    def __contains__(self, key: object) -> bool:
        keys = self._keys
        if keys is not None and type(key) is str:
            keys.add(key)
        return _contains(self, key)

    def __iter__(self) -> Iterator[str]:
        self._read_key_set()
        return super().__iter__()

    def __reversed__(self) -> Iterator[str]:
        self._read_key_set()
        return super().__reversed__()

    def __len__(self) -> int:
        self._read_key_set()
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        """The keys (a read of the key set)."""
        self._read_key_set()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        """The values (a read of everything)."""
        self._read_everything()
        return super().values()

    def items(self) -> dict_items[str, Any]:
        """The items (a read of everything)."""
        self._read_everything()
        return super().items()

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` copy (a read of everything)."""
        self._read_everything()
        return dict(super().items())

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        """Pickled and copied (``copy``, ``deepcopy``) as a plain ``dict``, as
        :meth:`copy` returns: the session itself belongs to its request."""
        return dict, (self.copy(),)

    def __eq__(self, other: object) -> bool:
        self._read_everything()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._read_everything()
        return super().__ne__(other)

    def __repr__(self) -> str:
        self._read_everything()
        return super().__repr__()

    # --- writes ---------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        if self._blocked is not None:
            raise self._blocked()
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._written = True
        _setitem(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)

    def clear(self) -> None:
        """Remove every key."""
        self._check()
        super().clear()

    def pop(self, key: str, /, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``): a read and a write."""
        self._check()
        keys = self._keys
        if keys is not None:
            keys.add(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item (a read of the key set, and of the
        key it returns)."""
        self._check()
        self._read_key_set()
        key, value = super().popitem()
        keys = self._keys
        if keys is not None:
            keys.add(key)
        return key, value

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        """Return ``self[key]``, first setting it to ``default`` when missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set every key of ``other`` and ``kwargs`` (checked like ``self[key] = value``)."""
        pairs: Iterable[tuple[Any, Any]]
        if _is_mapping(other):
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


def _is_mapping(value: object) -> TypeIs[Mapping[Any, Any]]:
    return isinstance(value, Mapping)  # (``isinstance`` alone: a Mapping of Unknown to pyright)
