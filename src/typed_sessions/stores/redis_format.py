"""What RedisStore and its subject index share: the value layout and the error mapping.

A stored value is ``b"<version> <write ids>|" + record JSON`` (see :mod:`.redis_save`);
:func:`pack` builds it for a save, :func:`unpack` reads it back.
"""

from __future__ import annotations

import re
from typing import Final, NoReturn

from redis.exceptions import RedisError, ResponseError

from typed_sessions.stores.protocol import StoreCorruptError, StoreUnavailableError

__all__ = [
    "HEADER",
    "HEADER_MAX",
    "KEPT_WRITE_IDS",
    "TOMBSTONE",
    "TOMBSTONE_SECONDS",
    "as_bytes",
    "corrupt_error",
    "is_wrong_type",
    "pack",
    "unavailable",
    "unexpected",
    "unpack",
]

KEPT_WRITE_IDS = 4
"""How many write ids a header keeps: the save's own and the three before it."""
# A header is "<version> <write id>[,<write id>]...|": canonical decimal (no sign, no
# leading zero) and up to KEPT_WRITE_IDS ids of 16 lowercase hex digits, newest first.
# The script reads at most this many bytes of the value.
HEADER_MAX = 20 + 1 + 17 * KEPT_WRITE_IDS
HEADER = re.compile(
    rb"([1-9][0-9]{0,19}) [0-9a-f]{16}(?:,[0-9a-f]{16}){0,%d}\|" % (KEPT_WRITE_IDS - 1)
)
# What an ending save leaves for a while instead of the record: "<version> <write ids>~".
TOMBSTONE = re.compile(
    rb"[1-9][0-9]{0,19} [0-9a-f]{16}(?:,[0-9a-f]{16}){0,%d}~\Z" % (KEPT_WRITE_IDS - 1)
)
TOMBSTONE_SECONDS = 60


def pack(version: int, write_id: str, record: bytes) -> bytes:
    """The value stored for ``record`` (JSON) at ``version``, written by ``write_id``."""
    return b"%d %s|" % (version, write_id.encode()) + record


def unpack(payload: bytes) -> tuple[int, bytes] | None:
    """The version and record JSON of a stored value; ``None`` when it has no header."""
    header = HEADER.match(payload, 0, HEADER_MAX)
    if header is None:
        return None
    return int(header[1]), payload[header.end() :]


def as_bytes(value: bytes | str) -> bytes:
    """A reply as bytes (a ``decode_responses`` client gives text)."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def is_wrong_type(exc: ResponseError) -> bool:
    return str(exc).startswith("WRONGTYPE")


CALL_ERRORS: Final = (RedisError, OSError, TimeoutError, RuntimeError)
"""What a failed call raises: the client's errors, the socket's, the store's timeout, and
``RuntimeError`` (a pooled connection made on an event loop closed since, say a first
``asyncio.run``'s: the call fails, the client drops that connection)."""


def unavailable(exc: BaseException) -> NoReturn:
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, ResponseError):
        reason = f"server error: {str(exc)[:200]}"
    else:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    raise StoreUnavailableError(f"Redis unavailable ({reason})") from exc


def unexpected(reply: object, source: str) -> StoreUnavailableError:
    """The error to raise for a ``reply`` of a shape ``source`` never answers."""
    return StoreUnavailableError(f"unexpected reply from {source}: {reply!r:.40}")


def corrupt_error(reason: str) -> NoReturn:
    raise StoreCorruptError(f"unreadable session record in Redis: {reason}")
