"""Whether encoded session data reads back as it was written, and the errors of data
that cannot be stored (see :mod:`typed_sessions.core.codec`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pydantic import ValidationError

from typed_sessions.core.session import Session

__all__ = ["SessionEncodeError", "SessionTooLargeError", "first_change", "read_back"]


class SessionEncodeError(TypeError):
    """Session data could not be serialized as JSON (a programming error in the app)."""


class SessionTooLargeError(SessionEncodeError):
    """Session data is larger than the store's ``max_data_bytes``; nothing was written.

    ``size`` is the data's JSON length in bytes, ``limit`` the store's limit.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"session data is {size} bytes of JSON, over the limit of {limit} bytes "
            "(the store's max_data_bytes): keep large data elsewhere and its key in the session"
        )
        self.size = size
        self.limit = limit


def read_back(
    raw: bytes, load: Callable[[bytes], object], given: object, dump: Callable[[Any], object]
) -> bytes:
    """Return ``raw`` when ``load`` decodes it again to data equal to ``given``'s (the
    data, or a record's data), as ``dump`` writes both in Python mode (see
    :func:`first_change`); raise ``SessionEncodeError``.
    """
    try:
        loaded = load(raw)
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
    except Exception as exc:  # a model's own validator failed otherwise: the same verdict
        message = (
            "session data would be stored but could not be read back: validation raised "
            f"{type(exc).__name__}"
        )
        raise SessionEncodeError(message) from exc
    if given is None:  # JSON dicts: they read back as pydantic reads them
        return raw
    if isinstance(given, Session):  # (a record read back is a Session too)
        record = cast("Session[object]", given)
        given, loaded = record.data, getattr(loaded, "data", None)
    try:
        same = bool(given == loaded)  # the usual answer, without dumping either
    except Exception:  # an __eq__ that fails: compared as dumped
        same = False
    if same:
        return raw
    try:
        changed_at = first_change(dump(given), dump(loaded))
    except Exception:  # (it dumped to JSON just now: not expected)
        changed_at = None
    if changed_at is not None:
        raise SessionEncodeError(
            f"session data would be read back changed: {changed_at} (pydantic's JSON masks a "
            "SecretStr, and a value typed Any comes back in its JSON form): store it in a "
            "form that JSON keeps"
        )
    return raw


def first_change(given: object, loaded: object) -> str | None:
    """Where ``loaded``, data read back from its JSON, differs from ``given``, the data
    written, both as pydantic dumps them in Python mode (plain dicts and lists; a
    ``SecretStr`` as itself, its secret compared; no private attribute, no field with
    ``exclude=True``): the first differing key of a dict, or ``"data"``; ``None`` if
    none. Values that cannot be compared are taken as equal (validation read them back).

    Finds what pydantic's JSON masks or changes: a ``SecretStr`` (written as
    ``"**********"``), a ``datetime`` typed ``Any`` (read back as text), a field that
    validation reads by another key (read back as its default)."""
    try:
        if type(given) is dict and type(loaded) is dict:
            written = cast("dict[object, object]", given)
            read = cast("dict[object, object]", loaded)
            for key in written.keys() | read.keys():
                if written.get(key) != read.get(key):
                    return str(key)
            return None
        return None if given == loaded else "data"
    except Exception:  # an __eq__ that fails tells nothing
        return None
