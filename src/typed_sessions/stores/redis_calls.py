"""RedisStore's round trips: each bounded by the store's timeout, its errors mapped.

Every call to the client goes through :class:`RedisCalls`: one command, one script
(``EVALSHA``, falling back to ``EVAL`` once per server), or one pipeline. A connection
error, a timeout or a server error raises :class:`~typed_sessions.StoreUnavailableError`,
a reply a ``decode_responses`` client cannot decode :class:`~typed_sessions.StoreCorruptError`;
no raw ``redis`` exception leaves these methods.
"""

from __future__ import annotations

import asyncio
import codecs
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, ParamSpec, TypeAlias, TypeVar

from redis import Redis as SyncRedis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis, RedisCluster
from redis.exceptions import NoScriptError, RedisError

from typed_sessions.stores.deadlines import CallLimit
from typed_sessions.stores.protocol import StoreCorruptError
from typed_sessions.stores.redis_format import CALL_ERRORS, unavailable
from typed_sessions.stores.redis_scripts import Script

__all__ = ["Command", "RedisCalls", "RedisClient", "Reply", "checked_client"]

P = ParamSpec("P")
R = TypeVar("R")

Reply: TypeAlias = bytes | str | int | float | list["Reply"] | tuple["Reply", ...] | None
"""What a command or a script answers (RESP: strings, integers, nil, arrays)."""

RedisClient: TypeAlias = Redis | RedisCluster
"""A ``redis.asyncio`` client: a plain ``Redis`` (also for Valkey) or a ``RedisCluster``."""

Command: TypeAlias = tuple[str | bytes | int | float, ...]
"""A command's name and arguments, for a pipeline."""

_POOL_LOOPS: weakref.WeakKeyDictionary[ConnectionPool, weakref.ref[asyncio.AbstractEventLoop]] = (
    weakref.WeakKeyDictionary()
)
"""The loop on which each app client's pool last forgot its connections (see
:meth:`RedisCalls._forget_connections`)."""


def checked_client(client: RedisClient) -> RedisClient:
    """``client``, if it is one of redis-py's asyncio clients (``redis.asyncio.Redis`` or
    ``RedisCluster``, or a subclass) with the UTF-8 encoding the records are written in.

    Raises:
        TypeError: it is another client: redis-py's synchronous ones would block the event
            loop, and their replies cannot be awaited (a save would be written, and then
            fail); others (valkey-py's, say) raise errors the store does not know.
        ValueError: its ``encoding`` is not UTF-8: the records' text would be read and
            sent in another (another subject's names, data changed on its way back).
    """
    given: object = client  # typed as async: an untyped app may pass anything
    if not _is_async_client(given):
        module = type(given).__module__  # redis.client.Redis, redis.cluster.RedisCluster
        synchronous = isinstance(given, SyncRedis) or module.startswith(
            ("redis.client", "redis.cluster")
        )
        kind = "the synchronous " if synchronous else ""
        raise TypeError(
            "RedisStore needs a redis.asyncio client (redis.asyncio.Redis or RedisCluster), "
            f"not {kind}{type(given).__module__}.{type(given).__name__}"
        )
    encoding = client.get_encoder().encoding
    if codecs.lookup(encoding).name != "utf-8":
        raise ValueError(f"RedisStore needs a client with encoding='utf-8', not {encoding!r}")
    return client


def _is_async_client(value: object) -> bool:
    return isinstance(value, Redis | RedisCluster)


class RedisCalls:
    """The round trips of ``RedisStore`` and its subject index (a mixin)."""

    client: Redis | RedisCluster
    owns_client: bool
    _limit: CallLimit

    def _forget_connections(self) -> None:
        """Called before a call on another event loop than the last call's, once that
        one is closed: the pool's connections were made there and would fail their next
        call, maybe after sending it (a write done, answered as failed). A client this
        store made (:meth:`from_url`) gets a new pool (a ``BlockingConnectionPool``'s wait
        is bound to the first loop it waited on); an app's has its pool forget them (not
        close them: their loop cannot; the collector does), once per loop, however many
        stores share it. (A ``RedisCluster`` keeps them: its first call on each fails
        once, ``StoreUnavailableError``.)"""
        client = self.client
        if not isinstance(client, Redis):
            return
        pool = client.connection_pool
        if self.owns_client and isinstance(pool, BlockingConnectionPool):
            # (The same client, for the calls whose method was looked up before this.)
            client.connection_pool = BlockingConnectionPool(
                connection_class=pool.connection_class, max_connections=pool.max_connections,
                timeout=pool.timeout, **pool.connection_kwargs,
            )  # fmt: skip
            return
        loop = asyncio.get_running_loop()
        last = _POOL_LOOPS.get(pool)
        if last is None or last() is not loop:  # (not forgotten on this loop already)
            _POOL_LOOPS[pool] = weakref.ref(loop)
            pool.reset()

    async def _call(self, command: Callable[P, Awaitable[R]], *args: P.args, **kw: P.kwargs) -> R:
        """``await command(*args, **kw)``, bounded by the timeout, errors mapped."""
        try:
            with self._limit():
                return await command(*args, **kw)
        except CALL_ERRORS as exc:
            unavailable(exc)
        except UnicodeDecodeError as exc:
            _not_text(exc)

    async def _scan(self, pattern: str) -> list[Reply]:
        """The keys matching ``pattern`` (``SCAN``, every node of a Cluster), each round
        trip bounded by the timeout, errors mapped as :meth:`_call` maps them."""
        keys: list[Reply] = []
        pages = self.client.scan_iter(match=pattern, count=1000)
        try:
            while True:
                with self._limit():  # a key of a page already read costs no round trip
                    try:
                        key = await anext(pages)
                    except StopAsyncIteration:
                        return keys
                keys.append(key)
        except CALL_ERRORS as exc:
            unavailable(exc)
        except UnicodeDecodeError as exc:
            _not_text(exc)

    async def _pipeline(self, commands: Sequence[Command]) -> list[Reply]:
        """Send ``commands`` in one pipeline (not a transaction): one round trip per node."""
        if not commands:
            return []
        return _replies(await self._send(commands))

    async def _send(self, commands: Sequence[Command]) -> list[Reply | RedisError]:
        """One pipeline (not a transaction); each command's error is its reply."""
        try:
            with self._limit():
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*map(_wire, command))
                return await pipe.execute(raise_on_error=False)
        except CALL_ERRORS as exc:
            unavailable(exc)
        except UnicodeDecodeError as exc:
            _not_text(exc)

    async def _script(self, script: Script, keys: tuple[str, ...], *args: str | bytes) -> Reply:
        """Run ``script`` on ``keys``: one ``EVALSHA``, and one ``EVAL`` the first time
        on a server that has not cached it yet (which caches it)."""
        try:
            with self._limit():
                try:
                    return await self.client.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:
                    return await self.client.eval(script.text, len(keys), *keys, *args)
        except CALL_ERRORS as exc:
            unavailable(exc)
        except UnicodeDecodeError as exc:
            _not_text(exc)

    async def _pipelined_scripts(
        self, script: Script, calls: Sequence[tuple[str, ...]]
    ) -> list[Reply]:
        """Run ``script`` on each ``(key, *arguments)`` in one pipeline; a server without
        the script gets it once (``SCRIPT LOAD``) and the calls it refused again."""
        commands: list[Command] = [("EVALSHA", script.sha, 1, *call) for call in calls]
        replies = await self._send(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._call(self.client.script_load, script.text)  # on Cluster: every primary
            again = await self._pipeline([commands[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return _replies(replies)


def _wire(argument: str | bytes | int | float) -> str | bytes | int | float:
    """``argument`` as sent: a ``str`` holding bytes read back that were not UTF-8 (a
    key or index member another program wrote, decoded with ``surrogateescape``) as
    those very bytes, which redis-py's strict encoder would refuse."""
    if type(argument) is str and not argument.isascii():
        return argument.encode("utf-8", "surrogateescape")
    return argument


def _not_text(exc: UnicodeDecodeError) -> NoReturn:
    """A ``decode_responses`` client met a stored value that is not UTF-8 text (written
    by something else): redis-py drops the connection, and the reply is lost."""
    raise StoreCorruptError(
        "unreadable session record in Redis: a stored value is not UTF-8 text (a "
        "decode_responses client cannot read it; use one without)"
    ) from exc


def _replies(replies: list[Reply | RedisError]) -> list[Reply]:
    """``replies``, or ``StoreUnavailableError`` for the first error among them."""
    answers: list[Reply] = []
    for reply in replies:
        if isinstance(reply, RedisError):
            unavailable(reply)
        answers.append(reply)
    return answers
