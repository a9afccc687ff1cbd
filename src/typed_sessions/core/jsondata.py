"""Session data as strict JSON, checked the way a store's codec would check it (pure).

The middleware's session is a ``dict`` of JSON values. :func:`encode_json` gives its
compact text (NaN and infinities refused), which doubles as the change detector;
:func:`validate_json` also refuses what the store's codec could not write or read back;
:func:`check_keys` refuses nested keys that JSON would turn into strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from pydantic_core import PydanticSerializationError, from_json, to_json

from typed_sessions.core.codec import SessionEncodeError
from typed_sessions.core.unfit import find_unfit

__all__ = ["check_keys", "encode_json", "validate_json"]


def _unencodable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_unencodable)


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """The stdlib's C encoder, to call directly: JSONEncoder.encode's wrapper costs more
    than encoding a small session. Same output; circular data raises RecursionError."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - Pythons without the C accelerator
        return None
    try:
        encode: Callable[[Any, int], list[str]] = make(
            None, _unencodable, json.encoder.encode_basestring_ascii, None, ":", ",",
            False, False, False,
        )  # fmt: skip
        sample: Any = {"a": [1, 2.5, None, True, "\u00e9"], "b": {}}
        if "".join(encode(sample, 0)) != _ENCODER.encode(sample):  # pragma: no cover
            return None
    except TypeError:  # pragma: no cover - a different C signature
        return None
    return encode


_c_encode: Final = _c_encoder()


def encode_json(value: Any) -> str:
    """Return compact, strict JSON text of ``value`` (NaN and infinities refused).

    Raises:
        TypeError: a value is not str, int, float, bool, None, list, tuple or dict.
        ValueError: a float is NaN or infinite.
        RecursionError: the data contains itself.
    """
    if _c_encode is None:  # pragma: no cover - Pythons without the C accelerator
        return _ENCODER.encode(value)
    if isinstance(value, str):
        return json.encoder.encode_basestring_ascii(value)
    return "".join(_c_encode(value, 0))


def validate_json(data: Mapping[str, Any]) -> str:
    """Return the JSON text of ``data``; raise :class:`SessionEncodeError` naming the key.

    Also refused, as the store's codec would refuse them: strings holding a lone
    surrogate (not valid Unicode, so not storable as UTF-8), nesting deeper than
    pydantic serializes or reads back, and ints longer than it reads (4,300 digits, where
    an app lifted Python's own limit). Nested keys are checked by :func:`check_keys`,
    only for data about to be saved.
    """
    try:  # encode_json's, without the call (data is never a str)
        text = _ENCODER.encode(data) if _c_encode is None else "".join(_c_encode(data, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        _refuse_json(data, exc, encode_json)
    if "\\ud" in text or (  # (a short text has too few brackets to nest too deep)
        len(text) > _NESTING_CHECK
        and (len(text) > _LONG_INT or text.count("[") + text.count("{") > _NESTING_CHECK)
    ):
        try:
            to_json(data)
        except PydanticSerializationError as exc:
            _refuse_json(data, exc, to_json)
        try:
            from_json(f"[{text}]")  # as a store reads it: inside a record, one level down
        except ValueError as exc:
            _refuse_json(data, exc, _read_back)
    return text


def check_keys(data: Mapping[str, Any], text: str) -> None:
    """Refuse a dict below the top level with a key that is not a ``str``: JSON would
    turn it into one, or make it collide with one. (``text``: the JSON of ``data``; its
    top-level keys are checked as they are set.)"""
    if not text.count("{", 1):
        return
    unfit = find_unfit(data, keys=True)  # no NaN here: the strict encoder refused it
    if unfit is not None and unfit.is_key and unfit.steps:
        why = (
            ", which is not valid Unicode (a lone surrogate)"
            if isinstance(unfit.found, str)
            else "; JSON object keys are str (another key would come back as a str, or collide)"
        )
        raise SessionEncodeError(
            f"session data is not JSON: key {unfit.steps[0]!r} holds a dict with the key "
            f"{unfit.found!r}{why}"
        )


def _read_back(value: Any) -> None:
    from_json(f"[[{encode_json(value)}]]")  # a value: in the data, in the record


_NESTING_CHECK: Final = 64  # below this many brackets, nesting cannot be too deep
# Nor is an int longer than pydantic reads (4,300 digits, Python's default limit, which an
# app may lift for its own ints) in text no longer than this.
_LONG_INT: Final = 4_300


def _refuse_json(
    data: Mapping[str, Any], exc: Exception, encode: Callable[[Any], object]
) -> NoReturn:
    bad = "?"
    for key, value in data.items():
        try:
            encode(value)
        except (TypeError, ValueError, RecursionError, PydanticSerializationError):
            bad = key
            break
    raise SessionEncodeError(
        f"session data is not JSON: key {bad!r}: {exc}. Store only str (valid Unicode), "
        "int, float, bool, None, and lists and dicts of them."
    ) from exc
