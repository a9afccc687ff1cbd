"""Session records to JSON and back, through pydantic. Never pickle.

The data type may be anything pydantic validates: a ``BaseModel``, a ``TypedDict``, a
dataclass, ``dict[str, Any]``. Decoding untrusted or corrupt bytes gives ``Err``;
encoding data pydantic cannot serialize raises :class:`SessionEncodeError`, before any
store is written. So does data that would not load again: data that does not validate
as the data type (a model changed with ``model_copy(update=...)`` or plain attribute
assignment, which pydantic does not validate, or a value of another type), and data
nested deeper than pydantic's JSON parser reads back (about 200 levels of lists and
dicts). A store never holds a record it cannot load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar, overload

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session

__all__ = ["DecodeError", "SessionCodec", "SessionEncodeError"]

T = TypeVar("T")


class SessionEncodeError(TypeError):
    """Session data could not be serialized as JSON (a programming error in the app)."""


@dataclass(frozen=True, slots=True)
class DecodeError:
    """Stored bytes that are not a valid session record for this data type."""

    reason: str


class SessionCodec(Generic[T]):
    """Encodes ``Session[T]`` records as JSON bytes and decodes them back, validated."""

    __slots__ = ("_always_read_back", "_data", "_record", "data_type")

    @overload
    def __init__(self: SessionCodec[T], data_type: type[T]) -> None: ...
    @overload
    def __init__(self: SessionCodec[Any], data_type: Any) -> None: ...

    def __init__(self, data_type: Any) -> None:
        """Build the codec for records holding ``data_type`` (any type pydantic validates)."""
        self.data_type = data_type
        # Calls go to the adapters' pydantic-core serializer and validator, looked up on
        # each call: TypeAdapter's Python wrappers cost more than encoding a small session,
        # and a model whose forward references are resolved later builds on first use.
        self._record: TypeAdapter[Session[T]] = TypeAdapter(Session[data_type])
        self._data: TypeAdapter[T] = TypeAdapter(data_type)
        # Any JSON object loads again as a dict of JSON values; other types must be
        # checked, since pydantic serializes data that no longer validates.
        self._always_read_back = not any(data_type is t or data_type == t for t in _ANY_JSON)

    def encode(self, session: Session[T]) -> bytes:
        """Return the JSON for ``session``.

        Raises:
            SessionEncodeError: the data holds something JSON cannot represent, or would
                not load again (see the module documentation).
        """
        try:
            raw: bytes = self._record.serializer.to_json(session)
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise SessionEncodeError(f"session data is not JSON-serializable: {exc}") from exc
        return _readable(raw, self._record.validator.validate_json, always=self._always_read_back)

    def decode(self, raw: bytes | str) -> Result[Session[T], DecodeError]:
        """Return the record in ``raw``, or ``Err`` when it is not one. Never raises."""
        try:
            return Ok(self._record.validator.validate_json(raw))
        except ValidationError as exc:
            return Err(DecodeError(f"invalid session record ({exc.error_count()} errors)"))
        except (ValueError, TypeError) as exc:  # pragma: no cover - defensive
            return Err(DecodeError(f"undecodable session record: {type(exc).__name__}"))

    def encode_data(self, data: T) -> bytes:
        """Return the JSON for the session data alone (for stores that keep the rest).

        Raises:
            SessionEncodeError: the data holds something JSON cannot represent, or would
                not load again.
        """
        try:
            raw: bytes = self._data.serializer.to_json(data)
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise SessionEncodeError(f"session data is not JSON-serializable: {exc}") from exc
        return _readable(raw, self._data.validator.validate_json, always=self._always_read_back)

    def decode_data(self, raw: bytes | str) -> Result[T, DecodeError]:
        """Return the session data in ``raw``, validated, or ``Err``. Never raises."""
        try:
            return Ok(self._data.validator.validate_json(raw))
        except ValidationError as exc:
            return Err(DecodeError(f"invalid session data ({exc.error_count()} errors)"))
        except (ValueError, TypeError) as exc:  # pragma: no cover - defensive
            return Err(DecodeError(f"undecodable session data: {type(exc).__name__}"))


# Data types whose every JSON encoding validates again (nesting depth aside).
_ANY_JSON: Final[tuple[object, ...]] = (dict[str, Any], dict, Any)

# pydantic's JSON parser refuses nesting deeper than about 200 levels, which its serializer
# still writes. JSON that deep has at least that many brackets; below this many, counted at
# C speed, it cannot be too deep, and only above it is the encoding read back to be sure.
_READ_BACK_ABOVE = 128


def _readable(raw: bytes, load: Callable[[bytes], object], *, always: bool) -> bytes:
    """Return ``raw`` when ``load`` can decode it again; raise ``SessionEncodeError``.

    Decodes ``raw`` to be sure when ``always`` is set or it may be nested too deeply.
    """
    if not always and raw.count(b"[") + raw.count(b"{") <= _READ_BACK_ABOVE:
        return raw
    try:
        load(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "data"
        hint = " (nested too deeply?)" if first["type"] == "json_invalid" else ""
        message = (
            f"session data would be stored but could not be read back: {where}: "
            f"{first['msg']}{hint}. Validate changed data (for example with "
            "model_validate) before saving it."
        )
        raise SessionEncodeError(message) from exc
    return raw
