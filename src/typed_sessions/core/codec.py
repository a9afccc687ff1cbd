"""Session records to JSON and back, through pydantic. Never pickle.

The data type may be anything pydantic validates: a ``BaseModel``, a ``TypedDict``, a
dataclass, ``dict[str, Any]``. Decoding untrusted or corrupt bytes gives ``Err``;
encoding data pydantic cannot serialize raises :class:`SessionEncodeError`, before any
store is written. So does data that would not load again: data that does not validate
as the data type (a model changed with ``model_copy(update=...)`` or plain attribute
assignment, which pydantic does not validate, or a value of another type), and data
nested deeper than pydantic's JSON parser reads back (about 200 levels of lists and
dicts); and data pydantic would write as other data: a float that is NaN or infinite
(JSON has no spelling for it; pydantic writes ``null``), in ``dict`` data a key that is
not a ``str`` (written as one, it may collide with another), and typed data that reads
back otherwise (a ``SecretStr``, written masked). A store never holds a record it cannot
load. Values pydantic writes in a JSON form of their own (a
``datetime`` as ISO text, a tuple as a list) come back in that form in ``dict`` data,
as pydantic's own ``TypeAdapter(dict[str, Any])`` gives them; a model's typed fields
restore them.

Session data has a size limit: at most ``max_data_bytes`` of JSON (default
:data:`DEFAULT_MAX_DATA_BYTES`, 64 KiB); larger data raises :class:`SessionTooLargeError`
before any store is written. An ``upgrade`` function lets a new data model read records
written for an older one: when stored data does not validate, the codec passes its JSON
value to ``upgrade`` and validates what that returns instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, overload

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, from_json, to_json

from typed_sessions.core.read_back import (
    SessionEncodeError,
    SessionTooLargeError,
    read_back,
)
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session, record_fault
from typed_sessions.core.unfit import find_unfit

__all__ = [
    "DEFAULT_MAX_DATA_BYTES",
    "DecodeError",
    "SessionCodec",
    "SessionEncodeError",
    "SessionTooLargeError",
    "Upgrade",
]

T = TypeVar("T")
V = TypeVar("V")

DEFAULT_MAX_DATA_BYTES: Final = 64 * 1024
"""The default limit on a session's data, in bytes of JSON: 64 KiB. A cookie-carried
session would be limited to about 4 KiB; a server-side session can hold more, but a
session read and written on every request should stay small."""

Upgrade: TypeAlias = Callable[[Any], Any]
"""A pure function from the JSON value of session data in an older shape (dicts, lists,
strings, numbers, booleans, ``None``) to data in the current shape (JSON values again, or
an instance of the data type). It may raise for a shape it does not know: the record is
then unreadable, as without an upgrade."""


@dataclass(frozen=True, slots=True)
class DecodeError:
    """Stored bytes that are not a valid session record for this data type."""

    reason: str


class SessionCodec(Generic[T]):
    """Encodes ``Session[T]`` records as JSON bytes and decodes them back, validated.

    ``max_data_bytes`` bounds the data's JSON (``None``: no limit); ``upgrade`` reads data
    written for an older model (see the module documentation).
    """

    __slots__ = (
        "_always_read_back",
        "_by_alias",
        "_data",
        "_record",
        "data_type",
        "max_data_bytes",
        "upgrade",
    )

    @overload
    def __init__(
        self,
        data_type: type[T],
        *,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        data_type: object,
        *,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
    ) -> None: ...

    def __init__(
        self,
        data_type: Any,
        *,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
    ) -> None:
        """Build the codec for records holding ``data_type`` (any type pydantic validates).

        Raises:
            ValueError: ``max_data_bytes`` is not a positive ``int`` or ``None``.
        """
        if max_data_bytes is not None and (type(max_data_bytes) is not int or max_data_bytes < 1):
            raise ValueError(
                f"max_data_bytes must be a positive int or None, not {max_data_bytes!r}"
            )
        self.max_data_bytes: int | None = max_data_bytes
        self.upgrade: Upgrade | None = upgrade
        self.data_type: Any = data_type
        # Calls go to the adapters' pydantic-core serializer and validator, looked up on
        # each call: TypeAdapter's Python wrappers cost more than encoding a small session,
        # and a model whose forward references are resolved later builds on first use.
        self._record: TypeAdapter[Session[T]] = TypeAdapter(_GENERIC_SESSION[data_type])
        self._data: TypeAdapter[T] = TypeAdapter(data_type)
        # Any JSON object loads again as a dict of JSON values; other types must be
        # checked, since pydantic serializes data that no longer validates.
        self._always_read_back = not any(data_type is t or data_type == t for t in _ANY_JSON)
        self._by_alias = False  # see encode

    def encode(self, session: Session[T]) -> bytes:
        """Return the JSON for ``session``.

        Typed data is written by field name; if that does not read back, by alias (a
        field with an ``alias`` its model does not validate by name), and by alias from
        then on.

        Raises:
            SessionEncodeError: the data holds something JSON cannot represent, or would
                not load again (see the module documentation).
            SessionTooLargeError: the data's JSON is longer than ``max_data_bytes``.
        """
        return self._by_name_or_alias(self._encode, session)

    def encode_data(self, data: T) -> bytes:
        """Return the JSON for the session data alone (for stores that keep the rest),
        written as :meth:`encode` writes it.

        Raises:
            SessionEncodeError: the data holds something JSON cannot represent, or would
                not load again.
            SessionTooLargeError: the JSON is longer than ``max_data_bytes``.
        """
        return self._by_name_or_alias(self._encode_data, data)

    def _by_name_or_alias(self, encode: Callable[[V, bool], bytes], value: V) -> bytes:
        """``encode(value, by_alias)``: as the last value that read back was written (by
        name at first), else the other way, remembered if that reads back (a union of
        models may need each way for one of its members)."""
        first = self._by_alias
        try:
            return encode(value, first)
        except SessionTooLargeError:
            raise
        except SessionEncodeError as refused:
            if not self._always_read_back:
                raise
            try:
                raw = encode(value, not first)
            except SessionEncodeError:
                raise refused from refused.__cause__
            self._by_alias = not first
            return raw

    def _encode(self, session: Session[T], by_alias: bool) -> bytes:
        keys = not self._always_read_back  # dict data (models validate their own keys)
        if keys:
            self._check_top_keys(session.data)
        try:
            # ``Session`` leaves its ID out of pydantic's JSON (see there); a stored
            # record names its session, so the ID goes first, as a JSON string.
            rest: bytes = self._record.serializer.to_json(session, by_alias=by_alias)
            session_id = session.id  # empty in a store's records: no call to encode it
            head = b'{"id":' + to_json(session_id) + b"," if session_id else b'{"id":"",'
            raw = head + rest[1:]
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise SessionEncodeError(f"session data is not JSON-serializable: {exc}") from exc
        # As in encode_data, the record's own nulls and dicts told apart from the data's.
        device = session.device
        own_nulls = (session.subject is None) + (session.auth_time is None)
        own_nulls += device is None or device.address is None
        braces = rest.count(b"{")
        own_braces = 1 + isinstance(session.data, dict) + (device is not None)
        if (
            rest.count(b"null") > own_nulls
            or (keys and braces > own_braces)
            or _REPLACED in rest  # perhaps a key's lone surrogate: see _refuse
        ):
            self._refuse(session.data, keys=keys)
        limit = self.max_data_bytes
        if limit is not None and len(raw) > limit:  # the data alone may still be under it
            _check_size(len(self._data.serializer.to_json(session.data, by_alias=by_alias)), limit)
        if keys and raw.count(b"[") + braces <= _READ_BACK_ABOVE and len(raw) <= _LONG_INT:
            return raw  # nothing pydantic could read back otherwise
        given = session if self._always_read_back else None  # (JSON dicts: as pydantic reads them)
        return read_back(raw, self._record.validator.validate_json, given, self._dump)

    def decode(self, raw: bytes | str) -> Result[Session[T], DecodeError]:
        """Return the record in ``raw``, or ``Err`` when it is not one. Never raises.

        Data that does not validate goes through ``upgrade``, when there is one.
        """
        try:
            return _valid(self._record.validator.validate_json(raw))
        except Exception as exc:  # a model's validator may raise anything: a verdict too
            if self.upgrade is not None:
                return self._upgraded(raw, record=True)
            return Err(DecodeError(_invalid("record", exc)))

    def _encode_data(self, data: T, by_alias: bool) -> bytes:
        keys = not self._always_read_back  # dict data (models validate their own keys)
        if keys:
            self._check_top_keys(data)
        try:
            raw: bytes = self._data.serializer.to_json(data, by_alias=by_alias)
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise SessionEncodeError(f"session data is not JSON-serializable: {exc}") from exc
        # pydantic writes a NaN or infinity as null, and a nested key that is not a str
        # as one: a null, or a nested dict in dict data, is the sign to look closer.
        braces = raw.count(b"{")
        if raw.count(b"null") or (keys and braces > isinstance(data, dict)) or _REPLACED in raw:
            self._refuse(data, keys=keys)
        limit = self.max_data_bytes
        if limit is not None and len(raw) > limit:
            raise SessionTooLargeError(len(raw), limit)
        if keys and raw.count(b"[") + braces <= _READ_BACK_ABOVE and len(raw) <= _LONG_INT:
            return raw  # nothing pydantic could read back otherwise
        given = data if self._always_read_back else None
        return read_back(raw, self._data.validator.validate_json, given, self._dump)

    def _dump(self, data: object) -> object:
        """``data`` as pydantic dumps it in Python mode, without computed fields (which
        may differ from one call to the next), for :func:`read_back`'s comparison."""
        try:
            return self._data.serializer.to_python(data, exclude_computed_fields=True)
        except TypeError:  # pydantic-core before 2.35 has no such option
            return self._data.serializer.to_python(data)

    def _check_top_keys(self, data: T) -> None:
        """Refuse ``dict`` data with a top-level key that is not a ``str``, before pydantic
        writes it as one: ``"".join`` checks every key at C speed (``dict``'s own keys, not
        a subclass's ``__iter__``)."""
        if isinstance(data, dict):
            try:
                "".join(_dict_keys(data))  # pyright: ignore[reportUnknownArgumentType]
            except TypeError:
                self._refuse(data, keys=True)  # pyright: ignore[reportUnknownArgumentType]

    def _refuse(self, data: T, *, keys: bool) -> None:
        """Raise :class:`SessionEncodeError` for data pydantic would write as other data: a
        float NaN or infinity (as ``null``), a key with a lone surrogate (as U+FFFD, which
        may collide with another) and, with ``keys`` (``dict`` data), a key that is not a
        ``str`` (as one, likewise). Called where the JSON shows a sign of one; the data may
        well be fine."""
        # pydantic's Python form: models and dataclasses in it are dicts, walked too.
        value = self._data.serializer.to_python(data, warnings=False)
        unfit = find_unfit(value, keys=keys)
        if unfit is None:
            return
        where, found = _where(unfit.steps), unfit.found
        if unfit.is_key and isinstance(found, str):
            problem = (
                f"{where} has the key {_shown(found)}, which is not valid Unicode (a lone "
                "surrogate); JSON would write it as U+FFFD, which may collide with another key"
            )
        elif unfit.is_key:
            problem = (
                f"{where} has the key {_shown(found)}; JSON object keys are str "
                "(it would come back as a str, or collide with one)"
            )
        else:
            problem = f"{where} is {found!r}: NaN or infinite, which JSON cannot hold"
        raise SessionEncodeError(f"session data is not JSON: {problem}")

    def decode_data(self, raw: bytes | str) -> Result[T, DecodeError]:
        """Return the session data in ``raw``, validated, or ``Err``. Never raises.

        Data that does not validate goes through ``upgrade``, when there is one.
        """
        try:
            return Ok(self._data.validator.validate_json(raw))
        except Exception as exc:  # as in decode
            if self.upgrade is not None:
                return self._upgraded(raw, record=False)
            return Err(DecodeError(_invalid("data", exc)))

    @overload
    def _upgraded(
        self, raw: bytes | str, *, record: Literal[True]
    ) -> Result[Session[T], DecodeError]: ...
    @overload
    def _upgraded(self, raw: bytes | str, *, record: Literal[False]) -> Result[T, DecodeError]: ...

    def _upgraded(self, raw: bytes | str, *, record: bool) -> Result[Any, DecodeError]:
        """Validate ``raw`` again with its data passed through ``upgrade`` first."""
        upgrade = self.upgrade
        assert upgrade is not None
        what = "record" if record else "data"
        try:
            value: Any = from_json(raw)
            if record:
                if not isinstance(value, dict) or "data" not in value:
                    return Err(DecodeError("invalid session record (no data to upgrade)"))
                value["data"] = upgrade(value["data"])
            else:
                value = upgrade(value)
            upgraded = to_json(value)
        except Exception as exc:  # the app's function: any failure of it is a verdict
            return Err(DecodeError(f"invalid session {what}; upgrade failed: {type(exc).__name__}"))
        validator = self._record.validator if record else self._data.validator
        try:
            value = validator.validate_json(upgraded)
            return _valid(value) if record else Ok(value)
        except Exception as exc:
            return Err(DecodeError(_invalid(what, exc, " after upgrade")))


def _valid(record: Session[T]) -> Result[Session[T], DecodeError]:
    """``record``, unless it is not one the library could have written (see
    :func:`~typed_sessions.core.session.record_fault`)."""
    fault = record_fault(record)
    return Ok(record) if fault is None else Err(DecodeError(f"invalid session record ({fault})"))


def _invalid(what: str, exc: Exception, when: str = "") -> str:
    """Why a record or its data did not decode: pydantic's verdict, or the exception a
    model's own validator raised (a ``KeyError``, say: its verdict too)."""
    if isinstance(exc, ValidationError):
        return f"invalid session {what}{when} ({exc.error_count()} errors)"
    return f"invalid session {what}{when} (validation raised {type(exc).__name__})"


# ``Session`` parameterized at run time by a type held in a variable (no type expression).
_GENERIC_SESSION: Final[Any] = Session

# Data types whose every JSON encoding validates again (nesting depth aside).
_ANY_JSON: Final[tuple[object, ...]] = (dict[str, Any], dict, Any)

# pydantic's JSON parser refuses nesting deeper than about 200 levels, which its serializer
# still writes. JSON that deep has at least that many brackets; below this many, counted at
# C speed, it cannot be too deep, and only above it is the encoding read back to be sure.
_READ_BACK_ABOVE = 128

# Nor does it read an int of more than 4,300 digits (Python's limit for int from text),
# which its serializer writes: JSON no longer than this cannot hold one.
_LONG_INT = 4_300

# U+FFFD in UTF-8: what pydantic writes for a lone surrogate in a str-typed dict key.
_REPLACED: Final = "\ufffd".encode()


_dict_keys: Callable[[dict[Any, Any]], Iterable[str]] = dict.keys  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _where(steps: tuple[object, ...]) -> str:
    """``data['key'][0]`` for the steps down to an item."""
    return "data" + "".join(f"[{_shown(step)}]" for step in steps)


def _shown(key: object) -> str:
    """``repr(key)`` for an error message, or its type's name when that ``repr`` fails."""
    try:
        return repr(key)
    except Exception:
        return f"<{type(key).__name__}>"


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise SessionTooLargeError(size, limit)
