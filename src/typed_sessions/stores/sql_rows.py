"""Session records to table rows and back, for :class:`~typed_sessions.stores.sql.SqlStore`.

Pure: no I/O. Decoding a row never raises; a row that is not a valid record gives
``Err(DecodeError)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from typed_sessions.core.codec import DecodeError, SessionCodec, SessionEncodeError
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session, record_fault
from typed_sessions.core.subjects import Device, SessionInfo, session_handle
from typed_sessions.stores.sql_table import from_micros, to_micros

__all__ = ["decode_info", "decode_record", "inserted_row", "updated_values"]

T = TypeVar("T")

_DEVICE: Final = TypeAdapter(Device)


def _device_text(device: Device | None) -> str | None:
    """The device as JSON text.

    Raises:
        SessionEncodeError: it is not valid Unicode (a lone surrogate), as ``RedisStore``
            raises for it.
    """
    if device is None:
        return None
    try:
        return _DEVICE.dump_json(device).decode()
    except PydanticSerializationError as exc:
        raise SessionEncodeError(f"the session's device is not JSON: {exc}") from exc


def _micros_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def inserted_row(key: str, session: Session[Any], data: str) -> dict[str, Any]:
    """The row of a new record (``session`` carries the version it is saved with)."""
    return {
        "key": key,
        "version": session.version,
        "data": data,
        "created_at": to_micros(session.created_at),
        "last_active": to_micros(session.last_active),
        "expires_at": to_micros(session.expires_at),
        "subject": session.subject,
        "handle": session_handle(session.id),
        "auth_time": _micros_or_none(session.auth_time),
        "device": _device_text(session.device),
    }


def updated_values(session: Session[Any], data: str) -> dict[str, Any]:
    """The bound values of a compare-and-set update (see ``Statements.update``)."""
    return {
        "b_version": session.version,
        "b_data": data,
        "b_last_active": to_micros(session.last_active),
        "b_expires_at": to_micros(session.expires_at),
        "b_subject": session.subject,
        "b_auth_time": _micros_or_none(session.auth_time),
        "b_device": _device_text(session.device),
    }


def _times(row: tuple[Any, ...]) -> tuple[datetime, datetime, datetime, datetime | None]:
    """``created_at, last_active, expires_at, auth_time`` (raises on garbage)."""
    created, active, expires, auth = row
    return (
        from_micros(created),
        from_micros(active),
        from_micros(expires),
        None if auth is None else from_micros(auth),
    )


def _device(text: str | None) -> Device | None:
    return None if text is None else _DEVICE.validate_json(text)


def decode_record(
    codec: SessionCodec[T], session_id: SessionId, row: tuple[Any, ...]
) -> Result[Session[T], DecodeError]:
    """The record in a row of ``Statements.load``; ``Err`` when it is not one."""
    version, data, created, active, expires, subject, auth, device = row
    try:
        created_at, last_active, expires_at, auth_time = _times((created, active, expires, auth))
        devices = _device(device)
    except (OverflowError, TypeError, ValueError, ValidationError):
        return Err(DecodeError("a time or the device of the row is not valid"))
    if not isinstance(version, int) or version < 1:
        return Err(DecodeError("the row's version is not valid"))
    if subject is not None and not isinstance(subject, str):
        return Err(DecodeError("the row's subject is not text"))
    match codec.decode_data(data):
        case Err(error):
            return Err(error)
        case Ok(value):
            session = Session(
                session_id, value, created_at, last_active, expires_at, version, subject,
                auth_time, devices,
            )  # fmt: skip
            fault = record_fault(session)
            if fault is not None:
                return Err(DecodeError(f"invalid session record ({fault})"))
            return Ok(session)


def decode_info(subject: str, row: tuple[Any, ...]) -> Result[SessionInfo, DecodeError]:
    """The listing of a row of ``Statements.list_subject``; ``Err`` when it is garbage."""
    handle, created, active, expires, auth, device = row
    try:
        created_at, last_active, expires_at, auth_time = _times((created, active, expires, auth))
        return Ok(
            SessionInfo(
                handle, subject, created_at, last_active, expires_at, auth_time, _device(device)
            )
        )
    except (OverflowError, TypeError, ValueError, ValidationError):
        return Err(DecodeError("a time or the device of the row is not valid"))
