"""A prototype of the session middleware's fast path (issue 13), measured beside ours.

The cheapest correct middleware we could write keeping what issue 13 asks of it, run by
``bench_middleware`` and ``instructions.py`` as the raw-ASGI contender "prototype". Kept:

- a signed session ID with an age check (at most ``absolute`` old), by the library's
  public ``sign_session_id``/``verify_session_token`` and ``Keyring``: the same crypto;
- a bounded cache of verified tokens, keyed by the exact token string, filled only after
  the signature verified, emptied when ``keys`` is replaced; the age check runs on every
  request, and so does the store read (an ended session ends at once);
- a private copy of the data per request (decoded from the stored JSON);
- change detection by one strict JSON encoding per request (NaN, infinities, non-JSON
  values and non-``str`` top-level keys refused: :class:`SessionEncodeError`), compared
  with the stored text;
- a compare-and-set save on a version number (a lost race: top-level key changes merged
  into the newest record; a session ended meanwhile stays ended);
- idle and absolute expiry in integer Unix seconds, one clock read per request;
- no save for a 5xx response; ``Set-Cookie`` only for a new session; a cookie that fails
  verification is ignored (never adopted, never a 500).

Left out (ours has them): WebSockets, regenerate/invalidate/sign-in, ``Vary: Cookie`` and
``Cache-Control``, clearing a dead cookie, logging, turns, 503 on a store failure, raising
on writes after the response started, nested non-``str`` keys, size limits.

Its records are named tuples in a plain ``dict``: several hundred bytes per session,
where issue 13's memory target is at most 177. :class:`CompactPrototype`, the contender
"prototype, compact store", is the same middleware over ``MemoryStore``'s records (packed,
and the ones in use kept unpacked in its front), read and written through the lane ours
uses (LRU order, the incremental purge, the thread lock, compare-and-set on the
version): what the compact store costs a middleware that has nothing else of ours.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from typed_sessions import (
    TOKEN_LENGTH,
    Expiry,
    Keyring,
    Ok,
    SessionEncodeError,
    SessionId,
    new_session,
    new_session_id,
    parse_cookie,
    sign_session_id,
    verify_session_token,
)
from typed_sessions.stores.lane import StoredRecord
from typed_sessions.stores.memory import MemoryStore

__all__ = ["CompactPrototype", "ProtoStore", "PrototypeMiddleware", "Record"]

SKEW: Final = 60  # seconds a token may be dated in the future (the library's default)
_SKEW: Final = timedelta(seconds=SKEW)
_ISSUED: Final = slice(8, 20)  # a token's issue time: 12 hex digits after the key part


def _refuse(value: object) -> object:
    raise TypeError(f"a {type(value).__name__} is not JSON")


# The stdlib's C encoder and scanner, called directly: JSONEncoder.encode and
# JSONDecoder.decode cost more than a small session's JSON. Circular data: RecursionError.
_encode: Final[Callable[[Any, int], list[str]]] = vars(json.encoder)["c_make_encoder"](
    None, _refuse, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
)
_scan: Final[Callable[[str, int], tuple[Any, int]]] = vars(json.JSONDecoder())["scan_once"]


class Record(NamedTuple):
    """A stored session: immutable, so a load hands out the stored one itself."""

    version: int
    created: int  # Unix seconds
    expires: int  # the idle deadline, never past ``created + absolute``
    text: str  # the data, as JSON


_new: Final[Callable[[type[Record], tuple[int, int, int, str]], Record]] = vars(tuple)["__new__"]


class ProtoStore:
    """Records in a dict by session ID; beyond ``max_sessions`` the oldest goes."""

    def __init__(self, max_sessions: int = 10_000) -> None:
        self.records: dict[str, Record] = {}
        self.max_sessions = max_sessions

    async def load(self, session_id: str, now: int) -> Record | None:  # the live one
        record = self.records.get(session_id)
        if record is not None and now >= record.expires:
            del self.records[session_id]
            return None
        return record

    async def save(self, session_id: str, record: Record, now: int) -> Record | None:
        """Store ``record`` if the live version is one below its own (none: version 1),
        and return it; else return the live record (``None``: the session ended)."""
        records = self.records
        stored = records.get(session_id)
        if stored is not None and now >= stored.expires:
            del records[session_id]
            stored = None
        if (0 if stored is None else stored.version) + 1 != record.version:
            return stored
        if stored is None and len(records) >= self.max_sessions:
            del records[next(iter(records))]
        records[session_id] = record
        return record

    async def delete(self, session_id: str) -> None:
        self.records.pop(session_id, None)


def encode(data: dict[str, Any]) -> str:
    """Strict, compact JSON of ``data``, else :class:`SessionEncodeError` (a non-JSON
    value, NaN or infinity, or a top-level key not a ``str``: JSON makes ``1`` ``"1"``)."""
    for key in data:
        if type(key) is not str:
            raise SessionEncodeError("session data keys must be str")
    try:
        return "".join(_encode(data, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        raise SessionEncodeError(f"session data is not JSON: {exc}") from None


class PrototypeMiddleware:
    """Pure ASGI: the request's session is the dict at ``scope["session"]``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: ProtoStore,
        keys: Keyring,
        idle: int = 30 * 60,
        absolute: int = 12 * 3600,
        cookie_name: str = "__Host-session",
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        save_attempts: int = 5,
    ) -> None:
        self.app, self.store = app, store
        self.keys = keys  # replace it to rotate: the token cache then starts empty
        self.idle, self.absolute, self.step = idle, absolute, idle // 10
        self.cookie_name = cookie_name
        self._attributes = "; Path=/; Secure; HttpOnly; SameSite=Lax"
        self.clock, self.cache_size, self.save_attempts = clock, cache_size, save_attempts
        self._max_age = timedelta(seconds=absolute)
        self.verified: dict[str, tuple[SessionId, int]] = {}  # token -> (ID, issued time)
        self._verified_by = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = int(self.clock())
        cookie: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"cookie":  # HTTP/2 may split it: rejoin
                cookie = value if cookie is None else cookie + b"; " + value
        session_id = None if cookie is None else self.verify(cookie, now)
        record = None if session_id is None else await self.store.load(session_id, now)
        data: dict[str, Any] = {} if record is None else _scan(record.text, 0)[0]
        scope["session"] = data

        async def send_saving(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 500:
                set_cookie = await self.commit(session_id, record, data, now)
                if set_cookie is not None:
                    message["headers"] = [*message.get("headers", ()), set_cookie]
            await send(message)

        await self.app(scope, receive, send_saving)

    def verify(self, header: bytes, now: int) -> SessionId | None:
        """The session ID of the request's cookie, if its token verifies at ``now``."""
        token = parse_cookie(header.decode("latin-1"), self.cookie_name)
        if token is None or len(token) != TOKEN_LENGTH:
            return None
        verified = self.verified
        if self.keys is not self._verified_by:  # new keys: forget what the old ones passed
            verified.clear()
            self._verified_by = self.keys
        known = verified.get(token)
        if known is None:
            moment = datetime.fromtimestamp(now, UTC)
            checked = verify_session_token(
                token, self.keys, now=moment, max_age=self._max_age, clock_skew=_SKEW
            )
            if not isinstance(checked, Ok):
                return None
            known = checked.value, int(token[_ISSUED], 16)
            if len(verified) >= self.cache_size:
                del verified[next(iter(verified))]
            verified[token] = known
        session_id, issued = known
        if not -SKEW <= now - issued <= self.absolute:  # the age check, every request
            del verified[token]
            return None
        return session_id

    async def commit(
        self, session_id: SessionId | None, record: Record | None, data: dict[str, Any], now: int
    ) -> tuple[bytes, bytes] | None:
        """Save what the request changed; the ``Set-Cookie`` header of a new session."""
        if session_id is None or record is None:
            if not data:
                return None
            new_id = new_session_id()
            new = Record(1, now, now + min(self.idle, self.absolute), encode(data))
            if await self.store.save(new_id, new, now) is not new:  # pragma: no cover
                raise RuntimeError("a fresh session ID collided with a stored one")
            token = sign_session_id(new_id, self.keys, now=datetime.fromtimestamp(now, UTC))
            return b"set-cookie", f"{self.cookie_name}={token}{self._attributes}".encode()
        text = encode(data)
        deadline = min(now + self.idle, record.created + self.absolute)
        if text == record.text and deadline - record.expires < self.step:
            return None  # unchanged, and the idle deadline would barely move
        new = _new(Record, (record.version + 1, record.created, deadline, text))  # no __new__ frame
        saved = await self.store.save(session_id, new, now)
        if saved is not new and saved is not None and text != record.text:
            await self._merge(session_id, record, data, saved, now)
        return None  # a touch lost to another save is dropped: that save slid it too

    async def _merge(
        self, session_id: SessionId, before: Record, data: dict[str, Any], newest: Record, now: int
    ) -> None:
        """Apply this request's top-level key changes to ``newest`` and save, until the
        save holds or the session has ended (then nothing is saved)."""
        old = _scan(before.text, 0)[0]
        changed = {k: v for k, v in data.items() if k not in old or not _same(old[k], v)}
        removed = [key for key in old if key not in data]
        current: Record | None = newest
        for _ in range(self.save_attempts):
            if current is None:
                return  # ended meanwhile: it stays ended
            merged = _scan(current.text, 0)[0]
            merged.update(changed)
            for key in removed:
                merged.pop(key, None)
            deadline = min(now + self.idle, current.created + self.absolute)
            new = Record(current.version + 1, current.created, deadline, encode(merged))
            saved = await self.store.save(session_id, new, now)
            if saved is new:
                return
            current = saved
        raise RuntimeError("the session kept changing; not saved")


def _same(old: Any, new: Any) -> bool:
    """Whether two JSON values encode alike (``1`` is not ``True``, ``1.0`` nor ``"1"``)."""
    return "".join(_encode(old, 0)) == "".join(_encode(new, 0))


# --- the same over MemoryStore's compact records --------------------------------------

_US: Final = 1_000_000


class CompactPrototype(PrototypeMiddleware):
    """:class:`PrototypeMiddleware` whose records live in ``store`` (a ``MemoryStore``)."""

    def __init__(
        self, app: ASGIApp, *, store: MemoryStore[dict[str, Any]], keys: Keyring, **options: Any
    ) -> None:
        super().__init__(app, store=ProtoStore(), keys=keys, **options)
        self.lane = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = int(self.clock())
        cookie: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"cookie":  # HTTP/2 may split it: rejoin
                cookie = value if cookie is None else cookie + b"; " + value
        session_id = None if cookie is None else self.verify(cookie, now)
        record = None if session_id is None else self.lane.load_record_now(session_id)
        text = None if record is None else record.raw[record.data_at :].decode()
        data: dict[str, Any] = {} if text is None else _scan(text, 0)[0]
        scope["session"] = data

        async def send_saving(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 500:
                set_cookie = await self.commit_compact(session_id, record, text, data, now)
                if set_cookie is not None:
                    message["headers"] = [*message.get("headers", ()), set_cookie]
            await send(message)

        await self.app(scope, receive, send_saving)

    async def commit_compact(
        self,
        session_id: SessionId | None,
        record: StoredRecord | None,
        text: str | None,
        data: dict[str, Any],
        now: int,
    ) -> tuple[bytes, bytes] | None:
        """Save what the request changed; the ``Set-Cookie`` header of a new session."""
        if session_id is None or record is None or text is None:
            if not data:
                return None
            return await self._create(data, now)
        new = encode(data)
        micros = now * _US
        deadline = min(micros + self.idle * _US, record.created + self.absolute * _US)
        if new == text and deadline - record.expires < self.step * _US:
            return None  # unchanged, and the idle deadline would barely move
        changed = new != text
        conflict = self.lane.save_record_now(
            session_id, record, new.encode() if changed else None, micros, deadline
        )
        if conflict is not None and changed:
            self._merge_compact(session_id, text, data, now)
        return None  # a touch lost to another save is dropped: that save slid it too

    async def _create(self, data: dict[str, Any], now: int) -> tuple[bytes, bytes]:
        moment = datetime.fromtimestamp(now, UTC)
        expiry = Expiry(timedelta(seconds=self.idle), timedelta(seconds=self.absolute))
        session = new_session(
            _scan(encode(data), 0)[0], expiry, now=moment, session_id=new_session_id()
        )
        await self.lane.save(session)
        token = sign_session_id(session.id, self.keys, now=moment)
        return b"set-cookie", f"{self.cookie_name}={token}{self._attributes}".encode()

    def _merge_compact(
        self, session_id: SessionId, before: str, data: dict[str, Any], now: int
    ) -> None:
        """Apply this request's top-level key changes to the newest record and save,
        until the save holds or the session has ended (then nothing is saved)."""
        old = _scan(before, 0)[0]
        changed = {k: v for k, v in data.items() if k not in old or not _same(old[k], v)}
        removed = [key for key in old if key not in data]
        for _ in range(self.save_attempts):
            current = self.lane.load_record_now(session_id)
            if current is None:
                return  # ended meanwhile: it stays ended
            merged = _scan(current.raw[current.data_at :].decode(), 0)[0]
            merged.update(changed)
            for key in removed:
                merged.pop(key, None)
            micros = now * _US
            deadline = min(micros + self.idle * _US, current.created + self.absolute * _US)
            if (
                self.lane.save_record_now(
                    session_id, current, encode(merged).encode(), micros, deadline
                )
                is None
            ):
                return
        raise RuntimeError("the session kept changing; not saved")
