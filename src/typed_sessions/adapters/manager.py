"""One request's session, on ``request.state.session``: the page's API (``get_session()``,
...) and the driver's (``preload()``, ``outcome(status)``: no I/O; ``settle()``, ...)."""

from __future__ import annotations

from datetime import datetime
from time import time_ns
from typing import Any, cast

from starlette.requests import HTTPConnection
from starlette.types import Scope

from typed_sessions.adapters.errors import (
    SessionBusyError,
    WebSocketSessionError,
    closed_error,
    late_error,
    not_loaded_error,
    websocket_error,
)
from typed_sessions.adapters.lifecycle import device_of, peer_scope
from typed_sessions.adapters.loaded import Loaded, adopt, load_session, plan_for
from typed_sessions.adapters.outcome import (
    NOTHING,
    Create,
    Outcome,
    Resave,
    SignIn,
    Snapshot,
    plan_resave,
    snapshot_of,
)
from typed_sessions.adapters.session_data import SessionData
from typed_sessions.adapters.settings import SessionSettings
from typed_sessions.adapters.turns import Turn, Turns
from typed_sessions.core.clock import EPOCH, MICROSECOND, utc_now
from typed_sessions.core.ids import SessionId, new_session_id
from typed_sessions.core.subjects import check_subject
from typed_sessions.core.tuples import new_tuple
from typed_sessions.stores.protocol import StoreError

__all__ = ["SessionManager"]


class SessionManager:
    """The session of one request: on ``request.state.session`` and from ``SessionDep``.

    Built by the middleware for every request. All methods but :meth:`load` are
    synchronous, as on the authx-extra page (with ``autoload=False`` await :meth:`load`
    first). Changes are saved when the response starts, if the data changed or sliding
    expiry needs it, never for a 5xx."""

    __slots__ = (
        "_accessed", "_clear_cookie", "_closed", "_cookie_header", "_data", "_delete_id",
        "_final_id", "_found", "_kept", "_load_failed", "_loaded", "_micros", "_moment", "_new_id",
        "_peer", "_settings", "_signed_in", "_snapshot", "_turn", "_verified_id", "_websocket",
    )  # fmt: skip

    def __init__(
        self,
        settings: SessionSettings,
        cookie_header: bytes | None = None,
        websocket: bool = False,
        turns: Turns[SessionId] | None = None,
        scope: Scope | None = None,
    ) -> None:
        """Start a request's state; its ``Cookie`` header is verified when needed."""
        self._settings = settings
        self._cookie_header = cookie_header
        self._verified_id: SessionId | None = None
        self._websocket = websocket
        self._loaded = cookie_header is None and settings.autoload
        self._found: Loaded | None = None  # the stored session loaded, if any
        self._data: SessionData | None = None
        self._snapshot: Snapshot | None = None
        self._accessed = False
        self._new_id: SessionId | None = None
        self._delete_id: SessionId | None = None
        self._final_id: SessionId | None = None
        self._clear_cookie = self._closed = self._load_failed = self._kept = False
        self._moment: datetime | None = None
        # The request's time (microseconds since the epoch), read once: now, for a cookie.
        default = cookie_header is not None and settings.clock is utc_now
        self._micros = time_ns() // 1_000 if default else -1
        self._turn = None if turns is None else Turn(turns)
        # What sign_in reads; not the scope, which holds this manager (a cycle for the gc).
        self._peer = None if scope is None else (scope["headers"], scope.get("client"))
        self._signed_in: SignIn | None = None

    # --- the page's API -----------------------------------------------------------------

    def get_session(self) -> SessionData:
        """Return the session: a ``dict`` of JSON values, empty for a new session (stored,
        with its cookie, only if it holds data when the response starts). Raises
        :class:`SessionNotLoadedError` with ``autoload=False``, before :meth:`load`."""
        data = self._data
        if data is not None:
            self._accessed = True
            return data
        if not self._loaded:
            raise not_loaded_error("get_session()")
        self._accessed = True
        found = self._found
        if found is None:
            data = SessionData()
            if self._closed:
                data.block(closed_error)
            elif self._websocket:
                data.block(websocket_error)
        else:
            data = SessionData(found.data, True)  # track=True, by position: 1k instructions less
            self._snapshot = snapshot_of(found.data)
            if self._closed:
                data.block(closed_error)
        self._data = data
        return data

    def get_session_id(self) -> SessionId | None:
        """Return the session's ID, or ``None`` while there is no session (a new one gets
        its ID once it holds data, or :meth:`start`). After the response started: the
        stored record the client is left with (``None``: none saved, or invalidated).
        Never log it: it is a bearer secret, like the signed cookie.

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
        """
        if not self._loaded:
            raise not_loaded_error("get_session_id()")
        self._accessed = True
        if self._closed:
            return self._final_id
        new = self._data or self._signed_in is not None or self._kept  # a new one stored
        if self._new_id is not None and (self._found is not None or new):
            return self._new_id  # regenerated, or a new session to be stored
        if self._found is not None:
            return self._found.id
        if new:
            self._new_id = new_session_id()
            return self._new_id
        return None

    def start(self) -> SessionId:
        """Return the session's ID, starting a new one if there is none (stored with its
        cookie when the response starts, even while it holds no data).

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
            WebSocketSessionError: a new session on a WebSocket (no cookie can be sent).
        """
        self._check_open("start()")
        if not self._loaded:
            raise not_loaded_error("start()")
        if self._websocket and self._found is None:
            raise websocket_error()
        self._kept = True
        return cast("SessionId", self.get_session_id())  # (kept: never None now)

    def regenerate(self) -> None:
        """Give the session a new ID, keeping its data; the old record is deleted. Call it
        when privileges change (after login), against session fixation; the new cookie is
        set when the response starts (a new session changes nothing).

        Raises:
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
            WebSocketSessionError: on a WebSocket, which cannot receive the new cookie.
        """
        self._check_open("regenerate()")
        if not self._loaded:
            raise not_loaded_error("regenerate()")
        if self._websocket:
            raise WebSocketSessionError("regenerate() needs a cookie, which no WebSocket gets")
        self._accessed = True
        if self._found is not None:
            self._new_id = new_session_id()

    def sign_in(self, subject: str) -> None:
        """Record that ``subject`` (the user's ID as text) has just signed in: the session
        moves to a new ID (as :meth:`regenerate`) and belongs to ``subject``, authenticated
        now, from this request's device (stored even while it holds no data).

        Raises:
            ValueError: ``subject`` is empty, too long or holds control characters.
            SessionNotLoadedError: with ``autoload=False``, before :meth:`load`.
            WebSocketSessionError: on a WebSocket, which cannot receive the new cookie.
        """
        check_subject(subject)
        self.regenerate()
        peer = self._peer
        device = None if peer is None else device_of(HTTPConnection(peer_scope(*peer)))
        self._signed_in = SignIn(subject, device)

    def invalidate(self) -> None:
        """End the session: its record is deleted and its cookie cleared (no :meth:`load`
        needed). The mapping from :meth:`get_session` is emptied; data put in it then
        starts a new session with a new ID (a flash message after logout, say)."""
        self._check_open("invalidate()")
        self._accessed = True
        old = self._found.id if self._found is not None else self._verify()
        if old is not None:
            self._delete_id = old
            self._clear_cookie = True
        self._found = self._verified_id = self._new_id = self._snapshot = None
        self._signed_in = None  # a sign-in before it ends with the session
        self._loaded, self._kept = True, False
        data = self._data
        if data is not None:
            dict[str, Any].clear(data)  # dict's own: SessionData's refuses a blocked one
            if self._websocket:
                data.block(websocket_error)

    async def load(self) -> SessionData:
        """Load the session from the store if not done yet, and return it. Its first
        read is the request's (a request without a cookie that verifies reads nothing).

        Raises:
            StoreError: the store failed (the middleware answers 503).
        """
        if not self._loaded:
            self._check_open("load()")
            if not await self.take_turn():
                self._check_open("load()")  # the request ended while it waited
                raise SessionBusyError("this session's turn did not come in time")
            try:
                await self.preload()
            finally:
                if self._websocket:  # a socket may stay open for hours: others may go
                    self.end_turn()
        return self.get_session()

    @property
    def loaded(self) -> bool:
        """Whether the session is ready for the synchronous methods."""
        return self._loaded

    @property
    def invalidated(self) -> bool:
        """Whether :meth:`invalidate` ended the session this request had."""
        return self._delete_id is not None

    # --- the driver's API ---------------------------------------------------------------

    @property
    def cookie_session_id(self) -> SessionId | None:
        """The ID the request's cookie named, once verified (for logs, as a digest)."""
        return self._verified_id if self._found is None else self._found.id

    @property
    def load_failed(self) -> bool:
        """Whether loading raised :class:`StoreError` (the driver answers 503)."""
        return self._load_failed

    async def preload(self) -> None:
        """Verify the cookie and read its record, without touching the session. A cookie
        that does not verify, or names no live record, is not adopted; an expired one of
        ours is cleared at the outcome (not one naming no record: the browser may hold a
        newer cookie by now, which that would delete).

        Raises:
            StoreError: the store failed; :attr:`load_failed` is then true.
        """
        session_id = self._verify()
        if session_id is not None:
            settings = self._settings
            try:
                lane = settings.instant_lane
                if lane is not None:  # read without a coroutine
                    stored = lane.load_record_now(session_id)
                    found = adopt(settings, lane, session_id, stored, self._micros)
                else:
                    found = await load_session(settings, session_id, self._micros, self._now)
                    if self._loaded:  # another load() of this request read first: it stays
                        return
            except StoreError:
                if self._loaded:  # another load() of this request read first: it stays
                    return
                self._load_failed = True
                raise
            if found is None:  # not adopted
                self._verified_id = None
            self._found = found
        self._loaded = True

    async def take_turn(self) -> bool:
        """With ``take_turns=True``: wait for the turn of the cookie's session in this
        worker (if it verifies); ``False`` when ``turn_timeout`` passed first."""
        turn = self._turn
        if turn is None or turn.key is not None:
            return True
        session_id = self._verify()
        return session_id is None or await turn.take(session_id, self._settings.turn_timeout)

    def end_turn(self, *, last: bool = False) -> None:
        """Give the session's turn on, if held; ``last``: the request ended (no take after)."""
        if self._turn is not None:
            self._turn.end(last=last)

    @property
    def has_turn(self) -> bool:
        """Whether this request holds its session's turn (``take_turns=True``)."""
        return self._turn is not None and self._turn.key is not None

    def outcome(self, status: int) -> Outcome | Resave | None:
        """Close the session and return what the response start must write (no I/O):
        ``None`` for nothing, a :class:`Resave` for the usual write (the loaded record
        saved again, changed or with its deadline moved), else an :class:`Outcome`.
        Nothing for a 5xx or an unchanged session whose deadline barely moved. Then writes
        raise :class:`SessionClosedError`; the driver calls :meth:`settle` or :meth:`abandon`.

        Raises:
            SessionEncodeError: the data is not JSON; nothing is to be written.
            StoreCorruptError: the loaded record, decoded only now, does not decode.
        """
        self._closed = True
        data = self._data
        if data is not None:
            data.block(closed_error)
        found = self._found
        if found is not None:  # then nothing was invalidated, and the cookie stays
            self._final_id = found.id
            if status >= 500:
                return None
            stored = found.stored
            if stored is not None and self._new_id is None:  # loaded as stored, staying
                return plan_resave(
                    found.id, stored, data, self._snapshot, NOTHING if data is None else data,
                    self._settings.lane_expiry, self._micros, data is None or data.written,
                )  # fmt: skip
        else:
            self._final_id = None
            if status >= 500 or not (
                data  # a new session holding data
                or self._delete_id is not None
                or self._clear_cookie
                or self._signed_in is not None
                or self._kept
            ):
                return None
        write, now = plan_for(
            found, data, self._snapshot, self._new_id, self._signed_in, self._settings, self._now
        )
        if write is None and self._kept and found is None:  # started, and still empty
            write = Create(self._new_id, {})
        if write is None and self._delete_id is None and not self._clear_cookie:
            return None
        outcome: Outcome = new_tuple(Outcome, (write, self._delete_id, self._clear_cookie, now))
        return outcome

    @property
    def accessed(self) -> bool:
        """Whether the handler used the session (its response then varies with the cookie):
        read or changed it, or took it from ``SessionDep`` (it may read it while streaming)."""
        return self._accessed

    def mark_accessed(self) -> None:
        """Count the session as used (:attr:`accessed`), read or not: ``SessionDep`` does."""
        self._accessed = True

    def settle(self, session_id: SessionId | None) -> None:
        """Record the stored session the client holds after the outcome was carried out."""
        self._final_id = session_id

    def abandon(self) -> None:
        """Close without saving (the handler or the store failed, say): :meth:`get_session_id`
        then names the record this request loaded, or ``None``."""
        self._closed = True
        if self._data is not None:
            self._data.block(closed_error)
        self._final_id = None if self._found is None else self._found.id

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise late_error(what)

    def _now(self) -> datetime:
        """The request's time: read from the clock once, then the same for every step."""
        micros = self._clock()
        if self._moment is None:  # the default clock's: made from its reading
            self._moment = EPOCH + MICROSECOND * micros
        return self._moment

    def _clock(self) -> int:
        """The request's time in microseconds since the Unix epoch: read once."""
        micros = self._micros
        if micros < 0:
            self._moment, micros = self._settings.moment()
            self._micros = micros
        return micros

    def _verify(self) -> SessionId | None:
        """Verify the request's token once (at the request's time); a failed one is gone."""
        header = self._cookie_header
        if header is None:
            return self._verified_id
        self._cookie_header = None
        micros = self._micros if self._micros >= 0 else self._clock()
        session_id, dead = self._settings.verify_cookie(header, micros / 1_000_000)
        self._verified_id = session_id
        self._clear_cookie = dead  # ours, but unusable: cleared unless a new one is set
        return session_id
