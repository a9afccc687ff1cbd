"""Start, rotate and end sessions from a FastAPI handler.

Pass the response the client will get: the ``Response`` parameter FastAPI injects when
the handler returns data, or the ``RedirectResponse``/``HTMLResponse``/... the handler
builds and returns itself (FastAPI ignores the injected one then). The helpers append a
``Set-Cookie`` header, leaving any other cookie alone, and set ``Cache-Control: no-store``
so no cache keeps a response that sets or clears a session.

Settings given once: the dependency from ``make_cookie_dependency`` offers these as
methods (``current.start(response, data)``, ``current.rotate(...)``, ``current.end(...)``)
with the store, keys, cookie, expiry and clock it was made with, so a session is always
started with the settings it is read with. The free functions below are for direct use;
give them the same settings as the dependency. Store failures raise
:class:`StoreError`; register ``store_error_handler`` to answer them with 503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from typed_sessions.core.clock import Clock, utc_now
from typed_sessions.core.cookies import CookieSettings, render_clear_cookie, render_set_cookie
from typed_sessions.core.defaults import DEFAULT_ATTEMPTS, DEFAULT_COOKIE, DEFAULT_EXPIRY
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Ok
from typed_sessions.core.session import Expiry, Session, new_session
from typed_sessions.core.signing import Keys, as_keyring, sign_session_id
from typed_sessions.core.subjects import Device, device_from
from typed_sessions.stores.operations import SessionNotFound, move_session
from typed_sessions.stores.protocol import SessionStore, StoreError

__all__ = [
    "IssuedSession",
    "device_of",
    "end_session",
    "issue_session",
    "peer_scope",
    "reissue_session",
    "rotate_session",
    "start_session",
]

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
    keys: Keys,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
    subject: str | None = None,
    device: Device | None = None,
) -> IssuedSession[T]:
    """Save a new session holding ``data`` under a fresh ID; return it and its token.

    No cookie: for clients of a header dependency, which send the token back themselves.
    ``subject``: the user who signed in (their ID as text), recorded with ``auth_time``
    now, so the session can be listed and ended with the user's others; ``device``: a
    description of the client (see :func:`device_of`).

    Raises:
        StoreError: the store failed, or already held the new random ID.
        ValueError: ``subject`` is empty, too long or holds control characters.
    """
    now = clock()
    session = new_session(
        data, expiry, now=now, subject=subject,
        auth_time=None if subject is None else now, device=device,
    )  # fmt: skip
    saved = await store.save(session)
    if not isinstance(saved, Ok):
        raise StoreError("the store already holds a freshly generated session ID")
    return IssuedSession(saved.value, sign_session_id(saved.value.id, as_keyring(keys), now=now))


async def start_session(
    response: Response,
    store: SessionStore[T],
    data: T,
    *,
    keys: Keys,
    cookie: CookieSettings = DEFAULT_COOKIE,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
    subject: str | None = None,
    device: Device | None = None,
) -> Session[T]:
    """Save a new session holding ``data`` and set its cookie on ``response``.

    To sign in a visitor who may already have a session, use :func:`rotate_session`
    on that session instead, so the old ID stops working. ``subject`` and ``device``:
    as for :func:`issue_session`.

    Raises:
        StoreError: the store failed; nothing was set on ``response``.
    """
    issued = await issue_session(
        store, data, keys=keys, expiry=expiry, clock=clock, subject=subject, device=device
    )
    _set_cookie(response, render_set_cookie(cookie, issued.token))
    return issued.session


async def reissue_session(
    store: SessionStore[T],
    session: Session[T],
    *,
    keys: Keys,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
    attempts: int = DEFAULT_ATTEMPTS,
    update: Callable[[T], T] | None = None,
    signed_in: str | None = None,
    device: Device | None = None,
) -> IssuedSession[T] | None:
    """Move ``session`` to a new ID and end the old one; return the new one and its token.

    What :func:`rotate_session` does, without a cookie: for header clients. ``None`` when
    the old session had already ended (it is not brought back).

    Raises:
        StoreError: as for :func:`rotate_session`.
        ValueError: ``attempts`` is less than 1.
    """
    change: Callable[[T], T] = (lambda data: data) if update is None else update
    moved = await move_session(
        store, session, change(session.data), change, expiry=expiry, attempts=attempts,
        clock=clock, signed_in=signed_in, device=device,
    )  # fmt: skip
    if isinstance(moved, Ok):
        token = sign_session_id(moved.value.id, as_keyring(keys), now=clock())
        return IssuedSession(moved.value, token)
    if isinstance(moved.error, SessionNotFound):
        return None
    raise StoreError(f"the session kept changing; not rotated after {attempts} tries")


async def rotate_session(
    response: Response,
    store: SessionStore[T],
    session: Session[T],
    *,
    keys: Keys,
    cookie: CookieSettings = DEFAULT_COOKIE,
    expiry: Expiry = DEFAULT_EXPIRY,
    clock: Clock = utc_now,
    attempts: int = DEFAULT_ATTEMPTS,
    update: Callable[[T], T] | None = None,
    signed_in: str | None = None,
    device: Device | None = None,
) -> Session[T] | None:
    """Move ``session``'s data to a new ID, end the old one and set the new cookie.

    Call it when privileges change (after login), against session fixation. The new
    session keeps the old one's absolute deadline (no stolen cookie lives for ever).
    ``signed_in``: the subject (user ID) who has just signed in or authenticated again:
    the new session is theirs, with ``auth_time`` now, on ``device`` (if given).

    To change the data as it moves, pass ``update``, a function of the data, as for
    :func:`~typed_sessions.update_session` (applied to the newest data, so it may run
    more than once: no side effects). A change made to ``session`` itself is lost if
    another request saved meanwhile: the newer data is what moves.

    The new record is saved first, then the old one is ended with a compare-and-set; if
    another request saved the old one meanwhile, its newest data (``update`` applied) is
    written to the new record and the ending tried again. Nothing is lost, and whatever
    fails does so while the old session is still there. Returns ``None`` when the old
    session had already ended (a logout elsewhere): it is not brought back, the new
    record is removed and the cookie is cleared.

    Raises:
        StoreError: the store failed before the old record was ended, or it kept
            changing for ``attempts`` tries; the old session is left as it was, the new
            record is removed and no cookie is set. (If the store ended it but the reply
            was lost, it stays ended: that cannot be told from a logout.)
        ValueError: ``attempts`` is less than 1.
        Exception: whatever ``update`` raised, with the old session left as it was.
    """
    issued = await reissue_session(
        store, session, keys=keys, expiry=expiry, clock=clock, attempts=attempts,
        update=update, signed_in=signed_in, device=device,
    )  # fmt: skip
    if issued is None:
        _set_cookie(response, render_clear_cookie(cookie))
        return None
    _set_cookie(response, render_set_cookie(cookie, issued.token))
    return issued.session


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


def peer_scope(headers: list[tuple[bytes, bytes]], client: object) -> Scope:
    """A scope of its own holding what :func:`device_of` reads of a request's scope: its
    ``headers`` and ``client``."""
    return {"type": "http", "headers": headers, "client": client}


def device_of(request: HTTPConnection, *, keep_address: bool = False) -> Device:
    """The client's device as a session records it: its user agent, shortened, and its
    address only with ``keep_address`` (coarsened to a /24 or /48 network)."""
    client = request.client
    return device_from(
        request.headers.get("user-agent"),
        None if client is None else client.host,
        keep_address=keep_address,
    )


def _set_cookie(response: Response, set_cookie: str) -> None:
    response.headers.append("set-cookie", set_cookie)
    response.headers["cache-control"] = "no-store"
