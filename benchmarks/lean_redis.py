"""A prototype: the cheapest correct Redis client for RedisStore's two hot commands.

Not part of the library (benchmarks only): it measures what redis-py's layers cost on
``GET`` and ``EVALSHA``. One connection per event loop, pipelined: every call writes its
command at once and waits for its reply, and replies are matched to callers in order
(Redis answers in order). So a cancelled call (the store's time limit) never leaves the
connection out of step, as it would a connection taken from a pool mid-read: its reply
is read and dropped. A lost connection fails every call in flight with redis-py's
``ConnectionError`` (the store maps it to ``StoreUnavailableError``) and the next call
connects again. Server errors raise redis-py's ``ResponseError`` (``NoScriptError`` for
``NOSCRIPT``, so the store's fallback to ``EVAL`` works unchanged).

RESP2 only; no AUTH, no TLS, no Cluster: a prototype of the hot path, not a client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


class _Incomplete(Exception):
    pass


def parse(buffer: bytes | bytearray, at: int) -> tuple[Any, int]:
    """One reply from ``buffer`` at ``at``: (value, next position); ``_Incomplete`` if cut."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, line = buffer[at], bytes(buffer[at + 1 : end])
    at = end + 2
    if kind == 36:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, at
        if len(buffer) < at + size + 2:
            raise _Incomplete
        return bytes(buffer[at : at + size]), at + size + 2
    if kind == 58:  # : integer
        return int(line), at
    if kind == 43:  # + simple string
        return line, at
    if kind == 45:  # - error
        text = line.decode(errors="replace")
        error = NoScriptError if text.startswith("NOSCRIPT") else ResponseError
        return error(text), at
    if kind == 42:  # * array
        count = int(line)
        if count < 0:
            return None, at
        items = []
        for _ in range(count):
            item, at = parse(buffer, at)
            items.append(item)
        return items, at
    raise RedisConnectionError(f"unexpected reply type {chr(kind)!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, lost: asyncio.Future[None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.buffer = bytearray()
        self.lost = lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        at = 0
        try:
            while at < len(buffer):
                value, at = parse(buffer, at)
                waiter = self.waiting.popleft()
                if not waiter.done():  # a cancelled caller's reply is dropped
                    if isinstance(value, ResponseError):
                        waiter.set_exception(value)
                    else:
                        waiter.set_result(value)
        except _Incomplete:
            pass
        del buffer[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        error = RedisConnectionError(f"connection lost: {exc}")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)


class LeanRedis:
    """``get``, ``set``, ``delete``, ``evalsha`` and ``eval`` over one pipelined connection."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, db: int = 0) -> None:
        self.host, self.port, self.db = host, port, db
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        try:
            _, protocol = await loop.create_connection(
                lambda: _Protocol(lost), self.host, self.port
            )
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect: {exc}") from exc
        lost.add_done_callback(lambda _: self._forget(protocol))
        self._protocol = protocol
        if self.db:
            await self.execute("SELECT", self.db)
        return protocol

    def _forget(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None

    async def execute(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            if self._connecting is None or self._connecting.done():
                self._connecting = asyncio.ensure_future(self._connect())
            protocol = await asyncio.shield(self._connecting)
        assert protocol.transport is not None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(waiter)
        protocol.transport.write(pack(args))
        return await waiter

    async def get(self, name: str | bytes) -> bytes | None:
        value: bytes | None = await self.execute("GET", name)
        return value

    async def set(self, name: str | bytes, value: Arg, ex: int | None = None) -> bool:
        if ex is None:
            return bool(await self.execute("SET", name, value))
        return bool(await self.execute("SET", name, value, "EX", ex))

    async def delete(self, *names: str | bytes) -> int:
        deleted: int = await self.execute("DEL", *names)
        return deleted

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def eval(self, script: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
