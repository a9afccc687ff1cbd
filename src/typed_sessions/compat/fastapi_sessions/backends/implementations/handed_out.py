"""What a request of the fastapi-sessions shim was given: its record of handed-out sessions.

``update`` compares with it (see :class:`~.store_backends.StoreBackend`). The record is
a context variable: the frontend begins one per request, which every task of the request
adds to; a task without a frontend keeps a snapshot of its own.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

from typed_sessions import Session, SessionId

__all__ = ["ChangedMeanwhile", "Given", "begin_request", "recall", "remember"]


class ChangedMeanwhile(Exception):
    """An object of the request's own making, whose data may rest on any of its reads,
    while another request changed the session between two of them."""


Given = tuple[Session[Any], bytes, object]  # a session, its data's JSON, the object given
# Of one session: the latest hand-outs, the latest session seen (read or saved) with its
# JSON, and whether another request changed the data between two of them.
_Reads = tuple[tuple[Given, ...], Given, bool]


class _Seen(dict[tuple[object, str], _Reads]):
    """A record: by ``reads_key`` and ID; ``forgot``: it let a session go (it keeps
    ``_SESSIONS``), so an update it knows no read of may rest on a forgotten one."""

    __slots__ = ("forgot",)

    def __init__(self, items: dict[tuple[object, str], _Reads] | None = None) -> None:
        super().__init__(items or {})
        self.forgot = False if items is None else getattr(items, "forgot", False)


_HandedOut = tuple[object, object, _Seen]
_KEPT = 8  # hand-outs of one session kept per request (a socket may read it for hours)
_SESSIONS = 64  # sessions kept in a record (a socket's, a long-lived job's: the latest)
_HANDED_OUT: ContextVar[_HandedOut | None] = ContextVar(
    "typed_sessions_fastapi_sessions_handed_out", default=None
)
"""The sessions a request was given, with the request they belong to (the object its
frontend passed to :func:`begin_request`) and the task that recorded them: one ``dict``
that every task of the request adds to; without a frontend, a task's own snapshot."""


def _task() -> object:
    """The running task; ``None`` for a coroutine stepped without an event loop."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def begin_request(owner: object) -> None:
    """Start ``owner``'s record of handed-out sessions (the frontend calls it with an
    object of the request's own, first thing): what its task was given before, in an
    earlier request it served, is not this request's. The record then holds for every
    task of the request, and what any of them is given goes into it (``asyncio.wait_for``,
    ``asyncio.gather``, a task group, a thread's ``from_thread``)."""
    current = _HANDED_OUT.get()
    if current is None or current[0] is not owner:
        _HANDED_OUT.set((owner, _task(), _Seen()))


def _own(current: _HandedOut | None) -> bool:
    """Whether ``current`` is this request's: started by its frontend, or, with none (a
    route without ``Depends(cookie)``), recorded by this very task; not one inherited
    from a task that read sessions before it started this one (a server's warm-up)."""
    return current is not None and (current[0] is not None or current[1] is _task())


def remember(
    store: object, session: Session[Any], given: bytes, handed: object, *, over: bytes | None = None
) -> None:
    """Note that this request was given ``session``'s data from ``store`` (its
    ``reads_key``) as the object ``handed``, whose JSON was ``given``; or, with ``over``
    (the JSON of the data it saved over), that it saved it. Data read, or saved over,
    that differs from the session as last seen shows that another request changed it
    meanwhile. A record keeps the latest sessions, 64 at most, and notes that it forgot
    one."""
    entry, new = (store, session.id), (session, given, handed)
    current = _HANDED_OUT.get()
    shared = current is not None and current[0] is not None  # a frontend's: in place
    before = current[2] if current is not None and (shared or _own(current)) else _Seen()
    reads = before.get(entry)
    if reads is None:
        now: _Reads = ((new,), new, False)
    else:
        kept, last, changed = reads
        found = given if over is None else over
        now = ((*kept[1 - _KEPT :], new), new, changed or found != last[1])
    seen = before if shared else _Seen(before)
    seen.pop(entry, None)  # then last, as the most recent
    for key in list(seen)[: max(0, len(seen) + 1 - _SESSIONS)]:  # the oldest first
        del seen[key]
        seen.forgot = True
    seen[entry] = now
    if not shared:
        _HANDED_OUT.set((None, _task(), seen))


def recall(store: object, key: SessionId, data: object) -> Given | None:
    """What an update of session ``key`` to ``data`` rests on: the hand-out of ``data``
    itself, if this request was handed that object; else (an object of its own making,
    resting on any of its reads) the session as last seen, unless another request
    changed the data while this one read it. ``None``: no read in this request. A task
    started from one that read without a frontend knows only the objects handed out there.

    Raises:
        ChangedMeanwhile: ``data`` is not an object this request was handed, and another
            request changed the data while this one read it, or the record forgot a
            session (the read ``data`` rests on may be gone with it).
    """
    current = _HANDED_OUT.get()
    if current is None:
        return None
    record = current[2]
    reads = record.get((store, key))
    if not _own(current):  # inherited: only an object handed out there is surely its
        kept = () if reads is None else reads[0]
        return next((handout for handout in kept if handout[2] is data), None)
    if reads is None:
        if record.forgot:
            raise ChangedMeanwhile
        return None
    kept, last, changed = reads
    for handout in reversed(kept):
        if handout[2] is data:
            return handout
    if changed or record.forgot:
        raise ChangedMeanwhile
    return last
