"""The session record and the pure functions that age it.

A ``Session[T]`` never changes: creating, touching and replacing data each return a new
record. ``version`` counts saves; ``0`` means the record has never been saved, and stores
use it for their compare-and-set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, TypeAdapter

from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.subjects import (
    Device,
    SessionInfo,
    check_subject,
    checked_subject,
    session_handle,
)

__all__ = [
    "MAX_LIFETIME",
    "Expiry",
    "Session",
    "expire_session",
    "is_expired",
    "new_session",
    "record_fault",
    "replace_data",
    "session_info",
    "touch_session",
    "used_with_data",
]

T = TypeVar("T")
U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)


MAX_LIFETIME = timedelta(days=36_525)
"""The longest ``Expiry`` duration: 100 years, so deadlines stay far from year 9999."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """When a session ends: after ``idle`` without use, and ``absolute`` after creation.

    Every use slides the idle deadline forward, never past the absolute one. To spare
    the store a write on every read, a use that would move the deadline by less than
    ``touch_step`` (default: a tenth of ``idle``) changes nothing.

    Raises:
        ValueError: a duration is not positive or longer than :data:`MAX_LIFETIME`, or
            ``touch_step`` is not less than ``idle`` (it would never slide a live session).
    """

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    touch_step: timedelta | None = None
    step: timedelta = field(init=False, repr=False, compare=False)
    """The smallest move of the idle deadline worth a save (``touch_step``, or a tenth of
    ``idle``); derived, not given."""

    def __post_init__(self) -> None:
        if self.idle <= timedelta(0) or self.absolute <= timedelta(0):
            raise ValueError("Expiry durations must be positive")
        if self.idle > MAX_LIFETIME or self.absolute > MAX_LIFETIME:
            raise ValueError(
                "Expiry durations must be at most 100 years (MAX_LIFETIME); a session "
                "deadline must be a date every store and browser can hold"
            )
        if self.touch_step is not None and not timedelta(0) <= self.touch_step < self.idle:
            raise ValueError(  # a live session's deadline moves by less than idle
                "Expiry.touch_step must be at least zero and less than `idle`: a step of "
                "`idle` would never slide a live session"
            )
        # Asked on every use of a session: found once.
        step = self.idle / 10 if self.touch_step is None else self.touch_step
        object.__setattr__(self, "step", step)


@dataclass(frozen=True, slots=True, init=False)
class Session(Generic[T_co]):
    """One session: its ID, its data and its lifetime. Immutable; see the functions below.

    The ID is a bearer secret, so it is left out of the ``repr`` (safe to log). Make
    records with :func:`new_session` and the other functions; on Python 3.11 the
    subscripted constructor ``Session[T](...)`` raises ``TypeError`` (slotted frozen
    dataclasses), so annotate the variable instead.

    ``subject`` is whose session it is (the user's ID as text; ``None`` before sign-in),
    ``auth_time`` when that subject last authenticated, and ``device`` what the session
    started from (see :func:`~typed_sessions.device_from`). Stores with a subject index
    list and end a subject's sessions by these.

    pydantic leaves the ID out when it serializes a record, so a FastAPI route declared to
    return ``Session[...]`` (or with it as ``response_model``, or inside a ``dict`` or
    ``Any`` it serializes) never sends the bearer secret in its body; stores keep it (see
    :class:`~typed_sessions.core.codec.SessionCodec`). A route with no declared return
    type is encoded by FastAPI's ``jsonable_encoder``, which copies every field: declare it.
    """

    id: Annotated[SessionId, Field(exclude=True)] = field(repr=False)
    data: T_co
    created_at: datetime
    last_active: datetime
    expires_at: datetime
    version: int = field(default=0)
    subject: str | None = None
    auth_time: datetime | None = None
    device: Device | None = None

    def __init__(
        self,
        id: SessionId,
        data: T_co,
        created_at: datetime,
        last_active: datetime,
        expires_at: datetime,
        version: int = 0,
        subject: str | None = None,
        auth_time: datetime | None = None,
        device: Device | None = None,
    ) -> None:
        # Built several times per request: each slot is set through its descriptor, which
        # is what a frozen dataclass does, minus the detour through object.__setattr__.
        _set_id(self, id)
        _set_data(self, data)
        _set_created_at(self, created_at)
        _set_last_active(self, last_active)
        _set_expires_at(self, expires_at)
        _set_version(self, version)
        _set_subject(self, subject)
        _set_auth_time(self, auth_time)
        _set_device(self, device)


(
    _set_id, _set_data, _set_created_at, _set_last_active, _set_expires_at, _set_version,
    _set_subject, _set_auth_time, _set_device,
) = (
    Session.__dict__[name].__set__
    for name in (
        "id", "data", "created_at", "last_active", "expires_at", "version",
        "subject", "auth_time", "device",
    )
)  # fmt: skip


# pydantic serializes a record it meets where it expects anything (``dict[str, Any]``,
# ``Any``) with the class's ``__pydantic_serializer__``: so without the ID there too. Set
# here, not declared in the class: a ClassVar would show in ``__dataclass_fields__``.
setattr(Session, "__pydantic_serializer__", TypeAdapter(Session[Any]).serializer)  # noqa: B010


def _deadline(created_at: datetime, now: datetime, expiry: Expiry) -> datetime:
    return min(now + expiry.idle, _cap(created_at, expiry))


def _cap(created_at: datetime, expiry: Expiry) -> datetime:
    """The absolute deadline; ``datetime``'s last moment when it lies beyond that (a start
    near year 9999 in a record written elsewhere: nothing to overflow)."""
    try:
        return created_at + expiry.absolute
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def new_session(
    data: T,
    expiry: Expiry,
    *,
    now: datetime,
    session_id: SessionId | None = None,
    subject: str | None = None,
    auth_time: datetime | None = None,
    device: Device | None = None,
) -> Session[T]:
    """Return a new, unsaved session holding ``data``, with a fresh ID unless given one.

    ``subject``, ``auth_time`` and ``device`` are recorded as given (see :class:`Session`).

    Raises:
        ValueError: ``subject`` is not a valid subject (see
            :func:`~typed_sessions.core.subjects.check_subject`).
    """
    return Session(
        id=new_session_id() if session_id is None else session_id,
        data=data,
        created_at=now,
        last_active=now,
        expires_at=_deadline(now, now, expiry),
        subject=None if subject is None else check_subject(subject),
        auth_time=auth_time,
        device=device,
    )


def is_expired(session: Session[T], *, now: datetime) -> bool:
    """Tell whether ``session`` has ended at ``now`` (idle or absolute deadline passed)."""
    return now >= session.expires_at


def touch_session(session: Session[T], expiry: Expiry, *, now: datetime) -> Session[T]:
    """Record a use at ``now``: slide the idle deadline, capped by the absolute one.

    Returns ``session`` itself (the same object) when the deadline would move by less
    than ``expiry.step``, so ``touched is not session`` tells whether a save is needed.
    """
    deadline = now + expiry.idle  # _deadline's, inlined: on every use of a session
    moved = deadline - session.expires_at  # the most it moves: the cap only lowers it
    if moved <= _ZERO or moved < expiry.step:
        return session  # the usual answer, found without the cap
    cap = _cap(session.created_at, expiry)
    if cap < deadline:
        deadline = cap
        moved = deadline - session.expires_at
        if moved <= _ZERO or moved < expiry.step:
            return session
    return replace(session, last_active=now, expires_at=deadline)


def replace_data(session: Session[T], data: U, *, now: datetime) -> Session[U]:
    """Return ``session`` holding ``data`` instead, marked as used at ``now``.

    The deadlines are kept; combine with :func:`touch_session` to slide them.
    """
    return Session(
        session.id,
        data,
        session.created_at,
        now,
        session.expires_at,
        session.version,
        session.subject,
        session.auth_time,
        session.device,
    )


def used_with_data(session: Session[T], data: U, expiry: Expiry, *, now: datetime) -> Session[U]:
    """``replace_data(touch_session(session, expiry, now=now), data, now=now)``, building
    one record instead of two (a changed session's save, on every such request)."""
    deadline = now + expiry.idle  # as in touch_session
    moved = deadline - session.expires_at
    if moved <= _ZERO or moved < expiry.step:
        deadline = session.expires_at
    else:
        cap = _cap(session.created_at, expiry)
        if cap < deadline:
            deadline = cap
            moved = deadline - session.expires_at
            if moved <= _ZERO or moved < expiry.step:
                deadline = session.expires_at
    return Session(
        session.id, data, session.created_at, now, deadline, session.version,
        session.subject, session.auth_time, session.device,
    )  # fmt: skip


_ZERO = timedelta(0)
_ENDED = datetime(1970, 1, 1, tzinfo=UTC)


def expire_session(session: Session[T]) -> Session[T]:
    """Return ``session`` marked as ended (its deadline at the Unix epoch).

    Saving the result is a compare-and-set *delete*: every store removes an expired
    record it is asked to save, but only when the version matches, so an ending never
    wipes out a write it has not seen (the save returns ``Err(Conflict)`` instead).
    """
    return replace(session, expires_at=_ENDED)


def session_info(session: Session[Any], *, current_id: SessionId | None = None) -> SessionInfo:
    """Return what ``session``'s owner may see of it; ``current`` when its ID is ``current_id``.

    Raises:
        ValueError: ``session`` has no subject (only a subject's sessions are listed).
    """
    if session.subject is None:
        raise ValueError("only a session with a subject has a SessionInfo")
    return SessionInfo(
        handle=session_handle(session.id),
        subject=session.subject,
        created_at=session.created_at,
        last_active=session.last_active,
        expires_at=session.expires_at,
        auth_time=session.auth_time,
        device=session.device,
        current=current_id is not None and current_id == session.id,
    )


_MAX_VERSION = 2**63 - 2  # a signed 64-bit column still holds the next one


def record_fault(session: Session[object]) -> str | None:
    """Why ``session``, read back from a store, is not a record the library could have
    written, or ``None``. Stores give such a record their outcome for an invalid one (a
    ``DecodeError``) rather than let it fail later: comparing a time without a UTC offset
    with the clock raises, a version at a 64-bit column's limit cannot be saved again,
    and a subject must pass :func:`check_subject` to be saved."""
    auth_time = session.auth_time
    if (
        session.created_at.tzinfo is None
        or session.last_active.tzinfo is None
        or session.expires_at.tzinfo is None
        or (auth_time is not None and auth_time.tzinfo is None)
    ):
        return "a time without a UTC offset"
    if not 0 <= session.version <= _MAX_VERSION:
        return "a version out of range"
    if session.subject is not None:
        try:
            checked_subject(session.subject)  # remembered: a subject is read again and again
        except (TypeError, ValueError):
            return "a subject that is not valid"
    return None
