"""The shared store: Redis or Valkey, for many processes and machines.

Install it with the extra ``typed-sessions[redis]`` (``redis.asyncio`` from redis-py 5.0.2
or later: 5.0.1's ``BlockingConnectionPool`` deadlocks when a call is cancelled, which is
how timeouts end a call).

The layout in Redis and the round trips: see :mod:`typed_sessions.stores.redis_save`.

Sessions with a subject are also entered in their subject's index (see
:mod:`typed_sessions.stores.redis_index`): on one server, in the same script as the save
(two keys, still one round trip); on Cluster, in ordered steps of their own.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar, overload

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError

from typed_sessions.core.clock import Clock, checked_clock, utc_now
from typed_sessions.core.codec import DEFAULT_MAX_DATA_BYTES, SessionCodec, Upgrade
from typed_sessions.core.ids import SessionId
from typed_sessions.core.result import Err, Ok, Result
from typed_sessions.core.session import Session
from typed_sessions.stores.deadlines import CallLimit
from typed_sessions.stores.options import OnCorrupt, check_store_options
from typed_sessions.stores.protocol import Conflict
from typed_sessions.stores.redis_calls import RedisClient, checked_client
from typed_sessions.stores.redis_format import (
    CALL_ERRORS,
    HEADER,
    HEADER_MAX,
    TOMBSTONE,
    TOMBSTONE_SECONDS,
    as_bytes,
    corrupt_error,
    is_wrong_type,
    pack,
    unavailable,
)
from typed_sessions.stores.redis_index import RedisSubjectIndex
from typed_sessions.stores.redis_save import (
    INDEXED_SAVE,
    NO_ID,
    SAVE,
    SAVED,
    new_write_id,
    save_control,
    save_outcome,
)

__all__ = ["DEFAULT_REDIS_TIMEOUT", "TOMBSTONE_SECONDS", "OnCorrupt", "RedisClient", "RedisStore"]

T = TypeVar("T")
_D = TypeVar("_D")  # from_url's data type: the class's T is unknown in a classmethod

DEFAULT_REDIS_TIMEOUT = 2.0
"""Seconds one store call may take before it fails with ``StoreUnavailableError``."""

_logger = logging.getLogger(__name__)
_NOW: Clock = partial(datetime.now, UTC)  # utc_now without its Python frame


class RedisStore(RedisSubjectIndex, Generic[T]):
    """Sessions in Redis or Valkey, shared by every process and machine that uses it.

    Build it from a ``redis.asyncio`` client you own (``Redis`` or ``RedisCluster``;
    ``decode_responses`` may be either) or with :meth:`from_url`, which makes and owns
    one. It satisfies :class:`~typed_sessions.SessionStore` structurally. A client of
    your own with a plain ``ConnectionPool`` fails at once ("Too many connections", a
    ``StoreUnavailableError``) when more calls run at once than it has connections; a
    ``BlockingConnectionPool``, as :meth:`from_url` makes, waits for one instead.

    ``load`` is one ``GET``, ``save`` one ``EVALSHA`` (a compare-and-set on the version,
    with the record's TTL), ``delete`` one ``DEL``; keys are ``prefix`` plus the SHA-256
    of the session ID, never the raw ID. Every ``load`` decodes a fresh copy.

    Timeouts: every round trip is bounded by ``timeout`` seconds (retries and waiting for
    a pooled connection included; one timer per event loop ends late calls), so a paused
    or unreachable server costs a ``load`` or ``save`` at most that long (a call of
    several round trips, such as ``end_subject``, that long for each). After a
    timed-out ``save`` the write may or may not have happened: ``load`` tells
    (a later save from the old version gets ``Err(Conflict)`` if it did). A save the
    client library itself resends after a lost reply is recognised by its write id and
    answers ``Ok``, not a conflict with itself.

    Failures: connection errors, timeouts and server errors raise
    :class:`~typed_sessions.StoreUnavailableError`; a stored value that is not a valid
    record for ``data_type`` (garbage bytes, another type of key, a record written for an
    older data model that ``upgrade``, if given, does not turn into a valid one) raises
    :class:`~typed_sessions.StoreCorruptError`. Both are :class:`~typed_sessions.StoreError`;
    no raw ``redis`` exception escapes and a failure never reads as "no session". The
    client reconnects by itself, so service resumes when Redis is back, with the same store.

    ``on_corrupt="discard"`` instead treats an unreadable record as no session: ``load``
    deletes it (one extra ``DEL``), logs a warning with the ID's short digest (never the ID) and
    returns ``None``, and ``save`` of a new record may overwrite it. Choose it when a
    change of the data model should log users out rather than fail their requests.

    It keeps a subject index (:class:`~typed_sessions.SubjectIndex`): a sorted set per
    subject, without keyspace notifications, so it works on Cluster. Listing a subject's
    sessions takes two round trips, ending all four. With ``max_per_subject``, a save
    that leaves a subject with more live sessions than that ends its oldest ones (by
    ``created_at``; never the one saved, nor one signed in after it).
    """

    @overload
    def __init__(
        self,
        client: RedisClient,
        data_type: type[T],
        *,
        prefix: str = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        client: RedisClient,
        data_type: object,
        *,
        prefix: str = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
    ) -> None: ...

    def __init__(
        self,
        client: RedisClient,
        data_type: Any,
        *,
        prefix: str = "session:",
        timeout: float | None = DEFAULT_REDIS_TIMEOUT,
        clock: Clock = utc_now,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
        on_corrupt: OnCorrupt = "raise",
        max_per_subject: int | None = None,
    ) -> None:
        """Make a store over ``client`` for sessions holding ``data_type``.

        ``timeout`` is in seconds per round trip; ``None`` leaves calls unbounded (then only the
        client's own socket timeouts apply; not recommended). ``clock`` gives the time the
        TTL is computed from and the time ``load`` checks ``expires_at`` against.
        ``max_data_bytes`` bounds each session's data, in bytes of JSON (default 64 KiB,
        ``None``: no limit): a larger save raises ``SessionTooLargeError`` before any call
        to Redis. ``upgrade`` reads data stored for an older model (see ``SessionCodec``):
        it is given the stored JSON value when it does not validate.

        Raises:
            TypeError: ``client`` is not a ``redis.asyncio`` client.
            ValueError: ``timeout`` or ``max_data_bytes`` is not positive, ``on_corrupt``
                is unknown, ``max_per_subject`` is less than 1, or the client's
                ``encoding`` is not UTF-8.
        """
        check_store_options(timeout, on_corrupt, max_per_subject)
        self.max_per_subject = max_per_subject
        self.client: RedisClient = checked_client(client)
        self._cluster = isinstance(client, RedisCluster)
        self._index_keys: dict[str, str] = {}
        self._digests: dict[str, str] = {}  # session ID -> its key's SHA-256 hex, see key_for
        self.codec: SessionCodec[T] = SessionCodec(
            data_type, max_data_bytes=max_data_bytes, upgrade=upgrade
        )
        self.prefix = prefix
        self.timeout = timeout
        self.on_corrupt: OnCorrupt = on_corrupt
        # The default clock as one C call (datetime.now(UTC)): it is read on every call.
        self._clock = _NOW if clock is utc_now else checked_clock(clock)
        self.owns_client = False
        """Whether :meth:`aclose` closes the client (:meth:`from_url` sets it)."""
        self._limit = CallLimit(timeout, self._forget_connections)

    @overload
    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: type[_D],
        *,
        prefix: str = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
        **client_options: Any,
    ) -> RedisStore[_D]: ...

    @overload
    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: object,
        *,
        prefix: str = ...,
        timeout: float | None = ...,
        clock: Clock = ...,
        max_data_bytes: int | None = ...,
        upgrade: Upgrade | None = ...,
        on_corrupt: OnCorrupt = ...,
        max_per_subject: int | None = ...,
        **client_options: Any,
        # _D comes from the context, as in `store: RedisStore[A | B] = RedisStore.from_url(...)`
    ) -> RedisStore[_D]: ...  # pyright: ignore[reportInvalidTypeVarUse]

    @classmethod
    def from_url(
        cls,
        url: str,
        data_type: Any,
        *,
        prefix: str = "session:",
        timeout: float | None = DEFAULT_REDIS_TIMEOUT,
        clock: Clock = utc_now,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        upgrade: Upgrade | None = None,
        on_corrupt: OnCorrupt = "raise",
        max_per_subject: int | None = None,
        **client_options: Any,
    ) -> RedisStore[Any]:
        """Make a store with its own client for ``url`` (``redis://``, ``rediss://``,
        ``unix://``); close it with :meth:`aclose` or ``async with``.

        The client's pool is a ``BlockingConnectionPool`` of ``max_connections`` (default
        100): a burst of more concurrent calls waits for a free connection, within
        ``timeout``, instead of failing at once. ``client_options`` go to
        ``BlockingConnectionPool.from_url``; the socket and connect timeouts default to
        ``timeout``. No connection is made until the first call.
        """
        client_options.setdefault("max_connections", 100)
        if timeout is not None:
            client_options.setdefault("timeout", timeout)
            client_options.setdefault("socket_timeout", timeout)
            client_options.setdefault("socket_connect_timeout", timeout)
        try:
            pool = BlockingConnectionPool.from_url(url, **client_options)
            # A misspelt option fails only in a connection: make one (no I/O until used).
            pool.connection_class(**pool.connection_kwargs)
        except (TypeError, ValueError, RedisError):  # it may quote the URL: a password
            raise ValueError("invalid Redis URL (not shown: it may hold a password)") from None
        client = Redis.from_pool(pool)
        store: RedisStore[Any] = cls(
            client, data_type, prefix=prefix, timeout=timeout, clock=clock,
            max_data_bytes=max_data_bytes, upgrade=upgrade, on_corrupt=on_corrupt,
            max_per_subject=max_per_subject,
        )  # fmt: skip
        store.owns_client = True
        return store

    async def aclose(self) -> None:
        """Close the client if this store made it (:meth:`from_url`); otherwise do nothing."""
        if self.owns_client:
            with self._limit():  # (on a new loop, its client is made anew first)
                await self.client.aclose()

    async def __aenter__(self) -> RedisStore[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def key_for(self, session_id: SessionId | str) -> str:
        """Return the Redis key that holds ``session_id``: the prefix and a SHA-256 hex."""
        # A request loads and then saves the same session: hash its ID once. The digests
        # of the last (up to 1,024) IDs are kept, in this process only.
        digests = self._digests
        digest = digests.get(session_id)
        if digest is None:
            if len(digests) >= 1024:
                digests.clear()
            digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
            digests[session_id] = digest
        return self.prefix + digest

    async def ping(self) -> None:
        """Readiness: ``SET prefix + "ready" NX`` for a second, refused where saves would
        be (a replica, a full server, no rights on the prefix): ``StoreUnavailableError``."""
        await self._call(self.client.set, self.prefix + "ready", b"1", px=1000, nx=True)

    async def load(self, session_id: SessionId) -> Session[T] | None:
        """Return the live session ``session_id`` (a fresh copy), or ``None``: one ``GET``.

        Raises:
            StoreUnavailableError: Redis cannot be reached in time or refused the call.
            StoreCorruptError: the value is not a valid record (unless discarding).
        """
        key = self.key_for(session_id)
        try:
            with self._limit():
                raw = await self.client.get(key)
        except UnicodeDecodeError:  # a decode_responses client met bytes that are not text
            return await self._corrupt(key, "the stored value is not UTF-8 text")
        except ResponseError as exc:
            if is_wrong_type(exc):
                return await self._corrupt(key, "the key does not hold a string")
            unavailable(exc)
        except CALL_ERRORS as exc:
            unavailable(exc)
        if raw is None:
            return None
        payload = raw if type(raw) is bytes else as_bytes(raw)
        header = HEADER.match(payload, 0, HEADER_MAX)  # redis_format.unpack, inlined
        if header is None:
            if TOMBSTONE.match(payload):  # ended moments ago
                return None
            return await self._corrupt(key, "the stored value has no record header")
        version = int(header[1])
        decoded = self.codec.decode(payload[header.end() :])
        if isinstance(decoded, Err):
            return await self._corrupt(key, decoded.error.reason)
        session = decoded.value
        if session.id != NO_ID or session.version != version:
            return await self._corrupt(key, "the stored record does not match its header")
        if self._clock() >= session.expires_at:  # native TTL is the rule; this is a backstop
            return None
        # Fresh from the decoder and not shared yet: name it in place (a copy costs more).
        object.__setattr__(session, "id", session_id)
        return session

    async def save(self, session: Session[T]) -> Result[Session[T], Conflict]:
        """Compare-and-set ``session`` on its version, with its TTL: one ``EVALSHA``.

        A record whose ``expires_at`` has passed is ended instead of written (after the
        same version check): a tombstone replaces it for ``TOMBSTONE_SECONDS``, which reads
        as no record, so that this same ending sent again is recognised as done. Returns
        the saved record with the next version, or ``Err(Conflict)`` with the stored
        version (``None``: no record) and nothing changed.

        Raises:
            SessionEncodeError: the data is not JSON-serializable (before any I/O).
            ValueError: the session's ``subject`` is not a valid subject (before any I/O).
            StoreUnavailableError: Redis cannot be reached in time or refused the call.
            StoreCorruptError: the stored value is not a record (unless discarding).
        """
        version = session.version + 1
        saved = Session(
            NO_ID, session.data, session.created_at, session.last_active,
            session.expires_at, version, session.subject, session.auth_time, session.device,
        )  # fmt: skip
        record = self.codec.encode(saved)  # stored without its ID
        # The encoder keeps no reference: name the record in place (a copy costs more).
        object.__setattr__(saved, "id", session.id)
        key = self.key_for(session.id)
        now = self._clock()
        write_id = new_write_id()
        discard = self.on_corrupt == "discard"
        control = save_control(session.version, session.expires_at, now, discard, write_id)
        value = pack(version, write_id, record)
        if session.subject is None:
            # RedisCalls._script(SAVE, ...), inlined: one coroutine fewer per save.
            try:
                with self._limit():
                    try:
                        reply = await self.client.evalsha(SAVE.sha, 1, key, value, control)
                    except NoScriptError:
                        reply = await self.client.eval(SAVE.text, 1, key, value, control)
            except CALL_ERRORS as exc:
                unavailable(exc)
            if type(reply) is int and reply == SAVED:  # the common answer, first
                return Ok(saved)
        else:
            scripts = (SAVE, INDEXED_SAVE)
            reply = await self._save_indexed(session, now, key, scripts, value, control)
        conflict = save_outcome(reply, session.version)
        return Ok(saved) if conflict is None else Err(conflict)

    async def delete(self, session_id: SessionId) -> None:
        """Remove ``session_id``; a missing one is fine. One ``DEL``.

        Raises:
            StoreUnavailableError: Redis cannot be reached in time or refused the call.
        """
        await self._call(self.client.delete, self.key_for(session_id))

    async def _corrupt(self, key: str, reason: str) -> Session[T] | None:
        """Raise ``StoreCorruptError`` or, when discarding, delete ``key`` and return None."""
        if self.on_corrupt == "raise":
            corrupt_error(reason)
        # The key ends in the ID's SHA-256: its first 12 digits are the ID's usual digest.
        _logger.warning("discarding unreadable session record: %s [sid#%s]", reason, key[-64:-52])
        await self._call(self.client.delete, key)
        return None
