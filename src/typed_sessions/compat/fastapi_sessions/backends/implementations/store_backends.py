"""fastapi-sessions' backend API (``create``, ``read``, ``update``, ``delete``) over a store.

The backend keeps typed-sessions records: each has an idle and an absolute deadline
(``expiry``), every save is a compare-and-set, and data is stored as JSON through
pydantic. The app's UUIDs name the records through ``typed_sessions.compat.fastapi_sessions.ids``.

The data type comes from the subscript, as fastapi-sessions apps write it
(``InMemoryBackend[UUID, SessionData]()``), or from ``data_type=``. It is read on first
use, since Python sets the subscript on the instance only after ``__init__``.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Generic
from uuid import UUID

from fastapi import HTTPException
from pydantic import TypeAdapter
from typing_extensions import TypeVar

from typed_sessions import (
    DEFAULT_MAX_DATA_BYTES,
    Clock,
    Err,
    Expiry,
    MemoryStore,
    Ok,
    Session,
    SessionCodec,
    SessionFailure,
    SessionId,
    SessionNotFound,
    SessionStore,
    StoreError,
    default_error_mapping,
    is_expired,
    new_session,
    replace_data,
    touch_session,
    update_session,
    utc_now,
)
from typed_sessions.compat.fastapi_sessions.backends.implementations.handed_out import (
    ChangedMeanwhile,
    Given,
    recall,
    remember,
)
from typed_sessions.compat.fastapi_sessions.backends.session_backend import BackendError
from typed_sessions.compat.fastapi_sessions.ids import session_id_for

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from typed_sessions.stores.redis import RedisStore

__all__ = [
    "DEFAULT_EXPIRY",
    "InMemoryBackend",
    "RedisBackend",
    "StoreBackend",
]

ID = TypeVar("ID", bound=UUID, default=UUID)  # StoreBackend(store): UUIDs, as on the page
DataT = TypeVar("DataT", default=Any)

_ATTEMPTS = 20  # saves that lost only to deadline slides, before giving up (503)

DEFAULT_EXPIRY = Expiry()
"""30 minutes without use, 12 hours at most (fastapi-sessions' sessions never ended)."""


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}  # by the data's class: a few at most


def _json_of(store: object, data: Any) -> bytes:
    """``data`` as ``store`` keeps it (its codec's JSON), or as pydantic dumps its type:
    what is compared, never ``==`` (identity for some classes; private state for models)."""
    codec: object = getattr(store, "codec", None)
    if isinstance(codec, SessionCodec):
        known: SessionCodec[Any] = codec  # pyright: ignore[reportUnknownVariableType]
        return known.encode_data(data)
    kind: type[Any] = type(data)  # pyright: ignore[reportUnknownVariableType]
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter.dump_json(data)


def _conflict() -> HTTPException:
    answer = default_error_mapping(SessionFailure("conflict", "concurrent_change"))
    return HTTPException(answer.status_code, answer.detail, answer.headers)


def _unavailable(exc: StoreError) -> HTTPException:
    """The 503 the session dependency answers for a store failure, for backend calls too."""
    answer = default_error_mapping(SessionFailure("unavailable", "store_error", exc))
    return HTTPException(answer.status_code, answer.detail, answer.headers)


class StoreBackend(Generic[ID, DataT]):
    """fastapi-sessions' backend interface over any typed-sessions store.

    Args:
        store: the store; when ``None``, a subclass makes it on first use.
        expiry: when sessions end; the verifier slides the idle deadline on each use.
        clock: the current time (tests pass a fake).

    A store failure in any method raises FastAPI's ``HTTPException`` 503.
    """

    def __init__(
        self,
        store: SessionStore[DataT] | None = None,
        *,
        data_type: Any = None,
        expiry: Expiry = DEFAULT_EXPIRY,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._data_type = data_type
        self.expiry = expiry
        self.clock = clock

    @property
    def store(self) -> SessionStore[DataT]:
        """The typed-sessions store holding the records (made on first use)."""
        if self._store is None:
            self._store = self._make_store(self.data_type)
        return self._store

    @property
    def reads_key(self) -> object:
        """What names this backend's sessions in a request's record of reads: its store,
        or, for a Redis store, the server's host, port, database (redis-py's defaults
        where not given) and the prefix: backends over one store share their reads,
        however each was made."""
        store = self.store
        client = getattr(store, "client", None)
        kwargs: object = getattr(
            getattr(client, "connection_pool", None), "connection_kwargs", None
        )
        if not isinstance(kwargs, dict):
            return store
        known = typing.cast(dict[str, object], kwargs)  # redis-py leaves its defaults out
        given = (known.get("host", "localhost"), known.get("port", 6379), known.get("db", 0))
        where = (*(str(part) for part in given), str(known.get("path")))
        return ("redis", where, getattr(store, "prefix", None))

    _empty_until_created: typing.ClassVar[bool] = False
    """Whether the store this backend makes holds nothing before its first ``create``."""

    @property
    def data_type(self) -> Any:
        """The sessions' data type: ``data_type=``, else the subscript's second type, else
        the type of the first data :meth:`create` stores (an annotated ``backend:
        InMemoryBackend[UUID, SessionData] = InMemoryBackend()``: Python drops the
        annotation's subscript at run time).

        Raises:
            TypeError: none says it yet.
        """
        found = self._found_type()
        if found is not None:
            return found
        raise TypeError(
            f"say which data the sessions hold: {type(self).__name__}[UUID, SessionData](...) "
            f"or {type(self).__name__}(..., data_type=SessionData)"
        )

    def _found_type(self) -> Any:
        """:attr:`data_type`, or ``None`` while nothing says it."""
        if self._data_type is not None:
            return self._data_type
        bases = getattr(type(self), "__orig_bases__", ())
        for alias in (getattr(self, "__orig_class__", None), *bases):
            args = typing.get_args(alias)
            if len(args) == 2 and not isinstance(args[1], TypeVar):
                self._data_type = args[1]
                return args[1]
        return None

    def _empty_yet(self) -> bool:
        """Whether this backend's own store is not made yet, and would hold nothing."""
        return self._empty_until_created and self._store is None and self._found_type() is None

    def _make_store(self, data_type: Any) -> SessionStore[DataT]:
        raise TypeError("StoreBackend needs a store: StoreBackend(store)")

    async def create(self, session_id: ID, data: DataT) -> None:
        """Store a new session holding ``data`` under the app's ``session_id``.

        Raises:
            BackendError: a session with that ID exists.
        """
        if self._store is None and self._found_type() is None:
            self._data_type = type(data)  # (see data_type)
        record = new_session(
            data, self.expiry, now=self.clock(), session_id=session_id_for(session_id)
        )
        try:
            saved = await self.store.save(record)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        if isinstance(saved, Err):
            raise BackendError("create can't overwrite an existing session")

    async def read(self, session_id: ID) -> DataT | None:
        """Return the live session's data (a copy of your own), or ``None``. A read is a
        use: it slides the idle deadline, as the verifier does (saved only when due)."""
        if self._empty_yet():
            return None
        try:
            record = await self.store.load(session_id_for(session_id))
            now = self.clock()
            if record is None or is_expired(record, now=now):
                return None
            touched = touch_session(record, self.expiry, now=now)
            if touched is not record:  # (refused: another request saved it since)
                saved = await self.store.save(touched)
                record = saved.value if isinstance(saved, Ok) else record
        except StoreError as exc:
            raise _unavailable(exc) from exc
        return self.hand_out(record)

    def hand_out(self, session: Session[DataT]) -> DataT:
        """Return ``session``'s data for this request, noting what it was: a later
        :meth:`update` of that object in the same request compares with it (the verifier
        calls this)."""
        remember(self.reads_key, session, _json_of(self.store, session.data), session.data)
        return session.data

    async def update(self, session_id: ID, data: DataT) -> None:
        """Replace the session's data with ``data``, and slide its idle deadline.

        When this request was given the session's data (by the verifier or :meth:`read`),
        a compare-and-set against what it was given: ``data`` itself, if it is an object
        this request was handed; else its latest read, if no other request changed the
        data while this one read it (else 409).
        If another request changed the data since, nothing is written and the request
        gets 409 (its update rests on data that changed); a save that only slid the idle
        deadline (another request's read) is no change. Otherwise the last update wins,
        as in fastapi-sessions.

        Raises:
            BackendError: there is no live session with that ID.
            HTTPException: 409, the session changed since this request read it.
        """
        if self._empty_yet():
            raise BackendError("session does not exist, cannot update")
        key = session_id_for(session_id)
        try:
            seen = recall(self.reads_key, key, data)
        except ChangedMeanwhile:
            raise _conflict() from None
        try:
            if seen is None:
                await self._overwrite(key, data)
            else:
                await self._compare_and_set(seen, data)
        except StoreError as exc:
            raise _unavailable(exc) from exc

    async def _overwrite(self, key: SessionId, data: DataT) -> None:
        """The last update wins (retried until it is saved)."""
        result = await update_session(
            self.store, key, lambda _: data, expiry=self.expiry, clock=self.clock
        )
        if isinstance(result, Err):
            if isinstance(result.error, SessionNotFound):
                raise BackendError("session does not exist, cannot update")
            raise StoreError("the session kept changing")

    async def _compare_and_set(self, seen: Given, data: DataT) -> None:
        """Save ``data`` over the session this request was given if the stored data is
        still what it was given, else refuse. A save that only slid the deadline (a read
        in another request) changed no data: ``data`` then goes over the newer version."""
        base, given, _ = seen
        for _ in range(_ATTEMPTS):
            now = self.clock()
            saved = await self.store.save(
                touch_session(replace_data(base, data, now=now), self.expiry, now=now)
            )
            if isinstance(saved, Ok):  # now what this request's next update compares with
                json = _json_of(self.store, saved.value.data)
                remember(self.reads_key, saved.value, json, data, over=given)
                return
            newest = None if saved.error.found is None else await self.store.load(base.id)
            if newest is None or is_expired(newest, now=now):
                raise BackendError("session does not exist, cannot update")
            if _json_of(self.store, newest.data) != given:
                raise _conflict()  # another request changed the data this one was given
            base = newest
        raise StoreError("the session kept changing")

    async def delete(self, session_id: ID) -> None:
        """Delete the session; deleting one already gone is not an error."""
        if self._empty_yet():
            return
        try:
            await self.store.delete(session_id_for(session_id))
        except StoreError as exc:
            raise _unavailable(exc) from exc


class InMemoryBackend(StoreBackend[ID, DataT]):
    """fastapi-sessions' ``InMemoryBackend[UUID, SessionData]()`` on a bounded ``MemoryStore``.

    Sessions live in this process only; use :class:`RedisBackend` for several workers.
    ``max_data_bytes``: the most JSON a session's data may take (default 64 KiB).
    """

    _empty_until_created = True

    def __init__(
        self,
        *,
        data_type: Any = None,
        max_sessions: int = 10_000,
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        expiry: Expiry = DEFAULT_EXPIRY,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(data_type=data_type, expiry=expiry, clock=clock)
        self.max_sessions = max_sessions
        self.max_data_bytes = max_data_bytes

    def _make_store(self, data_type: Any) -> SessionStore[DataT]:
        store: MemoryStore[DataT] = MemoryStore(
            data_type,
            max_sessions=self.max_sessions,
            max_data_bytes=self.max_data_bytes,
            clock=self.clock,
        )
        return store


class RedisBackend(StoreBackend[ID, DataT]):
    """The same backend on Redis or Valkey, shared by every worker: ``RedisBackend[UUID,
    SessionData]("redis://...")`` (or a ``redis.asyncio`` client). Needs the ``redis`` extra.

    Close it with :meth:`aclose` (it closes a client it made from a URL).

    Raises:
        TypeError: ``redis`` is the synchronous ``redis.Redis``.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        data_type: Any = None,
        prefix: str = "session:",
        max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES,
        expiry: Expiry = DEFAULT_EXPIRY,
        clock: Clock = utc_now,
    ) -> None:
        # Imported here (redis-py with it), not inside the first request: about 100 ms on
        # the event loop. The store itself waits for the data type.
        from typed_sessions import RedisStore as store_class  # the extra's error if missing
        from typed_sessions.stores.redis_calls import checked_client

        if not isinstance(redis, str):
            checked_client(redis)  # a synchronous client: TypeError now, not at first use
        super().__init__(data_type=data_type, expiry=expiry, clock=clock)
        self.redis = redis
        self.prefix = prefix
        self.max_data_bytes = max_data_bytes
        self._store_class: type[RedisStore[Any]] = store_class

    def _make_store(self, data_type: Any) -> SessionStore[DataT]:
        store_class = self._store_class
        store: RedisStore[DataT]
        if isinstance(self.redis, str):
            store = store_class.from_url(
                self.redis, data_type, prefix=self.prefix, clock=self.clock,
                max_data_bytes=self.max_data_bytes,
            )  # fmt: skip
        else:
            store = store_class(
                self.redis, data_type, prefix=self.prefix, clock=self.clock,
                max_data_bytes=self.max_data_bytes,
            )  # fmt: skip
        return store

    async def aclose(self) -> None:
        """Close the Redis client if this backend made it from a URL."""
        if isinstance(self._store, self._store_class):
            await self._store.aclose()
