"""Start, rotate and end sessions from a FastAPI handler.

Pass the response the client will get: the ``Response`` parameter FastAPI injects when
the handler returns data, or the ``RedirectResponse``/``HTMLResponse``/... the handler
builds and returns itself (FastAPI ignores the injected one then). The helpers append a
``Set-Cookie`` header, leaving any other cookie alone, and set ``Cache-Control: no-store``
so no cache keeps a response that sets or clears a session.

Changing a session's data is a save of a new record made by the pure functions; the
dependency already slid its expiry::

    match await store.save(replace_data(session, new_data, now=utc_now())):
        case Ok(saved): ...
        case Err(Conflict()): ...  # another request saved it first: reload and retry, or 409

Use the same ``keys``, ``cookie`` and ``expiry`` as the session dependency. Store failures
raise :class:`StoreError`; register ``store_error_handler`` to answer them with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from starlette.responses import Response

from typed_sessions.adapters.dependencies import DEFAULT_COOKIE, DEFAULT_EXPIRY
from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.cookies import CookieSettings, render_clear_cookie, render_set_cookie
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.result import Ok
from typed_sessions.core.retry import retry_delay
from typed_sessions.core.session import (
    Expiry,
    Session,
    expire_session,
    new_session,
    replace_data,
    touch_session,
)
from typed_sessions.core.signing import Keyring, sign_session_id
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = ["IssuedSession", "end_session", "issue_session", "rotate_session", "start_session"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IssuedSession(Generic[T]):
    """A newly saved session and the signed token that names it (not in the ``repr``)."""

    session: Session[T]
    token: str = field(repr=False)


async def issue_session(
    store: SessionStore[T],
    data: T,
    *,
    keys: Keyring,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
) -> IssuedSession[T]:
    """Save a new session holding ``data`` under a fresh ID; return it and its token.

    No cookie: for clients of a header dependency, which send the token back themselves.

    Raises:
        StoreError: the store failed, or already held the new random ID.
    """
    now = clock()
    saved = await store.save(new_session(data, expiry, now=now))
    if not isinstance(saved, Ok):
        raise StoreError("the store already holds a freshly generated session ID")
    return IssuedSession(saved.value, sign_session_id(saved.value.id, keys, now=now))


async def start_session(
    response: Response,
    store: SessionStore[T],
    data: T,
    *,
    keys: Keyring,
    cookie: CookieSettings = DEFAULT_COOKIE,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
) -> Session[T]:
    """Save a new session holding ``data`` and set its cookie on ``response``.

    To sign in a visitor who may already have a session, use :func:`rotate_session`
    on that session instead, so the old ID stops working.

    Raises:
        StoreError: the store failed; nothing was set on ``response``.
    """
    issued = await issue_session(store, data, keys=keys, expiry=expiry, clock=clock)
    _set_cookie(response, render_set_cookie(cookie, issued.token))
    return issued.session


async def rotate_session(
    response: Response,
    store: SessionStore[T],
    session: Session[T],
    *,
    keys: Keyring,
    cookie: CookieSettings = DEFAULT_COOKIE,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
    attempts: int = 20,
    update: Callable[[T], T] | None = None,
) -> Session[T] | None:
    """Move ``session``'s data to a new ID, end the old one and set the new cookie.

    Call it when privileges change (after login), so an ID planted or seen before
    stops working (session fixation). The new session keeps the old one's lifetime:
    its absolute deadline still counts from when the old one started, so rotating can
    never keep a session (or a stolen cookie) alive for ever.

    To change the data as it moves (say, to record who signed in), pass ``update``, a
    function of the data, as for :func:`~typed_sessions.update_session`: it is applied
    to the newest data, so may run more than once and must have no side effects. Pass
    ``session`` as loaded; a change made to ``session`` itself instead is lost if
    another request saved meanwhile (its newer data is what moves).

    The new record is saved first, then the old one is ended with a compare-and-set. If
    another request saved the old one since ``session`` was loaded, its newest data
    (with ``update`` applied) is first written to the new record, then the ending is
    tried again: nothing is lost, and whatever fails (the store, or ``update`` on the
    newer data) fails while the old session is still there. Returns ``None`` when the
    old session had already ended (a logout elsewhere): it is not brought back, the new
    record is removed and the cookie is cleared.

    Raises:
        StoreError: the store failed before the old record was ended, or it kept
            changing for ``attempts`` tries; the old session is left as it was, the new
            record is removed and no cookie is set. (If the store ended it but its reply
            was lost, the old session is gone too: never revived, since that cannot be
            told from a logout.)
        ValueError: ``attempts`` is less than 1.
        Exception: whatever ``update`` raised, with the old session left as it was.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    moving = session if update is None else replace(session, data=update(session.data))
    issued = await _save_moved(store, moving, keys=keys, expiry=expiry, clock=clock)
    rotated, current, gone = issued.session, session, False
    try:
        for attempt in range(attempts):
            ended = await store.save(expire_session(current))
            if isinstance(ended, Ok):
                break
            if ended.error.found is None:
                gone = True
                break
            if attempt + 1 == attempts:
                raise StoreError(f"the session kept changing; not rotated after {attempts} tries")
            # Another request saved meanwhile: carry its data to the new record first,
            # while the old session still stands, then end the newest version.
            await asyncio.sleep(retry_delay(attempt))
            latest = await store.load(session.id)
            if latest is None:
                gone = True
                break
            current = latest
            data = latest.data if update is None else update(latest.data)
            carried = await store.save(replace_data(rotated, data, now=clock()))
            if not isinstance(carried, Ok):
                if carried.error.found is None:  # expired with the old one (same deadline)
                    gone = True
                    break
                raise StoreError("the new session record changed while rotating")  # unexpected
            rotated = carried.value
    except BaseException:
        await _discard(store, issued.session.id)
        raise
    if gone:
        await _discard(store, issued.session.id)
        _set_cookie(response, render_clear_cookie(cookie))
        return None
    _set_cookie(response, render_set_cookie(cookie, issued.token))
    return rotated


async def _save_moved(
    store: SessionStore[T], session: Session[T], *, keys: Keyring, expiry: Expiry, clock: Clock
) -> IssuedSession[T]:
    """Save ``session``'s data and lifetime under a fresh ID; return it and its token."""
    now = clock()
    moved = touch_session(replace(session, id=new_session_id(), version=0), expiry, now=now)
    saved = await store.save(moved)
    if not isinstance(saved, Ok):
        raise StoreError("the store already holds a freshly generated session ID")
    return IssuedSession(saved.value, sign_session_id(saved.value.id, keys, now=now))


async def _discard(store: SessionStore[T], session_id: SessionId) -> None:
    """Remove a record no client has a token for; failing leaves an orphan that expires."""
    with contextlib.suppress(StoreError):
        await store.delete(session_id)


async def end_session(
    response: Response,
    store: SessionStore[T],
    session: Session[T] | SessionId | None,
    *,
    cookie: CookieSettings = DEFAULT_COOKIE,
) -> None:
    """Delete ``session`` (a record or an ID) and clear its cookie on ``response``.

    Ending a session that is already gone, or ``None`` (from a dependency made with
    ``auto_error=False``), is not an error: the cookie is cleared all the same.

    Raises:
        StoreError: the store failed; the cookie is not cleared, so the client may retry.
    """
    if session is not None:
        await store.delete(session.id if isinstance(session, Session) else session)
    _set_cookie(response, render_clear_cookie(cookie))


def _set_cookie(response: Response, set_cookie: str) -> None:
    response.headers.append("set-cookie", set_cookie)
    response.headers["cache-control"] = "no-store"
