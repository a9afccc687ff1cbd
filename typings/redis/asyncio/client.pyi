# Commands return exactly what the server sends, as bytes (str with decode_responses=True,
# which these stubs cannot tell apart: results that may be text are `bytes | str`).
from collections.abc import AsyncIterator
from typing import Any, Self

from redis.asyncio.connection import ConnectionPool

EncodableT = str | bytes | int | float

class Redis:
    def __init__(
        self,
        host: str = ...,
        port: int = ...,
        db: int = ...,
        *,
        connection_pool: ConnectionPool | None = ...,
        socket_timeout: float | None = ...,
        socket_connect_timeout: float | None = ...,
        decode_responses: bool = ...,
        single_connection_client: bool = ...,
        **kwargs: Any,
    ) -> None: ...
    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float | None = ...,
        socket_connect_timeout: float | None = ...,
        decode_responses: bool = ...,
        max_connections: int | None = ...,
        **kwargs: Any,
    ) -> Self: ...
    @classmethod
    def from_pool(cls, connection_pool: ConnectionPool) -> Self: ...
    connection_pool: ConnectionPool
    async def aclose(self, close_connection_pool: bool | None = ...) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    async def ping(self) -> bool: ...
    async def info(self, section: str | None = ...) -> dict[str, Any]: ...
    async def get(self, name: str | bytes) -> bytes | str | None: ...
    async def set(
        self,
        name: str | bytes,
        value: EncodableT,
        ex: int | None = ...,
        px: int | None = ...,
        nx: bool = ...,
        xx: bool = ...,
        keepttl: bool = ...,
    ) -> bool | None: ...
    async def delete(self, *names: str | bytes) -> int: ...
    async def exists(self, *names: str | bytes) -> int: ...
    async def pttl(self, name: str | bytes) -> int: ...
    async def hset(
        self,
        name: str | bytes,
        key: str | bytes | None = ...,
        value: EncodableT | None = ...,
        mapping: dict[str | bytes, EncodableT] | None = ...,
    ) -> int: ...
    def scan_iter(
        self, match: str | bytes | None = ..., count: int | None = ...
    ) -> AsyncIterator[bytes]: ...
    # EVAL and EVALSHA: our save script answers an integer (see stores/redis.py).
    async def eval(
        self, script: str, numkeys: int, *keys_and_args: EncodableT
    ) -> int | bytes | str | None: ...
    async def evalsha(
        self, sha: str, numkeys: int, *keys_and_args: EncodableT
    ) -> int | bytes | str | None: ...
    async def flushall(self, asynchronous: bool = ...) -> bool: ...
