"""The memory store's compact records: one ``bytes`` value per session, keyed by an int.

A session ID made by :func:`~typed_sessions.core.ids.new_session_id` is 43 URL-safe
base64 characters encoding 32 bytes. Such an ID is kept as a 60-bit ``int`` key (its
first 7.5 bytes) and the bytes that follow (its last 25, overlapping the key by four
bits), which start the record: together they are the whole ID, so a lookup compares
them and two IDs never share a record. Other IDs are kept as ``str`` keys.

A record is ``tail(25) | expires_at(8) | flags(1) | times and version | [auth_time(8)]
| [subject] | [device] | data JSON``. Times are integer microseconds since the Unix
epoch (exact for every aware ``datetime``); they come back as UTC ``datetime``s, equal
to the ones saved. In the short form (the usual one) ``created_at`` and ``last_active``
are at most about 12 days before ``expires_at`` and the version below 65,536: they fit
in 12 bytes; otherwise the wide form keeps them in 24.
"""

from __future__ import annotations

import binascii
import struct
import time
from datetime import datetime
from typing import Final, TypeAlias

from typed_sessions.core.clock import EPOCH, MICROSECOND
from typed_sessions.core.ids import SessionId
from typed_sessions.core.session import Session
from typed_sessions.core.subjects import Device

__all__ = [
    "EPOCH",
    "EXPIRES",
    "HEAD",
    "MASK",
    "SUBJECT",
    "TAIL",
    "US",
    "WIDE_FORM",
    "Fields",
    "encode_general",
    "encode_record",
    "encode_times",
    "from_us",
    "id_key",
    "id_of",
    "now_us",
    "plain_record",
    "record_expires",
    "record_fields",
    "rewrite_record",
    "to_us",
]

TAIL: Final = 25  # the ID's last 25 bytes start every record (zeros for a str key)
EXPIRES: Final = struct.Struct("<q")  # at offset TAIL: read alone by the purge
_WIDE: Final = struct.Struct("<qqQ")
_LENGTH: Final = struct.Struct("<I")
_ZERO_TAIL: Final = bytes(TAIL)

SUBJECT, _AUTH_TIME, _DEVICE, _ADDRESS, WIDE_FORM = 1, 2, 4, 8, 16
_DELTA_LIMIT: Final = 1 << 40  # microseconds: about 12.7 days
_SHORT_VERSIONS: Final = 1 << 16
HEAD: Final = struct.Struct("<qBQI")  # expires_at, flags, and the short form's 12 bytes
MASK: Final = _DELTA_LIMIT - 1  # created_at's delta, in the short form's first 8 bytes
_LOW_LAST: Final = (1 << 24) - 1  # the bits of last_active's delta in those 8 bytes

US: Final = MICROSECOND

_TO_STANDARD: Final = bytes.maketrans(b"-_+/", b"+/!!")  # "+" and "/" made invalid
_LAST_CHARS: Final = frozenset("AEIMQUYcgkosw048")  # a 43rd character with no spare bits


def to_us(moment: datetime) -> int:
    """Microseconds from the Unix epoch to ``moment`` (aware).

    Raises:
        TypeError: ``moment`` is naive.
    """
    return (moment - EPOCH) // US


def now_us() -> int:
    """The current time in microseconds since the Unix epoch: ``to_us(utc_now())``."""
    return time.time_ns() // 1_000


def from_us(us: int) -> datetime:
    """The UTC ``datetime`` ``us`` microseconds after the Unix epoch."""
    return EPOCH + US * us  # cheaper than timedelta(microseconds=us)


def id_key(session_id: str) -> tuple[int, bytes] | None:
    """The int key and the tail of a canonical 43-character ID; ``None`` for others."""
    if len(session_id) != 43 or session_id[42] not in _LAST_CHARS:
        return None
    try:
        raw = binascii.a2b_base64(
            session_id.encode("ascii").translate(_TO_STANDARD) + b"=", strict_mode=True
        )
    except (binascii.Error, UnicodeEncodeError):
        return None
    return int.from_bytes(raw[:8]) >> 4, raw[7:]


def id_of(key: int | str, record: bytes) -> SessionId:
    """The ID of the record stored under ``key``."""
    if isinstance(key, str):
        return SessionId(key)
    raw = (key >> 4).to_bytes(7, "big") + record[:TAIL]
    return SessionId(binascii.b2a_base64(raw, newline=False)[:43].decode().translate(_TO_URL))


_TO_URL: Final = str.maketrans("+/", "-_")


def record_expires(record: bytes) -> int:
    """The record's ``expires_at``, in microseconds since the epoch."""
    expires: int = EXPIRES.unpack_from(record, TAIL)[0]
    return expires


def _text(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return _LENGTH.pack(len(raw)) + raw


def encode_record(tail: bytes | None, session: Session[object], version: int, data: bytes) -> bytes:
    """The record of ``session`` at ``version`` holding ``data`` (its JSON).

    Raises:
        TypeError: one of its datetimes is naive.
    """
    created, last = to_us(session.created_at), to_us(session.last_active)
    return encode_times(tail, session, version, data, created, last, to_us(session.expires_at))


def encode_times(
    tail: bytes | None,
    session: Session[object],
    version: int,
    data: bytes,
    created: int,
    last: int,
    expires: int,
) -> bytes:
    """:func:`encode_record`, given ``session``'s times in microseconds (its
    ``created_at``, ``last_active`` and ``expires_at``): the usual record (short form,
    nothing optional) in one ``struct`` call."""
    since_created, since_last = expires - created, expires - last
    if (
        session.auth_time is None
        and session.subject is None
        and session.device is None
        and 0 <= since_created < _DELTA_LIMIT
        and 0 <= since_last < _DELTA_LIMIT
        and version < _SHORT_VERSIONS
    ):
        low = since_created | (since_last & _LOW_LAST) << 40
        return (
            (tail or _ZERO_TAIL)
            + HEAD.pack(expires, 0, low, since_last >> 24 | version << 16)
            + data
        )
    return encode_general(tail, session, version, data, created, last, expires)


def encode_general(
    tail: bytes | None,
    session: Session[object],
    version: int,
    data: bytes,
    created: int,
    last: int,
    expires: int,
) -> bytes:
    """:func:`encode_times` for any record, field by field."""
    flags = 0
    parts = [tail or _ZERO_TAIL, EXPIRES.pack(expires), b""]
    since_created, since_last = expires - created, expires - last
    if (
        0 <= since_created < _DELTA_LIMIT
        and 0 <= since_last < _DELTA_LIMIT
        and version < _SHORT_VERSIONS
    ):
        packed = since_created | since_last << 40 | version << 80
        parts.append(packed.to_bytes(12, "little"))
    else:
        flags |= WIDE_FORM
        parts.append(_WIDE.pack(created, last, version))
    if session.auth_time is not None:
        flags |= _AUTH_TIME
        parts.append(EXPIRES.pack(to_us(session.auth_time)))
    if session.subject is not None:
        flags |= SUBJECT
        parts.append(_text(session.subject))
    device = session.device
    if device is not None:
        flags |= _DEVICE
        parts.append(_text(device.user_agent))
        if device.address is not None:
            flags |= _ADDRESS
            parts.append(_text(device.address))
    parts[2] = bytes((flags,))
    parts.append(data)
    return b"".join(parts)


Fields: TypeAlias = tuple[int, int, int, int, str | None, int | None, Device | None, int]
"""A record read back: ``created_at``, ``last_active``, ``expires_at`` (microseconds),
``version``, ``subject``, ``auth_time`` (microseconds or ``None``), ``device``, and
where the data starts."""


def record_version(record: bytes) -> int:
    """The record's version (cheaper than :func:`record_fields`)."""
    flags = record[TAIL + 8]
    if flags & WIDE_FORM:
        version: int = _WIDE.unpack_from(record, TAIL + 9)[2]
        return version
    high: int = HEAD.unpack_from(record, TAIL)[3]
    return high >> 16


def record_subject(record: bytes) -> str | None:
    """The record's subject, if it has one."""
    flags = record[TAIL + 8]
    if not flags & SUBJECT:
        return None
    at = TAIL + 9 + (24 if flags & WIDE_FORM else 12) + (8 if flags & _AUTH_TIME else 0)
    return _read_text(record, at)[0]


def _read_text(record: bytes, at: int) -> tuple[str, int]:
    size: int = _LENGTH.unpack_from(record, at)[0]
    start = at + 4
    return record[start : start + size].decode("utf-8", "surrogatepass"), start + size


def record_fields(record: bytes) -> Fields:
    """Read everything but the data from ``record``."""
    expires, flags, low, high = HEAD.unpack_from(record, TAIL)
    if not flags:  # the usual record: short form, nothing optional
        last = expires - (low >> 40 | (high & 0xFFFF) << 24)
        return expires - (low & MASK), last, expires, high >> 16, None, None, None, TAIL + 21
    at = TAIL + 9
    if flags & WIDE_FORM:
        created, last, version = _WIDE.unpack_from(record, at)
        at += 24
    else:
        created = expires - (low & MASK)
        last = expires - (low >> 40 | (high & 0xFFFF) << 24)
        version = high >> 16
        at += 12
    auth_time = None
    if flags & _AUTH_TIME:
        auth_time = EXPIRES.unpack_from(record, at)[0]
        at += 8
    subject = None
    if flags & SUBJECT:
        subject, at = _read_text(record, at)
    device = None
    if flags & _DEVICE:
        agent, at = _read_text(record, at)
        address = None
        if flags & _ADDRESS:
            address, at = _read_text(record, at)
        device = Device(agent, address)
    return created, last, expires, version, subject, auth_time, device, at


def rewrite_record(
    record: bytes, data_at: int, version: int, created: int, last: int, expires: int, data: bytes
) -> bytes:
    """``record`` with new times, version and data, its subject, ``auth_time`` and device
    kept as they are (the bytes between its times and its data)."""
    flags = record[TAIL + 8]
    since_created, since_last = expires - created, expires - last
    short = (
        0 <= since_created < _DELTA_LIMIT
        and 0 <= since_last < _DELTA_LIMIT
        and version < _SHORT_VERSIONS
    )
    if not flags and short:  # the usual record, as encode_times writes it
        low = since_created | (since_last & _LOW_LAST) << 40
        head = HEAD.pack(expires, 0, low, since_last >> 24 | version << 16)
        return record[:TAIL] + head + data
    extras = record[TAIL + 9 + (24 if flags & WIDE_FORM else 12) : data_at]
    if short:
        flags &= ~WIDE_FORM
        times = (since_created | since_last << 40 | version << 80).to_bytes(12, "little")
    else:
        flags |= WIDE_FORM
        times = _WIDE.pack(created, last, version)
    return b"".join((record[:TAIL], EXPIRES.pack(expires), bytes((flags,)), times, extras, data))


def plain_record(
    tail: bytes | None, version: int, created: int, last: int, expires: int, data: bytes
) -> bytes:
    """The record of a session with no subject, ``auth_time`` or device, exactly as
    :func:`encode_times` packs it (``tail``: from :func:`id_key`, ``None`` for a ``str``
    key)."""
    head = (tail or _ZERO_TAIL) + _BLANK
    return rewrite_record(head, TAIL + 21, version, created, last, expires, data)


_BLANK: Final = bytes(21)  # the usual record's head, before rewrite_record fills it
