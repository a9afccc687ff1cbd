"""What the end of a request does to its session: the manager's answer to the driver.

:meth:`SessionManager.outcome <typed_sessions.SessionManager.outcome>` computes an
:class:`Outcome` from the request's session state (pure: no I/O); the middleware carries
it out with :func:`typed_sessions.adapters.commit.carry_out`, the only place that writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

from typed_sessions.core.changes import NOTHING_READ, ReadSet
from typed_sessions.core.ids import SessionId
from typed_sessions.core.jsondata import check_keys, encode_json, validate_json
from typed_sessions.core.session import Expiry, Session, touch_session
from typed_sessions.core.subjects import Device
from typed_sessions.core.tuples import new_tuple
from typed_sessions.stores.lane import StoredRecord

__all__ = [
    "NOTHING",
    "Create",
    "Outcome",
    "Reads",
    "Regenerate",
    "Resave",
    "SignIn",
    "Touch",
    "Update",
    "Write",
    "changed",
    "plan_resave",
    "plan_write",
]

Record: TypeAlias = Session[dict[str, Any]]

Snapshot: TypeAlias = str | dict[str, Any]
"""What a request's data was when handed out: its JSON text, or, for data holding only
str, int, float, bool and None values (nothing a handler could change in place), the
loaded dict itself (no encoding needed; see :func:`snapshot_of`)."""

# ``dict``'s own methods, typed once (pyright sees the bare class's as Unknown): a
# ``SessionData`` is read without its recording overrides.
_len: Callable[[dict[str, Any]], int] = dict.__len__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_items: Callable[[dict[str, Any]], Iterable[tuple[str, Any]]] = dict.items  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_equal: Callable[[dict[str, Any], dict[str, Any]], bool] = dict.__eq__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType, reportAssignmentType]

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def snapshot_of(data: dict[str, Any]) -> Snapshot:
    """The snapshot of ``data`` as loaded: ``data`` itself when every value is a scalar
    (the caller hands out a copy and keeps ``data`` unchanged), else its JSON text."""
    for value in data.values():
        if type(value) not in _SCALARS:
            return encode_json(data)
    return data


def unchanged(data: dict[str, Any], before: dict[str, Any]) -> bool:
    """Whether ``data`` encodes as the scalar-only ``before`` would: the same keys in the
    same order (JSON keeps it), and values of the same type and value (``1`` is not
    ``True`` or ``1.0``; ``-0.0`` is not ``0.0``)."""
    if _len(data) != len(before):
        return False
    for (key, now), (old_key, value) in zip(_items(data), before.items(), strict=True):
        if key != old_key:
            return False
        if now is not value and (type(now) is not type(value) or now != value):
            return False
        if type(value) is float and repr(now) != repr(value):
            return False
    return True


class Reads(Protocol):
    """Where what a request read is found (asked only after a lost race)."""

    def reads(self) -> ReadSet:
        """What the request read of its session."""
        ...


class _NothingRead:
    def reads(self) -> ReadSet:
        return NOTHING_READ


NOTHING: Final[Reads] = _NothingRead()


class SignIn(NamedTuple):
    """A subject that has just signed in, and the device it signed in from."""

    subject: str
    device: Device | None


@dataclass(frozen=True, slots=True)
class Create:
    """Save ``data`` as a new session (under ``session_id``, or a fresh ID) and set its cookie."""

    session_id: SessionId | None
    data: dict[str, Any]
    signed_in: SignIn | None = None


class Update(NamedTuple):
    """Save the changed ``data`` of ``record``; ``before`` is the JSON the request read,
    from which its own changes are found when another request saved first, and
    ``reads`` what it read (a change of which refuses the request); ``text``: the JSON
    of ``data``, when known.

    A named tuple: one is built per changed session per request, and a tuple is the
    cheapest immutable record to build."""

    record: Record
    data: dict[str, Any]
    before: Snapshot
    reads: Reads
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Regenerate:
    """Move ``record`` to ``new_id`` (with the request's ``data``, if it read any, and the
    JSON it read as ``before``), end the old record and set the new cookie."""

    record: Record
    new_id: SessionId
    data: dict[str, Any] | None
    before: Snapshot | None
    reads: Reads
    signed_in: SignIn | None = None


@dataclass(frozen=True, slots=True)
class Touch:
    """Save ``record``, whose idle deadline moved; lost to a concurrent save, it is dropped
    (that save slid the deadline too)."""

    record: Record


Write: TypeAlias = "Create | Update | Regenerate | Touch | Resave"
"""One write of a session record."""


class Outcome(NamedTuple):
    """What to do when the response starts, in this order: delete ``delete`` (an
    invalidated record), do ``write``, then send the new cookie, or a clearing one when
    ``clear_cookie``. ``now`` is the request's time. (The usual write, a :class:`Resave`,
    comes alone: it deletes nothing and sends no cookie.)

    A named tuple, like :class:`Update`: one is built per writing request."""

    write: Write | None
    delete: SessionId | None
    clear_cookie: bool
    now: datetime


def plan_write(
    record: Record | None,
    data: dict[str, Any] | None,
    snapshot: Snapshot | None,
    new_id: SessionId | None,
    reads: Reads,
    *,
    expiry: Expiry,
    now: datetime,
    signed_in: SignIn | None = None,
    written: bool = True,
) -> Write | None:
    """The write a request's session needs (pure): ``record`` as loaded (``None``: none),
    ``data`` as the handler left it (``None``: never asked for), ``snapshot`` what
    ``record.data`` was handed out as (:func:`snapshot_of`), ``new_id`` a regeneration's
    (or a new session's) ID, ``reads`` what the handler read, ``signed_in`` a sign-in
    the handler recorded, ``written`` whether ``data`` saw a write method (when not, a
    scalar-only snapshot, which nothing else could change, needs no comparison).

    Raises:
        SessionEncodeError: ``data`` is not JSON the store could hold.
    """
    if record is None:
        if not data:
            return None if signed_in is None else Create(new_id, {}, signed_in)
        return Create(new_id, _saved(data), signed_in)
    if new_id is not None:
        if data is None or (
            signed_in is None  # a sign-in may rest on what it read: its reads are checked
            and snapshot is not None
            and changed(data, snapshot, written=written) is None
        ):  # nothing changed: the new record carries the newest data, whatever it is
            return Regenerate(record, new_id, None, None, NOTHING, signed_in)
        return Regenerate(record, new_id, _saved(data), snapshot, reads, signed_in)
    if data is not None:
        assert snapshot is not None  # handed out with the data, from the record
        change = changed(data, snapshot, written=written)
        if change is not None:
            return Update(record, change[0], snapshot, reads, change[1])
    touched = touch_session(record, expiry, now=now)
    return None if touched is record else Touch(touched)


def changed(
    data: dict[str, Any], snapshot: Snapshot, *, written: bool
) -> tuple[dict[str, Any], str] | None:
    """A plain copy of ``data`` and its JSON, if it changed since it was handed out as
    ``snapshot`` (``written``: see :func:`plan_write`); else ``None``.

    Raises:
        SessionEncodeError: ``data`` changed, and is not JSON the store could hold.
    """
    if type(snapshot) is dict:  # scalars only: compared without encoding
        if not written:
            return None
        try:  # unequal dicts never encode alike: only equal ones need a closer look
            same = _equal(data, snapshot)
        except Exception:  # a value's own __eq__ failed (no JSON): unchanged decides
            same = True
        if same and unchanged(data, snapshot):
            return None
    plain = dict(_items(data))  # _saved's copy, without the call
    text = validate_json(plain)
    if text == snapshot:  # JSON text: compared by its text (a dict snapshot never is)
        return None
    if "[" in text or text.find("{", 1) > 0:  # nested values the handler still holds
        plain = _detached(plain, text)
    return plain, text


class Resave(NamedTuple):
    """Save the record ``stored`` of ``session_id`` again, as stored (see
    :class:`~typed_sessions.stores.lane.RecordLane`): with ``text``, the JSON of the
    changed ``data`` (``None``: unchanged), used at ``last``, until ``expires``
    (microseconds). ``before`` and ``reads`` as in :class:`Update`, for a lost race."""

    session_id: SessionId
    stored: StoredRecord
    data: dict[str, Any] | None
    text: str | None
    before: Snapshot | None
    reads: Reads
    last: int
    expires: int


def plan_resave(
    session_id: SessionId,
    stored: StoredRecord,
    data: dict[str, Any] | None,
    snapshot: Snapshot | None,
    reads: Reads,
    expiry: tuple[int, int, int],
    now: int,
    written: bool,
) -> Resave | None:
    """:func:`plan_write` for a record loaded as stored, neither regenerated nor signed
    in, with times in microseconds (``expiry``: idle, absolute and step): a changed or
    touched record's :class:`Resave`, or ``None``.

    Raises:
        SessionEncodeError: ``data`` changed, and is not JSON the store could hold.
    """
    change = None
    if data is not None and (written or type(snapshot) is not dict):  # else unchanged
        assert snapshot is not None  # handed out with the data, from the record
        change = changed(data, snapshot, written=written)
    idle, absolute, step = expiry
    expires = stored.expires
    deadline = now + idle  # as in touch_session, in microseconds
    moved = deadline - expires
    if moved > 0 and moved >= step:
        cap = stored.created + absolute
        if cap < deadline:
            deadline = cap
            moved = deadline - expires
        if moved > 0 and moved >= step:
            expires = deadline
    if change is not None:
        data, text = change
        resave: Resave = new_tuple(
            Resave, (session_id, stored, data, text, snapshot, reads, now, expires)
        )
        return resave
    if expires == stored.expires:
        return None  # unchanged, and the deadline would barely move
    return Resave(session_id, stored, None, None, None, NOTHING, now, expires)


def _saved(data: dict[str, Any]) -> dict[str, Any]:
    """The data to save: a plain ``dict`` checked as JSON the store could hold, with its
    nested values detached from the handler's (see :func:`_detached`).

    Raises:
        SessionEncodeError: ``data`` is not JSON the store could hold.
    """
    plain = dict(_items(data))  # at C speed: dict.copy would call a subclass's items()
    text = validate_json(plain)
    return _detached(plain, text) if "[" in text or text.find("{", 1) > 0 else plain


def _detached(plain: dict[str, Any], text: str) -> dict[str, Any]:
    """``plain``, a copy of the handler's data holding lists or dicts, and ``text``, its
    JSON: its nested keys checked, and decoded again from ``text``, so that nothing the
    handler, or a task it started, changes after the response started reaches the save,
    or a merge that waits for the store.

    Raises:
        SessionEncodeError: a nested dict has a key that is not a ``str``.
    """
    check_keys(plain, text)
    detached: dict[str, Any] = json.loads(text)
    return detached
