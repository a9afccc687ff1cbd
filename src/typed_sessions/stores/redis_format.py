"""What RedisStore and its subject index share: the value layout and the error mapping."""

from __future__ import annotations

import re
from typing import NoReturn

from redis.exceptions import ResponseError

from typed_sessions.stores.protocol import StoreCorruptError, StoreUnavailableError

# A header is "<version> <write id>|": canonical decimal (no sign, no leading zero) and
# 16 lowercase hex digits. The script reads at most this many bytes of the value.
_HEADER_MAX = 20 + 1 + 16 + 1
_HEADER = re.compile(rb"([1-9][0-9]{0,19}) ([0-9a-f]{16})\|")
# What an ending save leaves for a while instead of the record: "<version> <write id>~".
_TOMBSTONE = re.compile(rb"[1-9][0-9]{0,19} [0-9a-f]{16}~\Z")
TOMBSTONE_SECONDS = 60


def _is_wrong_type(exc: ResponseError) -> bool:
    return str(exc).startswith("WRONGTYPE")


def _unavailable(exc: BaseException) -> NoReturn:
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, ResponseError):
        reason = f"server error: {str(exc)[:200]}"
    else:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    raise StoreUnavailableError(f"Redis unavailable ({reason})") from exc


def _corrupt_error(reason: str) -> NoReturn:
    raise StoreCorruptError(f"unreadable session record in Redis: {reason}")
