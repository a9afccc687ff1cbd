"""Subjects: whose a session is, from which device, and how it is shown to its owner.

A session may belong to a *subject*: the user's ID as text, given when the session
starts or rotates at sign-in. Stores that keep a subject index (see
:class:`~typed_sessions.SubjectIndex`) list a subject's live sessions as
:class:`SessionInfo` records and end them by :func:`session_handle`, a public name for a
session that is safe to put in a page or a URL: it cannot be turned back into the
session ID, a token, or a store key.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from typed_sessions.core.ids import SessionId

__all__ = [
    "HANDLE_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "MAX_USER_AGENT_LENGTH",
    "Device",
    "SessionInfo",
    "beyond_cap",
    "check_subject",
    "checked_subject",
    "device_from",
    "is_handle",
    "session_handle",
]

MAX_SUBJECT_LENGTH: Final = 256
"""The longest subject (user ID text) a session may carry, in characters."""

MAX_USER_AGENT_LENGTH: Final = 256
"""User agents are cut to this many characters (after control characters are removed)."""

HANDLE_LENGTH: Final = 22
"""Length of every :func:`session_handle`: 22 URL-safe characters (132 bits)."""

K = TypeVar("K")
V = TypeVar("V", int, datetime)

_HANDLE: Final = re.compile(rf"[A-Za-z0-9_-]{{{HANDLE_LENGTH}}}")
_READ_AT_MOST: Final = 4096  # characters of a user agent looked at, hostile ones included
_HANDLE_PREFIX: Final = b"typed-sessions/session-handle/v1\x00"


@dataclass(frozen=True, slots=True)
class Device:
    """What a session's owner may recognise it by: the browser's user agent, and the
    client's address (coarsened to its network) only when the app turns that on.

    Built from a request with :func:`device_from`; stored with the session.
    """

    user_agent: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a subject's live sessions, as shown to its owner (never its ID).

    ``handle`` names the session for :meth:`~typed_sessions.SubjectIndex.end_subject_session`;
    ``current`` marks the session the listing request itself runs in.
    """

    handle: str
    subject: str
    created_at: datetime
    last_active: datetime
    expires_at: datetime
    auth_time: datetime | None
    device: Device | None
    current: bool = False


def _is_control(char: str) -> bool:
    # Cc (C0, DEL, C1), Cf (bidi overrides, zero-width), Cs, Co, Cn, Zl, Zp.
    return unicodedata.category(char)[0] == "C" or char in "\u2028\u2029"


def check_subject(subject: object) -> str:
    """Return ``subject`` when it is a valid subject; raise ``ValueError`` otherwise.

    A subject is non-empty text of at most :data:`MAX_SUBJECT_LENGTH` characters with
    no control or format characters. A bad subject is a programming error (subjects come
    from the app's user records, not from requests), hence the exception.

    Raises:
        ValueError: ``subject`` is not such text.
    """
    if not isinstance(subject, str):
        raise ValueError(f"a subject must be text (the user's ID as str), not {type(subject)}")
    if not subject:
        raise ValueError("a subject must not be empty")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"a subject must be at most {MAX_SUBJECT_LENGTH} characters")
    if any(_is_control(char) for char in subject):
        raise ValueError("a subject must not hold control or format characters")
    return subject


@functools.lru_cache(maxsize=4096)
def checked_subject(subject: str) -> str:
    """:func:`check_subject`, remembering the subjects found valid (for stores' saves).

    Raises:
        ValueError: ``subject`` is not a valid subject.
        TypeError: ``subject`` is not hashable.
    """
    return check_subject(subject)


def device_from(
    user_agent: str | None, address: str | None, *, keep_address: bool = False
) -> Device:
    """Describe the device a request came from, small and safe to store and show.

    The user agent has its control and format characters removed (so it cannot forge
    lines in a log or reorder text on a page) and is cut to
    :data:`MAX_USER_AGENT_LENGTH` characters (only its first 4,096 are looked at); a
    missing one becomes ``""``. The address
    is kept only with ``keep_address`` (it is personal data: turn it on knowingly), and
    then coarsened to its network: an IPv4 address to its /24 (``"203.0.113.0/24"``), an
    IPv6 one to its /48 (an IPv4-mapped IPv6 address counts as IPv4); anything that is
    not an IP address (surrounding spaces aside) gives ``None``. Never raises.
    """
    agent = "" if not isinstance(user_agent, str) else user_agent
    agent = "".join(char for char in agent[:_READ_AT_MOST] if not _is_control(char))
    kept = _coarse_address(address) if keep_address else None
    return Device(user_agent=agent[:MAX_USER_AGENT_LENGTH], address=kept)


def _coarse_address(address: str | None) -> str | None:
    if not isinstance(address, str) or len(address) > 64 or "%" in address:
        return None  # "%": an IPv6 zone, free text that ip_network would keep
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def beyond_cap(
    others: Iterable[tuple[K, V, V | None]], started: V, signed_in: V | None, cap: int
) -> list[K]:
    """Which of a subject's other live sessions a cap of ``cap`` sessions ends, when a
    session that started at ``started``, signed in at ``signed_in``, is saved: those of
    all but the ``cap - 1`` newest starts (``created_at``) other than ``started``, but
    never one signed in later than the saved one (when both have an ``auth_time``).

    ``others``: each other live record of the subject, with its start and its
    ``auth_time``. A session moved to a new ID (a rotation, a sign-in) keeps its start, so
    its two records count once until the old one ends, and the saved session's own old
    record is never ended: rotating at the cap, even several devices at once, signs no
    other device out. Of several sign-ins at once, each save sees the others: the later
    sign-in ends the earlier, never both each other (when one save ran before the other's
    record was there, the subject stays over its cap until its next sign-in).
    """
    others = list(others)
    starts = sorted({start for _, start, _ in others if start != started}, reverse=True)
    doomed = set(starts[max(cap - 1, 0) :])
    if not doomed:
        return []
    return [
        key
        for key, start, auth in others
        if start in doomed and (auth is None or signed_in is None or auth <= signed_in)
    ]


def is_handle(text: str) -> bool:
    """Whether ``text`` could be a :func:`session_handle`: 22 URL-safe characters. Stores
    answer any other "handle" (NUL, surrogates, other lengths) with "no such session"."""
    return _HANDLE.fullmatch(text) is not None


def session_handle(session_id: SessionId) -> str:
    """Return the public handle of session ``session_id``: 22 URL-safe characters.

    The handle is the first 132 bits of SHA-256 over a fixed, domain-separating prefix
    and the ID. It names the session in lists and "end this session" requests, so pages
    and URLs never carry the ID. It cannot be turned back into the ID (a preimage of
    SHA-256), nor into a token (tokens carry the ID, signed), nor into a store key (keys
    hash the ID without this prefix). A handle only ever acts through a subject: ending
    session "X" on behalf of subject A ends nothing when X is not A's.
    """
    digest = hashlib.sha256(_HANDLE_PREFIX + session_id.encode("utf-8", "surrogatepass"))
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii")[:HANDLE_LENGTH]
